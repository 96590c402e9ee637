"""The Slack operations through the real ``slack_sdk.WebClient`` against the testing kit's
replay server on 127.0.0.1: params validation, the requests sent, and the ``on_error`` decision
for each kind of answer Slack gives (https://docs.slack.dev/apis/web-api/rate-limits)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import URLError
from urllib.parse import parse_qs

import pytest
from slack_sdk.errors import SlackApiError, SlackRequestError

from trigger_celery import ConfigurationError, OnErrorResult, ValidationError, retry
from trigger_celery.integration import OperationResult, TaskInfo
from trigger_celery.testing import ReplayServer
from trigger_celery_slack import Slack

TOKEN = "xoxb-test-SECRET-0123456789"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TASK = TaskInfo(run_id="run-1", key="k", idempotency_key="0" * 64, name="slack", attempts=1)
POSTED = {"ok": True, "channel": "C0123ABCD", "ts": "1714564800.000100",
          "message": {"type": "message", "text": "Deploying", "ts": "1714564800.000100"}}


@pytest.fixture
def server(trigger_replay_server: ReplayServer) -> Iterator[ReplayServer]:
    yield trigger_replay_server
    assert not trigger_replay_server.unexpected, trigger_replay_server.unexpected


@pytest.fixture
def slack(server: ReplayServer) -> Slack:
    return Slack(credential=TOKEN, base_url=f"{server.base_url}/api/")


def run(integration: Slack, name: str, **params: Any) -> Any:
    """Validate params and run the operation the way the engine does."""
    op = integration.operations()[name]
    return op.fn(integration.client(), op.validate(f"slack.{name}", params), TASK)


def form(body: bytes) -> dict[str, list[str]]:
    return parse_qs(body.decode())


# -- the integration ----------------------------------------------------------------------------


def test_integration_declares_ids_retry_and_operations() -> None:
    assert (Slack.id, Slack.icon, Slack.credential_env) == ("slack", "slack", "SLACK_BOT_TOKEN")
    assert Slack.retry == retry.standard_backoff
    assert sorted(Slack.operations()) == ["chat.post_message", "chat.update",
                                          "conversations.list"]


def test_client_reads_the_token_from_the_environment_and_has_no_retry_handlers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN_OPS", TOKEN)
    integration = Slack(connection_key="ops", base_url="http://127.0.0.1:9/api")
    client = integration.client()
    assert client.token == TOKEN and client.base_url == "http://127.0.0.1:9/api/"
    assert client.retry_handlers == []       # the SDK never retries (nor sleeps) by itself
    assert TOKEN not in repr(integration) and TOKEN not in repr(client)
    assert Slack().base_url == "https://slack.com/api/"


def test_bad_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        Slack(base_url="slack.com/api")
    with pytest.raises(ConfigurationError, match="timeout_s"):
        Slack(timeout_s=0)


# -- chat ---------------------------------------------------------------------------------------


def test_post_message_sends_json_with_the_bearer_token(server: ReplayServer, slack: Slack) -> None:
    server.add("POST", "/api/chat.postMessage", body=POSTED)
    out = run(slack, "chat.post_message", channel="C0123ABCD", text="Deploying")
    assert out == OperationResult(output=POSTED, properties=[
        {"label": "Message ts", "text": "1714564800.000100"}])
    (request,) = server.requests
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"].startswith("application/json")
    assert request.json() == {"channel": "C0123ABCD", "text": "Deploying"}   # no nulls sent


def test_post_message_in_a_thread_with_blocks(server: ReplayServer, slack: Slack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Deployed* v1.2"}}]
    server.add("POST", "/api/chat.postMessage", body=POSTED)
    run(slack, "chat.post_message", channel="C0123ABCD", text="Deployed v1.2",
        thread_ts="1714564700.000050", blocks=blocks)
    assert server.requests[0].json() == {"channel": "C0123ABCD", "text": "Deployed v1.2",
                                         "thread_ts": "1714564700.000050", "blocks": blocks}
    op = Slack.operations()["chat.post_message"]
    params = op.validate("slack.chat.post_message", {
        "channel": "C0123ABCD", "text": "x", "thread_ts": "1714564700.000050"})
    assert op.display_name(params) == "Post message to C0123ABCD"
    assert op.display_properties(params) == [{"label": "Channel", "text": "C0123ABCD"},
                                             {"label": "Thread", "text": "1714564700.000050"}]


@pytest.mark.parametrize(("params", "problem"), [
    ({"channel": "C1"}, "text: Field required"),
    ({"channel": "C1", "text": "  "}, "text: String should match pattern"),
    ({"channel": "", "text": "hi"}, "channel: String should have at least 1 character"),
    ({"channel": "C1", "text": "hi", "thread_ts": "yesterday"}, "thread_ts"),
    ({"channel": "C1", "text": "hi", "blocks": [{"type": "divider"}] * 51}, "blocks"),
    ({"channel": "C1", "text": "hi", "as_user": True}, "as_user: Extra inputs"),
])
def test_bad_params_fail_before_any_request(server: ReplayServer, slack: Slack,
                                            params: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as info:
        run(slack, "chat.post_message", **params)
    assert str(info.value).startswith("slack.chat.post_message: invalid params: ")
    assert server.requests == []


def test_update_sends_channel_ts_and_the_new_text(server: ReplayServer, slack: Slack) -> None:
    answer = {"ok": True, "channel": "C0123ABCD", "ts": "1714564800.000100", "text": "Deployed"}
    server.add("POST", "/api/chat.update", body=answer)
    assert run(slack, "chat.update", channel="C0123ABCD", ts="1714564800.000100",
               text="Deployed") == answer
    assert server.requests[0].json() == {"channel": "C0123ABCD", "ts": "1714564800.000100",
                                         "text": "Deployed"}
    with pytest.raises(ValidationError, match="ts: Field required"):
        run(slack, "chat.update", channel="C0123ABCD", text="x")


# -- conversations ------------------------------------------------------------------------------


def test_conversations_list_sends_a_form_and_returns_the_page(server: ReplayServer,
                                                              slack: Slack) -> None:
    page = {"ok": True, "channels": [{"id": "C0123ABCD", "name": "deploys"}],
            "response_metadata": {"next_cursor": "dGVhbTpDMDYxRkE1UEI="}}
    server.add("POST", "/api/conversations.list", body=page)
    out = run(slack, "conversations.list", limit=200, types=["public_channel", "private_channel"],
              exclude_archived=True, cursor="dXNlcjpVMDYxTkZUVDI=")
    assert out == page
    (request,) = server.requests
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(request.body) == {"limit": ["200"], "types": ["public_channel,private_channel"],
                                  "exclude_archived": ["1"], "cursor": ["dXNlcjpVMDYxTkZUVDI="]}
    with pytest.raises(ValidationError, match="types.0: Input should be"):
        run(slack, "conversations.list", types=["channels"])
    with pytest.raises(ValidationError, match="limit"):
        run(slack, "conversations.list", limit=1001)


# -- errors and on_error ------------------------------------------------------------------------


def fail(server: ReplayServer, slack: Slack, status: int, body: Any,
         headers: dict[str, str] | None = None) -> SlackApiError:
    """Queue one failing answer for chat.postMessage and return what the SDK raised."""
    server.add("POST", "/api/chat.postMessage", status=status, body=body, headers=headers)
    with pytest.raises(SlackApiError) as info:
        run(slack, "chat.post_message", channel="C0123ABCD", text="hi")
    assert len(server.requests) == 1      # one request: the SDK did not retry by itself
    return info.value


def test_429_retries_at_retry_after_seconds(server: ReplayServer, slack: Slack) -> None:
    err = fail(server, slack, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})
    assert err.response.status_code == 429
    assert slack.on_error(err, TASK, None, now=NOW) == OnErrorResult(
        retry_at=NOW + timedelta(seconds=30))


def test_429_with_an_http_date(server: ReplayServer, slack: Slack) -> None:
    err = fail(server, slack, 429, {"ok": False, "error": "ratelimited"},
               {"Retry-After": "Wed, 01 May 2024 12:02:00 GMT"})
    assert slack.on_error(err, TASK, None, now=NOW) == OnErrorResult(
        retry_at=datetime(2024, 5, 1, 12, 2, tzinfo=UTC))


def test_429_without_retry_after_uses_the_backoff(server: ReplayServer, slack: Slack) -> None:
    err = fail(server, slack, 429, {"ok": False, "error": "ratelimited"})
    assert slack.on_error(err, TASK, None, now=NOW) is None


def test_ratelimited_code_with_http_200_still_reads_retry_after(server: ReplayServer,
                                                               slack: Slack) -> None:
    err = fail(server, slack, 200, {"ok": False, "error": "ratelimited"}, {"retry-after": "5"})
    assert slack.on_error(err, TASK, None, now=NOW) == OnErrorResult(
        retry_at=NOW + timedelta(seconds=5))


@pytest.mark.parametrize("code", ["channel_not_found", "invalid_auth", "not_in_channel",
                                  "msg_too_long", "fatal_error"])
def test_ok_false_errors_are_not_retried(server: ReplayServer, slack: Slack, code: str) -> None:
    err = fail(server, slack, 200, {"ok": False, "error": code})
    assert err.response["error"] == code
    assert TOKEN not in str(err)
    assert slack.on_error(err, TASK, None, now=NOW) == OnErrorResult(skip_retrying=True)


@pytest.mark.parametrize("code", ["internal_error", "service_unavailable", "request_timeout"])
def test_transient_codes_use_the_backoff(server: ReplayServer, slack: Slack, code: str) -> None:
    err = fail(server, slack, 200, {"ok": False, "error": code})
    assert slack.on_error(err, TASK, None, now=NOW) is None


def test_5xx_uses_the_backoff_even_with_a_non_json_body(server: ReplayServer,
                                                        slack: Slack) -> None:
    err = fail(server, slack, 503, b"<html>upstream unavailable</html>",
               {"content-type": "text/html"})
    assert err.response.status_code == 503
    assert slack.on_error(err, TASK, None, now=NOW) is None
    server.clear()
    err = fail(server, slack, 500, {"ok": False, "error": "internal_error"})
    assert slack.on_error(err, TASK, None, now=NOW) is None


def test_network_errors_use_the_backoff_and_sdk_request_errors_do_not_retry() -> None:
    unreachable = Slack(credential=TOKEN, base_url="http://127.0.0.1:9/api/")  # nothing listens
    with pytest.raises(URLError) as info:
        run(unreachable, "chat.post_message", channel="C1", text="hi")
    assert unreachable.on_error(info.value, TASK, None, now=NOW) is None
    refused = SlackRequestError("Json data can only be submitted as POST requests.")
    assert unreachable.on_error(refused, TASK, None, now=NOW) == OnErrorResult(
        skip_retrying=True)

"""OpenAI's rate-limit durations and the integration's ``on_error`` decisions.

The errors are real ``openai.APIStatusError`` exceptions raised by the SDK against a local server
answering as OpenAI documents (error-codes guide, rate-limit headers); ``now`` is fixed, so no test
waits.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openai
import pytest

from trigger_celery import OnErrorResult, TriggerCeleryError
from trigger_celery.integration import TaskInfo
from trigger_celery_openai import OpenAI
from trigger_celery_openai.errors import DurationParseError, parse_reset_duration

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TASK = TaskInfo(run_id="run-1", key="k", idempotency_key="cd" * 32, name="openai", attempts=1)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


# -- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1), ("6m0s", 360), ("6m59s", 419), ("45m", 2700), ("1h2s", 3602),
        ("1h44m5s", 6245), ("3h36m7.312s", 12967.312), ("72ms", 0.072), ("1d22h8m1s", 166081),
    ],
)
def test_parse_reset_duration(text: str, seconds: float):
    assert parse_reset_duration(text) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize(
    "text", ["", "   ", "abc", "-1s", "+1s", "5", "5x", "1h-2m", "s", "1.2.3s", "6m0", "1 s",
             "1s garbage", "1y", "ms"],
)
def test_parse_reset_duration_rejects_garbage(text: str):
    with pytest.raises(DurationParseError) as info:
        parse_reset_duration(text)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TriggerCeleryError)
    assert repr(text) in str(info.value)


# -- on_error against real SDK exceptions -------------------------------------------------------


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


@pytest.fixture
def integration(httpserver) -> OpenAI:
    return OpenAI(credential="sk-test", base_url=httpserver.url_for("/v1"))


def raise_from(httpserver, integration: OpenAI, status: int, body: Any,
               headers: dict[str, str] | None = None) -> openai.APIStatusError:
    """Have the server answer ``chat.completions.create`` so, and return what the SDK raised."""
    httpserver.expect_oneshot_request("/v1/chat/completions", method="POST").respond_with_json(
        body, status=status, headers=headers or {})
    op = integration.operations()["chat.completions.create"]
    params = op.validate("openai.chat.completions.create",
                         {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
    with pytest.raises(openai.APIStatusError) as info:
        op.fn(integration.client(), params, TASK)
    assert info.value.status_code == status
    return info.value


def decide(integration: OpenAI, error: BaseException) -> Any:
    return integration.on_error(error, TASK, None, now=NOW)


def test_429_requests_exhausted_retries_at_the_requests_reset(httpserver, integration):
    err = raise_from(httpserver, integration, 429, fixture("error.429.rate_limit.json"), {
        "x-ratelimit-limit-requests": "3", "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "6m0s",
        "x-ratelimit-remaining-tokens": "1000", "x-ratelimit-reset-tokens": "1s",
    })
    assert isinstance(err, openai.RateLimitError)
    assert decide(integration, err) == OnErrorResult(retry_at=NOW + timedelta(seconds=360))


def test_429_tokens_exhausted_retries_at_the_tokens_reset(httpserver, integration):
    err = raise_from(httpserver, integration, 429, fixture("error.429.rate_limit.json"), {
        "x-ratelimit-remaining-requests": "10", "x-ratelimit-reset-requests": "6m0s",
        "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "72ms",
    })
    assert decide(integration, err) == OnErrorResult(
        retry_at=NOW + timedelta(milliseconds=72))


def test_429_both_exhausted_retries_at_the_later_reset(httpserver, integration):
    err = raise_from(httpserver, integration, 429, fixture("error.429.rate_limit.json"), {
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1h2s",
    })
    assert decide(integration, err) == OnErrorResult(retry_at=NOW + timedelta(seconds=3602))


def test_exhausted_limit_closes_the_key_until_the_later_reset(httpserver, integration):
    import time

    err = raise_from(httpserver, integration, 429, fixture("error.429.rate_limit.json"), {
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1h2s",
    })
    until = integration.rate_limit_closed_until(err)
    assert until is not None and until - time.time() == pytest.approx(3602, abs=5)
    assert integration.rate_limit_closed_until(None) is None
    fine = raise_from(httpserver, integration, 500, {"error": {"message": "x"}},
                      {"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "1s"})
    assert integration.rate_limit_closed_until(fine) is None


def test_429_insufficient_quota_never_retries(httpserver, integration):
    err = raise_from(httpserver, integration, 429, fixture("error.429.insufficient_quota.json"),
                     {"retry-after": "20"})
    assert decide(integration, err) == OnErrorResult(skip_retrying=True)


def test_429_retry_after_ms_wins(httpserver, integration):
    err = raise_from(httpserver, integration, 429, fixture("error.429.rate_limit.json"), {
        "retry-after-ms": "1500", "retry-after": "20",
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s",
    })
    assert decide(integration, err) == OnErrorResult(
        retry_at=NOW + timedelta(milliseconds=1500))


def test_429_retry_after_seconds_beats_reset_headers(httpserver, integration):
    err = raise_from(httpserver, integration, 429, fixture("error.429.rate_limit.json"), {
        "retry-after": "20",
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s",
    })
    assert decide(integration, err) == OnErrorResult(retry_at=NOW + timedelta(seconds=20))


def test_429_retry_after_http_date(httpserver, integration):
    err = raise_from(httpserver, integration, 429, fixture("error.429.rate_limit.json"),
                     {"retry-after": "Wed, 01 May 2024 12:01:30 GMT"})
    assert decide(integration, err) == OnErrorResult(
        retry_at=datetime(2024, 5, 1, 12, 1, 30, tzinfo=UTC))


def test_429_without_usable_headers_uses_backoff(httpserver, integration):
    err = raise_from(httpserver, integration, 429, fixture("error.429.rate_limit.json"), {
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "soon",
    })
    assert decide(integration, err) is None


@pytest.mark.parametrize("status", [500, 502, 503, 408, 409])
def test_server_errors_timeouts_and_conflicts_use_backoff(httpserver, integration, status):
    err = raise_from(httpserver, integration, status, fixture("error.500.json"))
    assert decide(integration, err) is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_client_errors_skip_retrying(httpserver, integration, status):
    err = raise_from(httpserver, integration, status, fixture("error.400.json"))
    assert decide(integration, err) == OnErrorResult(skip_retrying=True)


def test_connection_errors_use_backoff():
    integration = OpenAI(credential="sk-test", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(openai.APIConnectionError) as info:
        integration.client().models.with_raw_response.list(timeout=2)
    assert decide(integration, info.value) is None

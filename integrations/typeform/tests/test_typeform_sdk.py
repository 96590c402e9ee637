"""Typeform operations through the real ``TypeformClient`` against a local HTTP server.

Each test checks the request an operation sends (method, path, query, body, auth) and that the
task's output is the API's JSON as served. Fixture bodies are ours, shaped after Typeform's docs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Response

from trigger_celery import OnErrorResult, TriggerCeleryError, ValidationError, retry
from trigger_celery.integration import TaskInfo
from trigger_celery_typeform import (
    EU_BASE_URL,
    Typeform,
    TypeformClient,
    TypeformError,
    iter_response_pages,
)

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "tfp_test_secret_token_123"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TASK = TaskInfo(run_id="run-1", key="k", idempotency_key="0" * 64, name="typeform", attempts=1)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


@pytest.fixture
def server(httpserver):
    yield httpserver
    httpserver.check_assertions()


@pytest.fixture
def typeform(server) -> Typeform:
    return Typeform(credential=TOKEN, base_url=server.url_for("/").rstrip("/"))


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def run(integration: Typeform, name: str, **params: Any) -> Any:
    """Validate params and run the operation the way the engine does."""
    op = integration.operations()[name]
    validated = op.validate(f"typeform.{name}", params)
    return op.fn(integration.client(), validated, TASK)


# -- integration shape --------------------------------------------------------------------------


def test_integration_declares_ids_retry_and_operations():
    assert (Typeform.id, Typeform.icon, Typeform.credential_env) == ("typeform", "typeform",
                                                                      "TYPEFORM_TOKEN")
    assert Typeform.retry == retry.standard_backoff
    assert sorted(Typeform.operations()) == sorted([
        "forms.get", "forms.list", "forms.create", "forms.update", "forms.delete",
        "responses.list", "responses.delete",
        "webhooks.create", "webhooks.get", "webhooks.list", "webhooks.update",
        "webhooks.delete", "webhooks.toggle",
    ])


def test_token_from_environment_and_never_in_reprs(monkeypatch, server):
    monkeypatch.setenv("TYPEFORM_TOKEN", TOKEN)
    integration = Typeform(base_url=EU_BASE_URL)
    client = integration.client()
    assert client.base_url == "https://api.eu.typeform.com"
    for text in (repr(integration), repr(client), repr(client._auth), repr(vars(client))):
        assert TOKEN not in text


# -- forms --------------------------------------------------------------------------------------


def test_forms_get(server, typeform):
    server.expect_oneshot_request("/forms/abc123", method="GET", headers=AUTH).respond_with_json(
        fixture("form.json"))
    assert run(typeform, "forms.get", uid="abc123") == fixture("form.json")
    op = Typeform.operations()["forms.get"]
    params = op.validate("typeform.forms.get", {"uid": "abc123"})
    assert op.display_name(params) == "Get form abc123"
    assert op.display_properties(params) == [{"label": "Form ID", "text": "abc123"}]


def test_forms_get_quotes_the_id_into_one_path_segment(server, typeform):
    # werkzeug decodes the path it matches on; the raw request line shows what was sent
    server.expect_oneshot_request("/forms/a/b", method="GET").respond_with_json({"id": "a/b"})
    assert run(typeform, "forms.get", uid="a/b") == {"id": "a/b"}
    assert server.log[0][0].environ["REQUEST_URI"] == "/forms/a%2Fb"


def test_forms_list_sends_every_query_param(server, typeform):
    server.expect_oneshot_request(
        "/forms", method="GET", headers=AUTH,
        query_string={"page": "2", "page_size": "50", "search": "test", "workspace_id": "ws1"},
    ).respond_with_json(fixture("forms.list.json"))
    out = run(typeform, "forms.list", page=2, page_size=50, search="test", workspace_id="ws1")
    assert out == fixture("forms.list.json")


def test_forms_list_without_params_sends_no_query(server, typeform):
    server.expect_oneshot_request("/forms", method="GET", query_string="").respond_with_json(
        fixture("forms.list.json"))
    assert run(typeform, "forms.list")["total_items"] == 1


def test_forms_create_posts_the_definition(server, typeform):
    definition = {"title": "Test form", "fields": [{"type": "short_text", "title": "Name?"}]}
    server.expect_oneshot_request("/forms", method="POST", json=definition).respond_with_json(
        fixture("form.json"), status=201)
    assert run(typeform, "forms.create", data=definition) == fixture("form.json")


def test_forms_update_override_puts_the_whole_form(server, typeform):
    form = fixture("form.json")
    server.expect_oneshot_request("/forms/abc123", method="PUT", json=form).respond_with_json(form)
    assert run(typeform, "forms.update", uid="abc123", data=form, override=True) == form


def test_forms_update_patches_with_json_patch(server, typeform):
    patch = [{"op": "replace", "path": "/title", "value": "New title"},
             {"op": "remove", "path": "/settings/meta"}]
    server.expect_oneshot_request(
        "/forms/abc123", method="PATCH", json=patch).respond_with_response(Response(status=204))
    assert run(typeform, "forms.update", uid="abc123", data=patch) is None


def test_forms_update_rejects_mismatched_data_before_any_request(typeform):
    with pytest.raises(ValidationError, match="JSON Patch"):
        run(typeform, "forms.update", uid="abc123", data={"title": "x"})
    with pytest.raises(ValidationError, match="whole form"):
        run(typeform, "forms.update", uid="abc123", data=[], override=True)


def test_forms_delete(server, typeform):
    server.expect_oneshot_request("/forms/abc123", method="DELETE").respond_with_response(
        Response(status=204))
    assert run(typeform, "forms.delete", uid="abc123") is None


def test_unknown_param_is_a_validation_error_naming_it(typeform):
    with pytest.raises(ValidationError, match="colour"):
        run(typeform, "forms.get", uid="abc123", colour="red")


# -- responses ----------------------------------------------------------------------------------


def test_responses_list_sends_every_documented_query_param(server, typeform):
    page = {"total_items": 0, "page_count": 1, "items": []}
    server.expect_oneshot_request(
        "/forms/abc123/responses", method="GET", headers=AUTH,
        query_string={
            "page_size": "100", "since": "2024-01-01T00:00:00Z", "until": "2024-02-01T00:00:00Z",
            "after": "tok_a", "before": "tok_b", "included_response_ids": "r1,r2",
            "excluded_response_ids": "r3", "response_type": "completed,partial",
            "completed": "false", "sort": "submitted_at,asc", "query": "Ada",
            "fields": "f1,f2", "answered_fields": "f1",
        },
    ).respond_with_json(page)
    out = run(
        typeform, "responses.list", uid="abc123", page_size=100, since="2024-01-01T00:00:00Z",
        until="2024-02-01T00:00:00Z", after="tok_a", before="tok_b",
        included_response_ids=["r1", "r2"], excluded_response_ids=["r3"],
        response_type=["completed", "partial"], completed=False, sort="submitted_at,asc",
        query="Ada", fields=["f1", "f2"], answered_fields=["f1"],
    )
    assert out == page


def test_responses_delete_joins_ids(server, typeform):
    server.expect_oneshot_request(
        "/forms/abc123/responses", method="DELETE",
        query_string={"included_response_ids": "r1,r2"},
    ).respond_with_response(Response(status=200))
    assert run(typeform, "responses.delete", uid="abc123",
               included_response_ids=["r1", "r2"]) is None
    with pytest.raises(ValidationError, match="included_response_ids"):
        run(typeform, "responses.delete", uid="abc123", included_response_ids=[])


def _items(*tokens: str) -> dict[str, Any]:
    return {"total_items": 5, "page_count": 3,
            "items": [{"token": t, "response_id": t, "answers": []} for t in tokens]}


def test_iter_response_pages_follows_the_before_token(server):
    server.expect_ordered_request(
        "/forms/abc123/responses", query_string={"page_size": "2", "completed": "true"},
    ).respond_with_json(_items("t1", "t2"))
    server.expect_ordered_request(
        "/forms/abc123/responses",
        query_string={"page_size": "2", "completed": "true", "before": "t2"},
    ).respond_with_json(_items("t3", "t4"))
    server.expect_ordered_request(
        "/forms/abc123/responses",
        query_string={"page_size": "2", "completed": "true", "before": "t4"},
    ).respond_with_json(_items("t5"))
    client = TypeformClient(TOKEN, base_url=server.url_for("/"))
    pages = list(iter_response_pages(client, "abc123", page_size=2, completed=True))
    assert [[i["token"] for i in p["items"]] for p in pages] == [["t1", "t2"], ["t3", "t4"], ["t5"]]
    assert len(server.log) == 3


def test_iter_response_pages_stops_on_an_empty_page(server):
    server.expect_ordered_request("/forms/abc123/responses").respond_with_json(_items("t1"))
    server.expect_ordered_request("/forms/abc123/responses").respond_with_json(_items())
    client = TypeformClient(TOKEN, base_url=server.url_for("/"))
    assert len(list(iter_response_pages(client, "abc123", page_size=1))) == 2


def test_iter_response_pages_refuses_sort_and_bad_page_size(server):
    client = TypeformClient(TOKEN, base_url=server.url_for("/"))
    with pytest.raises(ValueError, match="sort"):
        next(iter_response_pages(client, "abc123", sort="submitted_at,asc"))
    with pytest.raises(ValueError, match="page_size"):
        next(iter_response_pages(client, "abc123", page_size=1001))


# -- webhooks -----------------------------------------------------------------------------------


def test_webhooks_create_puts_the_tag_and_redacts_the_secret(server, typeform):
    body = {"url": "https://example.com/typeform", "enabled": True, "secret": "whsec",
            "verify_ssl": True}
    server.expect_oneshot_request(
        "/forms/abc123/webhooks/trigger", method="PUT", json=body, headers=AUTH,
    ).respond_with_json(fixture("webhook.json"))
    out = run(typeform, "webhooks.create", uid="abc123", tag="trigger",
              url="https://example.com/typeform", secret="whsec", verify_ssl=True)
    assert out == fixture("webhook.json")
    op = Typeform.operations()["webhooks.create"]
    assert op.redact == ("secret",)
    assert Typeform.operations()["webhooks.update"].redact == ("secret",)


def test_webhooks_update_puts_too(server, typeform):
    body = {"url": "https://example.com/new", "enabled": False}
    server.expect_oneshot_request(
        "/forms/abc123/webhooks/trigger", method="PUT", json=body,
    ).respond_with_json(fixture("webhook.json"))
    assert run(typeform, "webhooks.update", uid="abc123", tag="trigger",
               url="https://example.com/new", enabled=False) == fixture("webhook.json")


def test_webhooks_get_list_delete_toggle(server, typeform):
    hook = fixture("webhook.json")
    server.expect_oneshot_request("/forms/abc123/webhooks/trigger", method="GET").respond_with_json(
        hook)
    server.expect_oneshot_request("/forms/abc123/webhooks", method="GET").respond_with_json(
        {"items": [hook]})
    server.expect_oneshot_request(
        "/forms/abc123/webhooks/trigger", method="PUT", json={"enabled": False},
    ).respond_with_json({**hook, "enabled": False})
    server.expect_oneshot_request(
        "/forms/abc123/webhooks/trigger", method="DELETE",
    ).respond_with_response(Response(status=204))
    assert run(typeform, "webhooks.get", uid="abc123", tag="trigger") == hook
    assert run(typeform, "webhooks.list", uid="abc123") == {"items": [hook]}
    assert run(typeform, "webhooks.toggle", uid="abc123", tag="trigger",
               enabled=False)["enabled"] is False
    assert run(typeform, "webhooks.delete", uid="abc123", tag="trigger") is None
    op = Typeform.operations()["webhooks.toggle"]
    params = op.validate("t", {"uid": "abc123", "tag": "trigger", "enabled": False})
    assert op.display_name(params) == "Disable webhook trigger of abc123"


# -- errors and on_error ------------------------------------------------------------------------


def _error(server, typeform, status: int, body: Any, headers: dict[str, str] | None = None):
    server.expect_oneshot_request("/forms/abc123").respond_with_json(
        body, status=status, headers=headers or {})
    with pytest.raises(TypeformError) as info:
        run(typeform, "forms.get", uid="abc123")
    return info.value


def test_error_keeps_status_parsed_body_and_headers(server, typeform):
    err = _error(server, typeform, 404, fixture("error.404.json"), {"x-request-id": "req-1"})
    assert isinstance(err, TriggerCeleryError)
    assert err.status == 404
    assert err.body == fixture("error.404.json")
    assert err.headers["X-Request-Id"] == "req-1"
    assert "FORM_NOT_FOUND" in str(err) and TOKEN not in str(err)
    assert typeform.on_error(err, TASK, None, now=NOW) == OnErrorResult(skip_retrying=True)


def test_non_json_error_body_is_kept_as_text(server, typeform):
    server.expect_oneshot_request("/forms/abc123").respond_with_data("bad gateway", status=502)
    with pytest.raises(TypeformError) as info:
        run(typeform, "forms.get", uid="abc123")
    assert info.value.body == "bad gateway"
    assert typeform.on_error(info.value, TASK, None, now=NOW) is None


def test_429_with_retry_after_seconds_retries_then(server, typeform):
    err = _error(server, typeform, 429, {"code": "TOO_MANY_REQUESTS"}, {"Retry-After": "30"})
    assert typeform.on_error(err, TASK, None, now=NOW) == OnErrorResult(
        retry_at=NOW + timedelta(seconds=30))


def test_429_with_retry_after_http_date(server, typeform):
    err = _error(server, typeform, 429, {}, {"Retry-After": "Wed, 01 May 2024 12:05:00 GMT"})
    assert typeform.on_error(err, TASK, None, now=NOW) == OnErrorResult(
        retry_at=datetime(2024, 5, 1, 12, 5, tzinfo=UTC))


def test_429_without_retry_after_uses_backoff(server, typeform):
    err = _error(server, typeform, 429, {"code": "TOO_MANY_REQUESTS"})
    assert typeform.on_error(err, TASK, None, now=NOW) is None


def test_5xx_uses_backoff_and_other_errors_too(server, typeform):
    err = _error(server, typeform, 503, {"code": "UNAVAILABLE"})
    assert typeform.on_error(err, TASK, None, now=NOW) is None
    assert typeform.on_error(ConnectionError("reset"), TASK, None, now=NOW) is None


def test_401_skips_retrying(server, typeform):
    err = _error(server, typeform, 401, {"code": "AUTHENTICATION_FAILED"})
    assert typeform.on_error(err, TASK, None, now=NOW).skip_retrying is True

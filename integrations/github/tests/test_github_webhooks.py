"""GitHub webhook receiving (signature, event naming, WSGI answers) and trigger factories."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from tests.support import SHARED_FIXTURES
from trigger_celery import ConfigurationError, TriggerCeleryError
from trigger_celery_github import triggers
from trigger_celery_github.webhooks import (
    MalformedWebhook,
    WebhookRejected,
    handle_webhook,
    make_wsgi_app,
    sign,
    verify_signature,
)

SECRET = "It's a Secret to Everybody"
WEBHOOKS = SHARED_FIXTURES / "github" / "webhooks"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str]] = []

    def __call__(self, name: str, payload: dict[str, Any], *, id: str) -> None:
        self.calls.append((name, payload, id))


def headers_for(body: bytes, event: str = "issues", delivery: str = "d-1",
                secret: str = SECRET) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(secret, body), "Content-Type": "application/json"}


def test_signature_matches_githubs_documented_example() -> None:
    # "Validating webhook deliveries": secret "It's a Secret to Everybody", payload
    # "Hello, World!" -> this signature.
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(SECRET, b"Hello, World!") == expected
    assert verify_signature(SECRET, b"Hello, World!", expected)
    assert verify_signature(SECRET.encode(), b"Hello, World!", expected)


@pytest.mark.parametrize(
    "header",
    [None, "", "sha256=", "sha256=" + "0" * 64, "sha1=" + hmac.new(
        SECRET.encode(), b"Hello, World!", hashlib.sha1).hexdigest(),
     sign("another secret", b"Hello, World!"), sign(SECRET, b"Hello, World?")],
)
def test_bad_or_missing_signature_is_refused(header: str | None) -> None:
    assert verify_signature(SECRET, b"Hello, World!", header) is False


def test_empty_secret_never_verifies() -> None:
    assert verify_signature("", b"x", sign("", b"x")) is False
    with pytest.raises(ConfigurationError):
        handle_webhook({}, b"{}", secret="", send_event=Recorder())
    with pytest.raises(ConfigurationError):
        make_wsgi_app(secret="", send_event=Recorder())


def test_handle_webhook_names_event_and_uses_delivery_id() -> None:
    body = json.dumps({"action": "opened", "issue": {"number": 1}}).encode()
    rec = Recorder()
    lower = {k.lower(): v for k, v in headers_for(body, delivery="72d3162e").items()}
    assert handle_webhook(lower, body, secret=SECRET, send_event=rec) == (
        "github.issues.opened", "72d3162e"
    )
    assert rec.calls == [("github.issues.opened", json.loads(body), "72d3162e")]


def test_push_has_no_action() -> None:
    body = json.dumps({"ref": "refs/heads/main", "repository": {"full_name": "o/r"}}).encode()
    rec = Recorder()
    name, _ = handle_webhook(headers_for(body, event="push"), body, secret=SECRET, send_event=rec)
    assert name == "github.push"


@pytest.mark.parametrize("tamper", ["wrong-secret", "missing", "body-changed"])
def test_rejected_delivery_sends_nothing(tamper: str) -> None:
    body = json.dumps({"action": "opened"}).encode()
    headers = headers_for(body, secret="wrong" if tamper == "wrong-secret" else SECRET)
    if tamper == "missing":
        del headers["X-Hub-Signature-256"]
    if tamper == "body-changed":
        body = body.replace(b"opened", b"closed")
    rec = Recorder()
    with pytest.raises(WebhookRejected) as info:
        handle_webhook(headers, body, secret=SECRET, send_event=rec)
    assert info.value.status == 401
    assert isinstance(info.value, TriggerCeleryError)
    assert rec.calls == []


@pytest.mark.parametrize(
    ("body", "drop"),
    [(b"not json", None), (b"[1, 2]", None), (b"{}", "X-GitHub-Delivery"),
     (b"{}", "X-GitHub-Event")],
)
def test_malformed_but_signed_delivery(body: bytes, drop: str | None) -> None:
    headers = headers_for(body)
    if drop:
        del headers[drop]
    rec = Recorder()
    with pytest.raises(MalformedWebhook) as info:
        handle_webhook(headers, body, secret=SECRET, send_event=rec)
    assert info.value.status == 400
    assert rec.calls == []


def test_wsgi_app_answers() -> None:
    rec = Recorder()
    client = Client(make_wsgi_app(secret=SECRET, send_event=rec))
    body = json.dumps({"action": "created", "starred_at": None}).encode()

    ok = client.post("/github", data=body, headers=headers_for(body, event="star", delivery="d-9"))
    assert ok.status_code == 202
    assert ok.get_json() == {"event": "github.star.created", "id": "d-9", "runs": [],
                             "duplicate": False}

    bad = headers_for(body, event="star", delivery="d-10", secret="nope")
    assert client.post("/github", data=body, headers=bad).status_code == 401
    assert client.post("/github", data=b"nope", headers=headers_for(b"nope")).status_code == 400
    assert client.get("/github").status_code == 405
    assert [c[2] for c in rec.calls] == ["d-9"]


def test_wsgi_answer_lists_the_runs_and_marks_a_redelivery_duplicate(store_redis) -> None:
    from trigger_celery import TriggerClient, event_trigger

    app = TriggerClient("webhook-answers", runs_queue="webhook-answers-unconsumed",
                        key_prefix="tcwebhook")
    for job_id in ("starred-a", "starred-b"):
        app.define_job(id=job_id, version="1.0.0", trigger=event_trigger("github.star.created"))(
            lambda payload, io, ctx: None)
    client = Client(make_wsgi_app(secret=SECRET, send_event=app.send_event))
    body = json.dumps({"action": "created", "starred_at": None}).encode()
    headers = headers_for(body, event="star", delivery="d-77")

    first = client.post("/", data=body, headers=headers)
    assert first.status_code == 202
    answer = first.get_json()
    runs = sorted(r.id for r in app.list_runs())
    assert len(runs) == 2 and sorted(r["id"] for r in answer["runs"]) == runs
    assert answer["duplicate"] is False and not any(r["duplicate"] for r in answer["runs"])

    again = client.post("/", data=body, headers=headers).get_json()  # GitHub's redelivery
    assert sorted(r["id"] for r in again["runs"]) == runs
    assert again["duplicate"] is True and all(r["duplicate"] for r in again["runs"])
    assert len(app.list_runs()) == 2


def test_wsgi_app_reports_send_event_failure_as_500(caplog: pytest.LogCaptureFixture) -> None:
    def broken(name: str, payload: dict[str, Any], *, id: str) -> None:
        raise RuntimeError("redis down")

    client = Client(make_wsgi_app(secret=SECRET, send_event=broken))
    body = b'{"action": "opened"}'
    assert client.post("/", data=body, headers=headers_for(body)).status_code == 500
    assert "send_event failed" in caplog.text


def real_payloads() -> list[Any]:
    if not WEBHOOKS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"recorded webhook payloads not found at {WEBHOOKS}"))]
    files = sorted(WEBHOOKS.glob("*/*.payload.json"))
    return [pytest.param(f, id=f"{f.parent.name}/{f.name}") for f in files]


@pytest.mark.parametrize("path", real_payloads())
def test_real_payloads_get_their_event_names(path: Path) -> None:
    event = path.parent.name
    action = path.name.removesuffix(".payload.json")
    body = path.read_bytes()
    rec = Recorder()
    name, delivery = handle_webhook(headers_for(body, event=event, delivery=f"id-{event}"), body,
                                    secret=SECRET, send_event=rec)
    assert name == f"github.{event}.{action}"
    assert delivery == f"id-{event}"
    assert rec.calls[0][1] == json.loads(body)

    # and the matching trigger's filter selects this payload's repository
    payload = json.loads(body)
    owner, repo = payload["repository"]["full_name"].split("/")
    spec = {
        "issues/opened": lambda: triggers.issue_opened_spec(owner, repo),
        "issue_comment/created": lambda: triggers.issue_comment_spec(owner, repo),
        "star/created": lambda: triggers.new_star_spec(owner, repo),
    }.get(f"{event}/{action}")
    if spec is not None:
        trig_name, trig_filter = spec()
        assert trig_name == name
        assert matches(trig_filter, payload)
        assert not matches(triggers.issue_opened_spec("someone", "else")[1], payload)


def matches(event_filter: dict[str, Any], payload: Any) -> bool:
    """Trigger.dev EventFilter semantics for plain value lists (enough for these filters)."""
    for key, want in event_filter.items():
        if not isinstance(payload, dict) or key not in payload:
            return False
        if isinstance(want, dict):
            if not matches(want, payload[key]):
                return False
        elif payload[key] not in want:
            return False
    return True


# -- triggers -------------------------------------------------------------------------------

REPO_FILTER = {"repository": {"full_name": ["octo/hello"]}}


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        (lambda: triggers.issue_opened_spec("octo", "hello"), "github.issues.opened"),
        (lambda: triggers.issue_comment_spec("octo", "hello"), "github.issue_comment.created"),
        (lambda: triggers.issue_comment_spec("octo", "hello", "edited"),
         "github.issue_comment.edited"),
        (lambda: triggers.new_star_spec("octo", "hello"), "github.star.created"),
        (lambda: triggers.push_spec("octo", "hello"), "github.push"),
        (lambda: triggers.pull_request_spec("octo", "hello"), "github.pull_request.opened"),
        (lambda: triggers.pull_request_spec("octo", "hello", "closed"),
         "github.pull_request.closed"),
    ],
)
def test_trigger_specs(spec: Any, name: str) -> None:
    assert spec() == (name, REPO_FILTER)


@pytest.mark.parametrize(
    "bad",
    [lambda: triggers.push_spec("octo/evil", "x"), lambda: triggers.push_spec("octo", ""),
     lambda: triggers.pull_request_spec("octo", "hello", "Opened!")],
)
def test_trigger_specs_refuse_bad_input(bad: Any) -> None:
    with pytest.raises(ConfigurationError):
        bad()


def test_trigger_factories_build_event_triggers() -> None:
    jobs = pytest.importorskip("trigger_celery._jobs", reason="the engine's _jobs module")
    built = {
        triggers.on_issue_opened: triggers.issue_opened_spec,
        triggers.on_new_star: triggers.new_star_spec,
        triggers.on_push: triggers.push_spec,
        triggers.on_issue_comment: triggers.issue_comment_spec,
        triggers.on_pull_request: triggers.pull_request_spec,
    }
    for factory, spec in built.items():
        name, event_filter = spec("octo", "hello")
        assert factory("octo", "hello") == jobs.event_trigger(name, filter=event_filter)
    assert triggers.on_pull_request("octo", "hello", action="closed") == jobs.event_trigger(
        "github.pull_request.closed", filter=REPO_FILTER
    )

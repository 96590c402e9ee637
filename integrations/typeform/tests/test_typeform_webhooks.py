"""Receiving Typeform webhooks: signature checks, event sending, the WSGI app, the trigger."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from trigger_celery_typeform.webhooks import (
    WebhookPayloadError,
    WebhookSignatureError,
    form_response_trigger_spec,
    handle_webhook,
    make_wsgi_app,
    on_form_response,
    verify_signature,
)

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "test-webhook-secret"
BODY = (FIXTURES / "form_response.json").read_bytes()


def signature(secret: str, body: bytes) -> str:
    """Computed here independently of the module under test, as Typeform documents it."""
    return "sha256=" + base64.b64encode(
        hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def __call__(self, name: str, payload: Any, **kwargs: Any) -> list[str]:
        self.calls.append((name, payload, kwargs))
        return ["run-1"]


def test_good_signature_sends_the_event_with_typeform_event_id():
    send = Recorder()
    result = handle_webhook({"typeform-signature": signature(SECRET, BODY)}, BODY,
                            secret=SECRET, send_event=send)
    assert result == ["run-1"]
    assert send.calls == [("typeform.form_response", json.loads(BODY),
                           {"id": "01HTEST0EVENT0ID0000000000"})]


@pytest.mark.parametrize("header", [
    None,
    "",
    signature("wrong-secret", BODY),
    signature(SECRET, BODY + b" "),
    signature(SECRET, BODY).removeprefix("sha256="),
    "sha1=" + signature(SECRET, BODY).removeprefix("sha256="),
])
def test_missing_or_wrong_signature_is_rejected(header):
    send = Recorder()
    headers = {} if header is None else {"Typeform-Signature": header}
    with pytest.raises(WebhookSignatureError):
        handle_webhook(headers, BODY, secret=SECRET, send_event=send)
    assert send.calls == []


def test_no_secret_means_nothing_is_accepted():
    with pytest.raises(WebhookSignatureError, match="no secret"):
        verify_signature("", BODY, signature("", BODY))


def test_bytes_secret_and_header_case():
    verify_signature(SECRET.encode(), BODY, signature(SECRET, BODY))


def test_signed_but_malformed_payload_is_rejected():
    for body in (b"not json", b"[]", b'{"event_type": "form_response"}'):
        with pytest.raises(WebhookPayloadError):
            handle_webhook({"Typeform-Signature": signature(SECRET, body)}, body,
                           secret=SECRET, send_event=Recorder())


def test_partial_responses_get_their_own_event_name():
    body = json.dumps({"event_id": "e2", "event_type": "form_response_partial",
                       "form_response": {"form_id": "abc123"}}).encode()
    send = Recorder()
    handle_webhook({"Typeform-Signature": signature(SECRET, body)}, body, secret=SECRET,
                   send_event=send)
    assert send.calls[0][0] == "typeform.form_response_partial"


def test_wsgi_app_answers_200_401_400_405():
    send = Recorder()
    client = Client(make_wsgi_app(secret=SECRET, send_event=send))
    ok = client.post("/typeform", data=BODY, content_type="application/json",
                     headers={"Typeform-Signature": signature(SECRET, BODY)})
    assert ok.status_code == 200
    assert ok.json == {"ok": True, "event_id": "01HTEST0EVENT0ID0000000000", "runs": [],
                       "duplicate": False}
    assert client.post("/typeform", data=BODY, content_type="application/json").status_code == 401
    bad = b"{oops"
    assert client.post("/typeform", data=bad,
                       headers={"Typeform-Signature": signature(SECRET, bad)}).status_code == 400
    assert client.get("/typeform").status_code == 405
    assert len(send.calls) == 1


def test_trigger_spec_filters_on_the_form_id():
    assert form_response_trigger_spec("abc123") == (
        "typeform.form_response", {"form_response": {"form_id": ["abc123"]}})
    assert form_response_trigger_spec("abc123", tag="trigger")[1] == {
        "form_response": {"form_id": ["abc123"]}}
    with pytest.raises(ValueError):
        form_response_trigger_spec("")


def test_on_form_response_builds_the_engine_event_trigger():
    try:
        jobs = importlib.import_module("trigger_celery._jobs")
    except ImportError as exc:  # the engine is written concurrently
        pytest.skip(f"trigger_celery._jobs not importable yet: {exc}")
    if not hasattr(jobs, "event_trigger"):
        pytest.skip("trigger_celery.event_trigger not written yet")
    expected = jobs.event_trigger("typeform.form_response",
                                  filter={"form_response": {"form_id": ["abc123"]}})
    assert on_form_response("abc123") == expected


def test_wsgi_answer_lists_the_runs_and_marks_a_redelivery_duplicate(store_redis):
    from trigger_celery import TriggerClient, event_trigger

    app = TriggerClient("typeform-answers", runs_queue="typeform-answers-unconsumed",
                        key_prefix="tctypeform")
    app.define_job(id="form-in", version="1.0.0",
                   trigger=event_trigger("typeform.form_response"))(lambda payload, io, ctx: None)
    client = Client(make_wsgi_app(secret=SECRET, send_event=app.send_event))
    headers = {"Typeform-Signature": signature(SECRET, BODY)}
    first = client.post("/", data=BODY, content_type="application/json", headers=headers).json
    (run,) = app.list_runs()
    assert first["runs"] == [{"id": run.id, "duplicate": False}] and first["duplicate"] is False
    again = client.post("/", data=BODY, content_type="application/json", headers=headers).json
    assert again["runs"] == [{"id": run.id, "duplicate": True}] and again["duplicate"] is True

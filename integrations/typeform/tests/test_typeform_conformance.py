"""Conformance with real Typeform data in ``../shared/fixtures/typeform`` (skipped when absent).

``DemoForm.json`` (a real form definition) is served for ``forms.get``; ``WebhookResponse1.json``
(a real ``form_response`` delivery) is signed with a test secret and goes through
``handle_webhook``, and the ``on_form_response`` filter must select it. The files are read in
place, never copied into the project.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from tests.support import SHARED_FIXTURES
from trigger_celery.integration import TaskInfo
from trigger_celery_typeform import Typeform
from trigger_celery_typeform.webhooks import (
    form_response_trigger_spec,
    handle_webhook,
)

SHARED = SHARED_FIXTURES / "typeform"
TASK = TaskInfo(run_id="run-1", key="k", idempotency_key="0" * 64, name="typeform", attempts=1)

pytestmark = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"{SHARED} not present: Typeform conformance skipped"
)


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


def matches(event_filter: dict[str, Any], payload: Any) -> bool:
    """Trigger.dev EventFilter semantics: nested dicts, leaves are lists of allowed values."""
    for key, expected in event_filter.items():
        if not isinstance(payload, dict) or key not in payload:
            return False
        if isinstance(expected, dict):
            if not matches(expected, payload[key]):
                return False
        elif payload[key] not in expected:
            return False
    return True


def test_forms_get_returns_the_real_form_definition(httpserver):
    raw = (SHARED / "DemoForm.json").read_bytes()
    form = json.loads(raw)
    httpserver.expect_oneshot_request(f"/forms/{form['id']}", method="GET").respond_with_data(
        raw, content_type="application/json")
    integration = Typeform(credential="tfp_test", base_url=httpserver.url_for("/").rstrip("/"))
    op = integration.operations()["forms.get"]
    out = op.fn(integration.client(), op.validate("forms.get", {"uid": form["id"]}), TASK)
    assert out == form
    httpserver.check_assertions()


def test_real_form_response_delivery_is_verified_and_sent():
    raw = (SHARED / "WebhookResponse1.json").read_bytes()
    payload = json.loads(raw)
    secret = "conformance-secret"
    header = "sha256=" + base64.b64encode(
        hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    sent: list[tuple[str, Any, dict[str, Any]]] = []
    handle_webhook({"Typeform-Signature": header}, raw, secret=secret,
                   send_event=lambda name, data, **kw: sent.append((name, data, kw)))
    assert sent == [("typeform.form_response", payload, {"id": payload["event_id"]})]

    name, event_filter = form_response_trigger_spec(payload["form_response"]["form_id"])
    assert name == sent[0][0]
    assert matches(event_filter, payload)
    assert not matches(form_response_trigger_spec("another")[1], payload)

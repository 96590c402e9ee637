"""Typeform webhooks: managing them (``io.typeform.webhooks.*``) and receiving them.

Managing: the Webhooks API (``client.webhooks`` of ``@typeform/api-client``), one task per method.
The webhook ``secret`` is redacted from stored task params.

Receiving: Typeform POSTs each submitted response as JSON (``{"event_id", "event_type":
"form_response", "form_response": {...}}``) and, when the webhook has a secret, signs the raw body:
``Typeform-Signature: sha256=<base64(HMAC-SHA256(secret, body))>``
(https://www.typeform.com/developers/webhooks/secure-your-webhooks/). We always verify: a delivery
without a valid signature is rejected, so a webhook used as a trigger must have a secret. The
payload's ``event_id`` becomes the event id, so a redelivery starts no second run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

from pydantic import Field

from trigger_celery import TriggerCeleryError, ValidationError
from trigger_celery.integration import Namespace, TaskInfo, operation, runs_answer
from trigger_celery_typeform._params import Params
from trigger_celery_typeform.client import TypeformClient

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Typeform-Signature"
#: Event names sent for Typeform's ``event_type`` values.
EVENT_NAMES = {
    "form_response": "typeform.form_response",
    "form_response_partial": "typeform.form_response_partial",
}
FORM_RESPONSE_EVENT = EVENT_NAMES["form_response"]

# -- managing: the Webhooks namespace --------------------------------------------------------


class _FormTag(Params):
    uid: str = Field(min_length=1, description="The form id.")
    tag: str = Field(min_length=1, description="The webhook's name, unique per form.")


class CreateWebhook(_FormTag):
    url: str = Field(min_length=1, description="Where Typeform POSTs each response.")
    enabled: bool = True
    secret: str | None = Field(default=None, description="Signs deliveries; redacted in storage.")
    verify_ssl: bool | None = None
    event_types: dict[str, bool] | None = Field(
        default=None, description='e.g. {"form_response": true, "form_response_partial": false}'
    )


class GetWebhook(_FormTag):
    pass


class ListWebhooks(Params):
    uid: str = Field(min_length=1)


class ToggleWebhook(_FormTag):
    enabled: bool


def _props(p: Any) -> list[dict[str, Any]]:
    props = [{"label": "Form ID", "text": p.uid}]
    if getattr(p, "tag", None):
        props.append({"label": "Tag", "text": p.tag})
    return props


def _put_webhook(client: TypeformClient, params: CreateWebhook) -> dict[str, Any]:
    return client.webhooks.create(
        params.uid, params.tag, params.url, enabled=params.enabled, secret=params.secret,
        verify_ssl=params.verify_ssl, event_types=params.event_types,
    )


class Webhooks(Namespace):
    """Task names ``typeform.webhooks.create/get/list/update/delete/toggle``."""

    name = "webhooks"

    @operation(params=CreateWebhook, display="Create webhook {tag} on {uid}",
               properties=_props, redact=("secret",))
    def create(client: TypeformClient, params: CreateWebhook, task: TaskInfo) -> dict[str, Any]:
        return _put_webhook(client, params)

    @operation(params=GetWebhook, display="Get webhook {tag} of {uid}", properties=_props)
    def get(client: TypeformClient, params: GetWebhook, task: TaskInfo) -> dict[str, Any]:
        return client.webhooks.get(params.uid, params.tag)

    @operation(params=ListWebhooks, display="List webhooks of {uid}", properties=_props)
    def list(client: TypeformClient, params: ListWebhooks, task: TaskInfo) -> dict[str, Any]:
        return client.webhooks.list(params.uid)

    @operation(params=CreateWebhook, display="Update webhook {tag} on {uid}",
               properties=_props, redact=("secret",))
    def update(client: TypeformClient, params: CreateWebhook, task: TaskInfo) -> dict[str, Any]:
        return _put_webhook(client, params)

    @operation(params=GetWebhook, display="Delete webhook {tag} of {uid}", properties=_props)
    def delete(client: TypeformClient, params: GetWebhook, task: TaskInfo) -> None:
        return client.webhooks.delete(params.uid, params.tag)

    @operation(
        params=ToggleWebhook,
        display=lambda p: f"{'Enable' if p.enabled else 'Disable'} webhook {p.tag} of {p.uid}",
        properties=_props,
    )
    def toggle(client: TypeformClient, params: ToggleWebhook, task: TaskInfo) -> dict[str, Any]:
        return client.webhooks.toggle(params.uid, params.tag, params.enabled)


# -- receiving -------------------------------------------------------------------------------


class WebhookSignatureError(TriggerCeleryError):
    """A delivery's ``Typeform-Signature`` is missing or does not match the secret."""

    retriable = False


class WebhookPayloadError(TriggerCeleryError):
    """A correctly signed delivery whose body is not a Typeform event (bad JSON, no event_id)."""

    retriable = False


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``Typeform-Signature`` value for ``body``: ``"sha256=" + base64(HMAC-SHA256)``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode("ascii")


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> None:
    """Check a delivery's signature, in constant time.

    Parameters:
        secret: the webhook's secret, as given to ``webhooks.create``.
        body: the raw request body, byte for byte as received (not re-encoded JSON).
        header: the ``Typeform-Signature`` header's value, ``None`` when absent.

    Raises:
        WebhookSignatureError: no secret configured, header missing, or signature wrong.
    """
    if not secret:
        raise WebhookSignatureError("Typeform webhook: no secret configured; refusing to accept")
    if not header:
        raise WebhookSignatureError(f"Typeform webhook: missing {SIGNATURE_HEADER} header")
    if not hmac.compare_digest(sign(secret, body).encode(), header.strip().encode()):
        raise WebhookSignatureError(f"Typeform webhook: {SIGNATURE_HEADER} does not match")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup in any mapping (dict, werkzeug ``Headers``)."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def handle_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | bytes,
    send_event: Callable[..., Any],
) -> Any:
    """Verify one delivery and send it as an event.

    Parameters:
        headers: the request headers (any case).
        body: the raw request body.
        secret: the webhook's secret.
        send_event: ``TriggerClient.send_event``-shaped: called as
            ``send_event(name, payload, id=event_id)`` with ``name`` ``typeform.form_response``
            (or ``typeform.form_response_partial``), the parsed payload and Typeform's
            ``event_id`` (redeliveries keep it, so they start no second run).

    Returns:
        What ``send_event`` returned, or ``None`` for an event type we do not forward.

    Raises:
        WebhookSignatureError: bad or missing signature (answer 401).
        WebhookPayloadError: body not a JSON object with an ``event_id`` (invalid UTF-8,
            nested too deep, a number too long), or ``send_event`` refused the payload with a
            ``ValidationError`` (e.g. ``1e999``) (answer 400).
    """
    verify_signature(secret, body, _header(headers, SIGNATURE_HEADER))
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise WebhookPayloadError(f"Typeform webhook: body is not JSON: {_short(exc)}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("event_id"), str):
        raise WebhookPayloadError("Typeform webhook: payload has no event_id")
    event_type = payload.get("event_type", "form_response")
    name = EVENT_NAMES.get(event_type) if isinstance(event_type, str) else None
    if name is None:
        return None
    try:
        return send_event(name, payload, id=payload["event_id"])
    except ValidationError as exc:  # the payload itself was refused (e.g. 1e999, too deep)
        raise WebhookPayloadError(f"Typeform webhook: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    """An error's message for an HTTP answer: at most 300 characters, printable ASCII."""
    return str(exc)[:300].encode("ascii", "backslashreplace").decode("ascii")


def make_wsgi_app(*, secret: str | bytes, send_event: Callable[..., Any]) -> Callable[..., Any]:
    """A WSGI app (werkzeug) receiving Typeform deliveries at any path.

    Answers: 200 ``{"ok": true, "event_id": ..., "runs": [{"id": run id, "duplicate": bool}],
    "duplicate": bool}`` when sent (see :func:`runs_answer`); 401 on a bad signature; 400 on a
    bad payload; 405 for methods other than POST; 500 (logged) only when ``send_event`` fails
    for another reason (the store is down: Typeform retries the delivery). Mount it under a
    path of your web app or serve it alone (``werkzeug.serving.run_simple``).
    """
    from werkzeug.wrappers import Request, Response

    def json_response(status: int, data: dict[str, Any]) -> Response:
        return Response(json.dumps(data), status=status, mimetype="application/json")

    @Request.application
    def app(request: Request) -> Response:
        if request.method != "POST":
            return json_response(405, {"ok": False, "error": "method not allowed"})
        body = request.get_data(cache=False)
        try:
            # werkzeug's Headers is mapping-shaped (``items()``) without being a Mapping
            headers = cast("Mapping[str, str]", request.headers)
            result = handle_webhook(headers, body, secret=secret, send_event=send_event)
        except WebhookSignatureError as exc:
            return json_response(401, {"ok": False, "error": str(exc)})
        except WebhookPayloadError as exc:
            return json_response(400, {"ok": False, "error": str(exc)})
        except Exception:
            logger.exception("Typeform webhook: send_event failed")
            return json_response(500, {"ok": False, "error": "could not record the event"})
        return json_response(200, {"ok": True, "event_id": json.loads(body)["event_id"],
                                   **runs_answer(result)})

    return app


# -- trigger ---------------------------------------------------------------------------------


def form_response_trigger_spec(uid: str, tag: str | None = None) -> tuple[str, dict[str, Any]]:
    """The event name and Trigger.dev ``EventFilter`` of :func:`on_form_response`.

    ``tag`` names the webhook that delivers the responses; Typeform's payload does not carry it,
    so it is not part of the filter (it is accepted so that trigger and registration read alike).
    """
    if not uid:
        raise ValueError("on_form_response: uid is empty")
    return FORM_RESPONSE_EVENT, {"form_response": {"form_id": [uid]}}


def on_form_response(uid: str, tag: str | None = None) -> Any:
    """A trigger for submitted responses of form ``uid`` (Trigger.dev's ``onFormResponse``).

    Returns ``event_trigger("typeform.form_response", filter={"form_response": {"form_id":
    [uid]}})``. Register the webhook (``webhooks.create`` with a ``secret``) and serve
    :func:`make_wsgi_app` to receive the deliveries.
    """
    from trigger_celery import event_trigger  # the engine's; imported when used

    name, event_filter = form_response_trigger_spec(uid, tag)
    return event_trigger(name, filter=event_filter)

"""Receiving GitHub webhooks: verify, name the event, hand it to ``send_event``.

Ported from GitHub's docs "Validating webhook deliveries" (``X-Hub-Signature-256`` is
``sha256=`` + hex HMAC-SHA256 of the raw body keyed by the webhook secret, compared in constant
time) and "Webhook events and payloads" (``X-GitHub-Event`` names the event, the payload's
``action`` the activity, ``X-GitHub-Delivery`` is a GUID unique to the delivery and kept on
redeliveries). Events are named like Trigger.dev's GitHub triggers: ``github.issues.opened``,
``github.push``. Receiving always verifies; there is no switch to turn it off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.wrappers import Request, Response

from trigger_celery import ConfigurationError, TriggerCeleryError, ValidationError
from trigger_celery.integration import runs_answer

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "MalformedWebhook",
    "WebhookRejected",
    "event_name",
    "handle_webhook",
    "make_wsgi_app",
    "sign",
    "verify_signature",
]

logger = logging.getLogger(__name__)

#: GitHub caps webhook payloads at 25 MB and does not deliver larger ones.
MAX_PAYLOAD_BYTES = 25 * 1024 * 1024

SendEvent = Callable[..., Any]  # send_event(name, payload, *, id=...)


class WebhookRejected(TriggerCeleryError):
    """A delivery was refused; ``status`` is the HTTP status to answer (401: bad signature)."""

    retriable = False
    status: int = 401


class MalformedWebhook(WebhookRejected):
    """A correctly signed delivery that cannot be read (headers or JSON missing): HTTP 400."""

    status = 400


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``: ``sha256=<hex digest>``."""
    return "sha256=" + hmac.new(_secret_bytes(secret), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, signature_header: str | None) -> bool:
    """Whether ``signature_header`` is GitHub's ``X-Hub-Signature-256`` of ``body``.

    False for a missing header, another algorithm (e.g. the legacy SHA-1 ``X-Hub-Signature``),
    or an empty secret. The comparison is constant-time (``hmac.compare_digest``).
    """
    if not secret or not signature_header:
        return False
    expected = sign(secret, body)
    return hmac.compare_digest(expected.encode("ascii"), signature_header.strip().encode("utf-8"))


def _header(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str | None:
    items = headers.items() if isinstance(headers, Mapping) else headers
    lname = name.lower()
    for key, value in items:
        if key.lower() == lname:
            return value
    return None


def event_name(event: str, payload: Mapping[str, Any]) -> str:
    """``github.<event>.<action>``, or ``github.<event>`` when the payload has no ``action``."""
    action = payload.get("action")
    if isinstance(action, str) and action:
        return f"github.{event}.{action}"
    return f"github.{event}"


def handle_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | bytes,
    send_event: SendEvent,
) -> tuple[str, str]:
    """Verify one delivery and send it as an event.

    Parameters:
        headers: the request's headers (names looked up case-insensitively).
        body: the raw request body, exactly as received (the signature covers these bytes).
        secret: the webhook's secret.
        send_event: called as ``send_event(name, payload, id=delivery)``, e.g.
            ``client.send_event``; the delivery id makes redeliveries no-ops.

    Returns:
        ``(event name, delivery id)``.

    Raises:
        ConfigurationError: ``secret`` is empty.
        WebhookRejected: missing or wrong ``X-Hub-Signature-256`` (``send_event`` not called).
        MalformedWebhook: no ``X-GitHub-Event`` / ``X-GitHub-Delivery``, the body is not a
            JSON object (invalid UTF-8, nested too deep, a number too long), or ``send_event``
            refused the payload with a ``ValidationError`` (e.g. ``1e999``).
    """
    if not secret:
        raise ConfigurationError("github webhooks: a secret is required to verify deliveries")
    if not verify_signature(secret, body, _header(headers, "X-Hub-Signature-256")):
        raise WebhookRejected("github webhook: missing or invalid X-Hub-Signature-256")
    event = (_header(headers, "X-GitHub-Event") or "").strip()
    delivery = (_header(headers, "X-GitHub-Delivery") or "").strip()
    if not event or not delivery:
        raise MalformedWebhook("github webhook: X-GitHub-Event and X-GitHub-Delivery are required")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedWebhook(f"github webhook: body is not JSON: {_short(exc)}") from None
    if not isinstance(payload, dict):
        raise MalformedWebhook("github webhook: body is not a JSON object")
    name = event_name(event, payload)
    try:
        send_event(name, payload, id=delivery)
    except ValidationError as exc:  # the payload itself was refused (e.g. 1e999, too deep)
        raise MalformedWebhook(f"github webhook: {_short(exc)}") from None
    return name, delivery


def _short(exc: BaseException) -> str:
    """An error's message for an HTTP answer: at most 300 characters, printable ASCII."""
    return str(exc)[:300].encode("ascii", "backslashreplace").decode("ascii")


def make_wsgi_app(*, secret: str | bytes, send_event: SendEvent) -> Callable[..., Any]:
    """A WSGI app receiving GitHub webhooks (POST, any path).

    Answers 202 ``{"event": name, "id": delivery, "runs": [{"id": run id, "duplicate": bool}],
    "duplicate": bool}`` when accepted (see :func:`runs_answer`), 401 on a bad or missing
    signature, 400 on a malformed delivery (or a form-encoded one: configure the webhook with
    ``content_type: json``), 405 for other methods, 413 over 25 MB, and 500 when ``send_event``
    fails (GitHub then shows the delivery as failed and it can be redelivered).

    Raises:
        ConfigurationError: ``secret`` is empty (at construction).
    """
    if not secret:
        raise ConfigurationError("github webhooks: a secret is required to verify deliveries")

    def _json(status: int, data: dict[str, Any]) -> Response:
        return Response(json.dumps(data), status=status, content_type="application/json")

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.method != "POST":
            response = _json(405, {"error": "POST only"})
        elif (request.content_length or 0) > MAX_PAYLOAD_BYTES:
            response = _json(413, {"error": "payload too large"})
        else:
            body = request.get_data(cache=False)
            results: list[Any] = []

            def send(name: str, payload: Any, **kwargs: Any) -> Any:
                results.append(send_event(name, payload, **kwargs))
                return results[-1]

            try:
                name, delivery = handle_webhook(
                    dict(request.headers.items()), body, secret=secret, send_event=send
                )
                response = _json(202, {"event": name, "id": delivery,
                                       **runs_answer(results[0] if results else None)})
            except WebhookRejected as exc:
                response = _json(exc.status, {"error": str(exc)})
            except Exception:
                logger.exception("github webhook: send_event failed")
                response = _json(500, {"error": "could not record the event"})
        return response(environ, start_response)

    return app

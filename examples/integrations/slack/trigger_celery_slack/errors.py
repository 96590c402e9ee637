"""What a failed Slack task does next (the integration's ``on_error`` logic).

Slack's "Rate limits" (https://docs.slack.dev/apis/web-api/rate-limits, formerly
https://api.slack.com/docs/rate-limits): limits apply per method, per workspace, per app, in
tiers (Tier 1: 1+ requests per minute ... Tier 4: 100+; ``chat.postMessage``: about one message
per second per channel). Past a limit Slack answers **HTTP 429 Too Many Requests** with the body
``{"ok": false, "error": "ratelimited"}`` and a **``Retry-After``** header holding the number of
seconds until the app may call the method again.

Every other Web API failure is an HTTP 200 (or 4xx) with ``{"ok": false, "error": "<code>"}``:
the request itself was wrong (``channel_not_found``, ``not_in_channel``, ``invalid_auth``,
``missing_scope``, ``msg_too_long``, ...) and sending it again gives the same answer, except for
the transient codes in :data:`TRANSIENT_ERRORS`. ``slack_sdk``'s ``WebClient`` raises all of them
as ``SlackApiError`` whose ``response`` holds ``status_code``, ``headers`` and ``data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from slack_sdk.errors import SlackApiError, SlackRequestError

from trigger_celery import OnErrorResult
from trigger_celery.integration import parse_retry_after

#: ``error`` codes Slack documents as temporary on its side: retried with the backoff policy.
#: ``fatal_error`` is not among them: Slack says part of the operation may have succeeded, so a
#: retry could post twice.
TRANSIENT_ERRORS = frozenset({
    "ratelimited",          # rate limited (normally with HTTP 429 and Retry-After)
    "internal_error",       # "likely due to a transient issue on our end"
    "service_unavailable",  # "the service is temporarily unavailable"
    "request_timeout",      # the POST body arrived missing or truncated
})


def error_code(error: SlackApiError) -> str | None:
    """The ``error`` field of Slack's answer (``"channel_not_found"``), or ``None``."""
    data = error.response.data
    code = data.get("error") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


def _header(headers: Mapping[str, object], name: str) -> str | None:
    """Header ``name``, case-insensitively (``WebClient`` keeps the server's spelling)."""
    lname = name.lower()
    for key, value in headers.items():
        if key.lower() == lname:
            return str(value)
    return None


def decide(error: BaseException, now: datetime) -> OnErrorResult | None:
    """The retry decision for ``error``.

    Parameters:
        error: what the task raised.
        now: the current time (aware); ``Retry-After`` seconds count from it.

    Returns:
        - HTTP 429, or the ``ratelimited`` code, with ``Retry-After`` (seconds, or an HTTP date):
          ``OnErrorResult(retry_at=now + Retry-After)``;
        - the same without a readable ``Retry-After``, any HTTP 5xx, the codes in
          :data:`TRANSIENT_ERRORS`, and errors that are not Slack's (network failures such as
          ``URLError`` or ``TimeoutError``): ``None``, the integration's backoff policy applies;
        - any other ``ok: false`` answer (``channel_not_found``, ``invalid_auth``,
          ``not_in_channel``, ...) and ``SlackRequestError`` (the SDK refused to build the
          request): ``OnErrorResult(skip_retrying=True)``, the task fails now.
    """
    if isinstance(error, SlackRequestError):
        return OnErrorResult(skip_retrying=True)
    if not isinstance(error, SlackApiError):
        return None
    status = error.response.status_code
    code = error_code(error)
    if status == 429 or code == "ratelimited":
        retry_at = parse_retry_after(_header(error.response.headers, "retry-after"), now)
        return OnErrorResult(retry_at=retry_at) if retry_at else None
    if status >= 500 or code in TRANSIENT_ERRORS:
        return None
    return OnErrorResult(skip_retrying=True)

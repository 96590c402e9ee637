"""What a failed OpenAI task does next, and the duration format of OpenAI's rate-limit headers.

Sources:
- OpenAI "Rate limits" guide, section "Rate limits in headers"
  (https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers): every response
  carries ``x-ratelimit-limit-requests``, ``x-ratelimit-limit-tokens``,
  ``x-ratelimit-remaining-requests``, ``x-ratelimit-remaining-tokens``, and
  ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens``: the time until the limit resets,
  as a Go-style duration (``1s``, ``6m0s``, ``72ms``).
- OpenAI "Error codes" guide (https://platform.openai.com/docs/guides/error-codes): 429
  "Rate limit reached for requests" (wait and retry) versus 429 "You exceeded your current quota"
  (``insufficient_quota``: retrying does not help until billing changes); 500/503 are retried
  after a brief wait.
- The ``openai`` SDK's own retry timing (``_base_client._parse_retry_after_header``):
  ``retry-after-ms`` (milliseconds) first, then ``retry-after`` (seconds or an HTTP date); it
  retries 408, 409, 429 and 5xx, which we mirror (the SDK runs with ``max_retries=0``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import openai as openai_sdk

from trigger_celery import OnErrorResult, TriggerCeleryError
from trigger_celery.integration import parse_retry_after


class DurationParseError(TriggerCeleryError, ValueError):
    """A rate-limit reset value is not a duration we understand. The message names the input."""

    retriable = False


#: Seconds per unit. Go's ``time.ParseDuration`` units, plus ``d`` (days), which OpenAI sends for
#: long resets (``1d22h8m1s``).
_UNIT_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3,
    "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")


def parse_reset_duration(text: str) -> float:
    """Seconds in a Go-style duration as OpenAI sends it in ``x-ratelimit-reset-*`` headers.

    ``"1s"`` -> 1.0, ``"6m0s"`` -> 360.0, ``"1h44m5s"`` -> 6245.0, ``"3h36m7.312s"`` ->
    12967.312, ``"72ms"`` -> 0.072, ``"1d22h8m1s"`` -> 166081.0. A bare ``"0"`` is 0 (as in Go).

    Parameters:
        text: the header value; surrounding whitespace is ignored.

    Returns:
        The duration in seconds (float, rounded to the microsecond).

    Raises:
        DurationParseError (a ``ValueError``): empty, negative, unknown unit, missing unit, or
            any other text.
    """
    if not isinstance(text, str):
        raise DurationParseError(f"rate-limit reset duration must be a string, got {text!r}")
    value = text.strip()
    if value == "0":
        return 0.0
    if not value:
        raise DurationParseError(f"empty rate-limit reset duration: {text!r}")
    if value.startswith(("-", "+")):
        raise DurationParseError(f"signed rate-limit reset duration not allowed: {text!r}")
    total = 0.0
    pos = 0
    for match in _PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(value) or pos == 0:
        raise DurationParseError(
            f"invalid rate-limit reset duration {text!r}: expected e.g. '6m0s', '1h2s', '72ms'"
        )
    return round(total, 6)


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _reset_after(headers: Any, kind: str) -> float | None:
    """Seconds until the ``kind`` (``requests``/``tokens``) limit resets, when it is exhausted.

    ``None`` when ``x-ratelimit-remaining-<kind>`` is not ``0`` or a header is missing or
    unreadable (the caller then falls back to backoff rather than crash).
    """
    remaining = _header(headers, f"x-ratelimit-remaining-{kind}")
    reset = _header(headers, f"x-ratelimit-reset-{kind}")
    if remaining is None or reset is None:
        return None
    try:
        if float(remaining) > 0:
            return None
        return parse_reset_duration(reset)
    except ValueError:  # DurationParseError is one
        return None


def is_insufficient_quota(error: openai_sdk.APIStatusError) -> bool:
    """Whether a 429 means the account is out of quota (``insufficient_quota``), not throttled."""
    body = error.body if isinstance(error.body, dict) else {}
    error_field = body.get("error")
    nested = error_field if isinstance(error_field, dict) else {}
    values = {error.code, error.type, body.get("code"), body.get("type"),
              nested.get("code"), nested.get("type")}
    return "insufficient_quota" in values


def decide(error: BaseException, now: datetime) -> OnErrorResult | None:
    """The retry decision for an error raised by the ``openai`` SDK.

    Parameters:
        error: what the task raised; only ``openai.APIStatusError`` (status, ``.response.headers``,
            ``.body``) gets special treatment.
        now: the current time (aware); relative delays count from it.

    Returns:
        - 429 ``insufficient_quota``: ``OnErrorResult(skip_retrying=True)``;
        - other 429: ``OnErrorResult(retry_at=...)`` from ``retry-after-ms`` (milliseconds), else
          ``retry-after`` (seconds or HTTP date), else the reset duration of the exhausted limit
          (``x-ratelimit-remaining-requests: 0`` -> ``x-ratelimit-reset-requests``, same for
          tokens; both exhausted -> the later); ``None`` (backoff) when none applies;
        - 408, 409, 5xx, and errors without a status (connection, timeout): ``None`` (backoff);
        - any other 4xx (bad request, auth, not found): ``OnErrorResult(skip_retrying=True)``.
    """
    if not isinstance(error, openai_sdk.APIStatusError):
        return None
    status = error.status_code
    headers = error.response.headers
    if status == 429:
        if is_insufficient_quota(error):
            return OnErrorResult(skip_retrying=True)
        retry_after_ms = _header(headers, "retry-after-ms")
        if retry_after_ms is not None:
            try:
                ms = float(retry_after_ms)
            except ValueError:
                ms = -1.0
            if 0 <= ms < float("inf"):
                return OnErrorResult(retry_at=now + timedelta(milliseconds=ms))
        retry_at = parse_retry_after(_header(headers, "retry-after"), now)
        if retry_at is not None:
            return OnErrorResult(retry_at=retry_at)
        waits = [w for w in (_reset_after(headers, "requests"), _reset_after(headers, "tokens"))
                 if w is not None]
        if waits:
            return OnErrorResult(retry_at=now + timedelta(seconds=max(waits)))
        return None
    if status in (408, 409) or status >= 500:
        return None
    if 400 <= status < 500:
        return OnErrorResult(skip_retrying=True)
    return None

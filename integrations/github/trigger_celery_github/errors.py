"""What a failed GitHub call does next: the decision behind ``GitHub.on_error``.

Ported from GitHub's docs, "Rate limits for the REST API"
(https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api) and "Best
practices for using the REST API" (https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api),
which say, for a 403 or 429 caused by a rate limit:

1. if the ``retry-after`` header is present, do not retry until that many seconds have passed;
2. else, if ``x-ratelimit-remaining`` is ``0``, do not retry until the time in
   ``x-ratelimit-reset`` (UTC epoch seconds);
3. else wait at least one minute (a secondary rate limit), and if requests keep failing, wait an
   exponentially increasing time between retries.

PyGithub raises ``RateLimitExceededException`` only for 403s whose message names a rate limit; a
429 arrives as a plain ``GithubException``. Both carry ``status``, ``headers`` (lower-case names)
and ``data`` (the decoded body), which is all this module reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from github.GithubException import GithubException

from trigger_celery import OnErrorResult, RetryOptions
from trigger_celery.integration import aware, parse_retry_after, utc_now

#: Upper bound on one secondary-limit wait, in seconds (never below the floor).
SECONDARY_LIMIT_MAX_S = 15 * 60.0

#: 4xx statuses that are worth retrying under the normal policy (not "the request is wrong").
TRANSIENT_4XX = frozenset({408})


def _headers(error: GithubException) -> dict[str, str]:
    raw = error.headers or {}
    if not isinstance(raw, Mapping):
        return {}
    return {str(k).lower(): str(v) for k, v in raw.items()}


def _message(error: GithubException) -> str:
    data = error.data
    if isinstance(data, Mapping):
        msg = data.get("message")
        return msg if isinstance(msg, str) else ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data if isinstance(data, str) else ""


def _number(value: str | None) -> float | None:
    """A finite, non-negative number from a header value, else ``None`` (never raises)."""
    if value is None:
        return None
    try:
        n = float(value.strip())
    except (ValueError, AttributeError):
        return None
    return n if math.isfinite(n) and n >= 0 else None


def _reset_at(value: str | None, now: datetime) -> datetime | None:
    """``x-ratelimit-reset`` (epoch seconds) as an aware datetime, not before ``now``."""
    epoch = _number(value)
    if epoch is None:
        return None
    try:
        when = datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return max(when, now)


def is_secondary_limit(message: str) -> bool:
    """Whether a 403/429 body message names a secondary rate limit (GitHub's wordings)."""
    lc = message.lower()
    return (
        "secondary rate limit" in lc
        or lc.endswith("please retry your request again later.")
        or lc.endswith("please wait a few minutes before you try again.")
    )


def is_primary_limit(message: str) -> bool:
    """Whether a body message names the primary limit ("API rate limit exceeded for ...")."""
    return message.lower().startswith("api rate limit exceeded")


def secondary_delay_s(attempts: int, retry: RetryOptions, floor_s: float) -> float:
    """Seconds to wait after a secondary rate limit, for a task that ran ``attempts`` times.

    ``max(floor_s * retry.factor ** (attempts - 1), the preset's own delay)``, capped at
    ``max(floor_s, SECONDARY_LIMIT_MAX_S)``: at least the floor (GitHub: "at least one minute"),
    growing exponentially while the limit persists.
    """
    grown = floor_s * retry.factor ** max(attempts - 1, 0)
    preset_ms = retry.delay_ms(attempts)
    preset_s = (preset_ms or 0) / 1000.0
    return min(max(floor_s, grown, preset_s), max(floor_s, SECONDARY_LIMIT_MAX_S))


def decide(
    error: BaseException,
    *,
    attempts: int,
    retry: RetryOptions,
    secondary_limit_floor_s: float = 60.0,
    now: datetime | None = None,
) -> OnErrorResult | None:
    """Map a failed GitHub call to a retry decision (``on_error``'s answer).

    Parameters:
        error: what the operation raised; only PyGithub's ``GithubException`` is inspected.
        attempts: executions of the task so far, this one included (``TaskInfo.attempts``).
        retry: the integration's retry preset (its ``factor`` and delay drive backoff).
        secondary_limit_floor_s: least wait after a secondary limit, in seconds (GitHub: 60).
        now: the current time (aware; naive means UTC; default
            :func:`~trigger_celery.integration.utc_now`), so tests need no sleep.

    Returns:
        * 403/429 with ``retry-after``: ``OnErrorResult(retry_at=now + retry-after seconds)``.
        * 403/429 with ``x-ratelimit-remaining: 0`` and a usable ``x-ratelimit-reset``:
          ``retry_at`` = the reset time.
        * 403/429 naming a secondary limit (or a 429 with nothing else to go by):
          ``retry_at`` = now + :func:`secondary_delay_s`.
        * 403/429 for the primary limit with no usable reset: ``retry_at`` from the preset's
          backoff; ``None`` (the normal policy, which then gives up) once the preset's limit is
          reached.
        * 5xx, 408, and errors that are not ``GithubException`` (network): ``None``.
        * any other 4xx (401, 403 without a rate limit, 404, 422, ...):
          ``OnErrorResult(skip_retrying=True)``: the error is recorded with no retry.

    Never raises on missing or malformed headers.
    """
    if not isinstance(error, GithubException):
        return None
    now = aware(now) if now is not None else utc_now()
    status = error.status if isinstance(error.status, int) else 0
    if status >= 500:
        return None
    if status in (403, 429):
        headers = _headers(error)
        message = _message(error)
        retry_at = parse_retry_after(headers.get("retry-after"), now)
        if retry_at is not None:
            return OnErrorResult(retry_at=retry_at)
        remaining = _number(headers.get("x-ratelimit-remaining"))
        primary = remaining == 0 or is_primary_limit(message)
        if primary:
            reset = _reset_at(headers.get("x-ratelimit-reset"), now)
            if reset is not None:
                return OnErrorResult(retry_at=reset)
        if is_secondary_limit(message) or (status == 429 and not primary):
            delay = secondary_delay_s(attempts, retry, secondary_limit_floor_s)
            return OnErrorResult(retry_at=now + timedelta(seconds=delay))
        if primary:
            backoff = retry.retry_at(attempts, now)
            return OnErrorResult(retry_at=backoff) if backoff is not None else None
        return OnErrorResult(skip_retrying=True)  # 403 forbidden: permissions, not a limit
    if 400 <= status < 500 and status not in TRANSIENT_4XX:
        return OnErrorResult(skip_retrying=True)
    return None


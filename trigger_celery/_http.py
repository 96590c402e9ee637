"""Parse the HTTP ``Retry-After`` header (RFC 9110, section 10.2.3) into a time.

Shared by the integrations whose providers send it on 403 and 429 responses (GitHub, OpenAI,
Typeform); public as :func:`trigger_celery.integration.parse_retry_after`.
"""

from __future__ import annotations

import email.utils
from datetime import datetime, timedelta

from trigger_celery._time import aware


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """The time a ``Retry-After`` value points at.

    Parameters:
        value: the header's value: a delay in seconds (``"30"``, ``"1.5"``) or an HTTP date
            (``"Wed, 21 Oct 2015 07:28:00 GMT"``); ``None`` when the header is absent.
        now: the current time (aware); delays in seconds count from it.

    Returns:
        An aware datetime (UTC for HTTP dates; a date already past gives ``now``), or ``None``
        when the value is absent, negative or unreadable (the caller then falls back to its
        backoff policy). Never raises.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, inf
            return None
        return now + timedelta(seconds=seconds)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    when = aware(when)
    return max(when, now)  # a date already past means now

"""What a failed Typeform task does next (the integration's ``on_error`` logic).

Typeform answers 429 when a token exceeds its rate limit (Create and Responses APIs: 2 requests
per second per account, https://www.typeform.com/developers/get-started/#rate-limits) and may say
when to come back with ``Retry-After``.
"""

from __future__ import annotations

from datetime import datetime

from trigger_celery import OnErrorResult
from trigger_celery.integration import parse_retry_after
from trigger_celery_typeform.client import TypeformError


def decide(error: BaseException, now: datetime) -> OnErrorResult | None:
    """The retry decision for ``error``.

    Parameters:
        error: what the task raised.
        now: the current time (aware); ``Retry-After`` seconds count from it.

    Returns:
        - 429 with ``Retry-After`` (seconds or HTTP date): ``OnErrorResult(retry_at=...)``;
        - 429 without it, 5xx, and anything that is not a :class:`TypeformError` (network
          errors): ``None``, the integration's backoff policy applies;
        - any other 4xx (bad params, not found, bad token): ``OnErrorResult(skip_retrying=True)``.
    """
    if not isinstance(error, TypeformError):
        return None
    if error.status == 429:
        retry_at = parse_retry_after(error.headers.get("retry-after"), now)
        return OnErrorResult(retry_at=retry_at) if retry_at else None
    if 400 <= error.status < 500:
        return OnErrorResult(skip_retrying=True)
    return None

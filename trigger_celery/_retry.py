"""Retry timing: ``RetryOptions``, the presets, and what ``on_error`` hooks may answer.

Ported from Trigger.dev v2 (``@trigger.dev/core`` ``calculateRetryAt``): ``limit`` counts
executions, and for the n-th retry (n = attempts - 1) the delay in milliseconds is::

    round(R * max(min_timeout_ms, 1) * factor ** max(n - 1, 0)), capped at max_timeout_ms

where R is uniform in [1, 2) when ``randomize`` is on, else 1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ConfigDict, Field, model_validator

from trigger_celery._time import utc_now
from trigger_celery._validation import StrictModel


class RetryOptions(StrictModel):
    """How often and how soon a failing task runs again.

    Parameters:
        limit: executions in all, the first included (Trigger.dev's ``limit``); 1 means no retry.
        factor: growth of the delay from one retry to the next.
        min_timeout_ms: delay before the first retry, in milliseconds (default 500).
        max_timeout_ms: cap on any delay, in milliseconds (default 30,000); not below
            ``min_timeout_ms``, so a long backoff names both (``min_timeout_ms=600_000,
            max_timeout_ms=3_600_000``).

    Raises:
        pydantic.ValidationError: a field out of range, or ``min_timeout_ms`` above
            ``max_timeout_ms`` (every delay would silently be the cap).
        randomize: multiply each delay by a random factor in [1, 2).
    """

    model_config = ConfigDict(frozen=True)

    limit: int = Field(default=1, ge=1, le=1000)
    factor: float = Field(default=1.8, ge=1)
    min_timeout_ms: int = Field(default=500, ge=0)
    max_timeout_ms: int = Field(default=30_000, ge=0)
    randomize: bool = True

    @model_validator(mode="after")
    def _min_not_above_max(self) -> RetryOptions:
        if self.min_timeout_ms > self.max_timeout_ms:
            raise ValueError(
                f"min_timeout_ms ({self.min_timeout_ms}) is above max_timeout_ms "
                f"({self.max_timeout_ms}), which caps every delay: set max_timeout_ms too")
        return self

    def delay_ms(self, attempts: int) -> int | None:
        """Milliseconds to wait before the next execution, after ``attempts`` executions so far.

        Returns ``None`` when the limit is reached (no further attempt).
        """
        if attempts >= self.limit:
            return None
        n = attempts  # the retry about to happen is the n-th one (n = next attempt - 1)
        r = random.uniform(1, 2) if self.randomize else 1.0
        delay = round(r * max(self.min_timeout_ms, 1) * self.factor ** max(n - 1, 0))
        return min(delay, self.max_timeout_ms)

    def retry_at(self, attempts: int, now: datetime | None = None) -> datetime | None:
        """When to run next after ``attempts`` executions; ``None`` at the limit."""
        delay = self.delay_ms(attempts)
        if delay is None:
            return None
        return (now or utc_now()) + timedelta(milliseconds=delay)


class _Presets:
    """Trigger.dev's retry presets (``retry.standardBackoff``, ``retry.exponentialBackoff``)."""

    standard_backoff = RetryOptions(
        limit=8, factor=1.8, min_timeout_ms=500, max_timeout_ms=30_000, randomize=True
    )
    exponential_backoff = RetryOptions(
        limit=8, factor=2, min_timeout_ms=1000, max_timeout_ms=30_000, randomize=True
    )


retry = _Presets()


@dataclass(frozen=True)
class OnErrorResult:
    """What an ``on_error`` hook may answer (Trigger.dev's ``{retryAt, error, skipRetrying}``).

    Parameters:
        retry_at: run the task again at this time (aware datetime; naive means UTC). Counted as a
            deferral, apart from error retries, and capped by ``retry_at_max_deferrals`` /
            ``retry_at_max_deferral_s``.
        error: replace the error recorded on the task.
        skip_retrying: fail the task now, whatever the retry policy says.
    """

    retry_at: datetime | None = None
    error: BaseException | None = None
    skip_retrying: bool = False


def resend_backoff_s(base_s: float, resends: int, cap_s: float) -> float:
    """Seconds to wait for a message before presuming it lost and sending it again.

    Parameters:
        base_s: the first wait, in seconds (``dispatch_check_s`` for a dispatched task).
        resends: how many times the message was sent again already.
        cap_s: the longest wait, in seconds (``resend_max_s``; never below ``base_s``).

    Returns ``base_s * 2 ** resends`` seconds, capped: a message that keeps going missing is
    re-sent ``log2(cap_s / base_s)`` times, then once per ``cap_s``.
    """
    return min(base_s * 2.0 ** min(resends, 32), max(cap_s, base_s))

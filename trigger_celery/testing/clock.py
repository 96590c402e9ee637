"""Time skipping for tests: a clock the engine reads and the test moves (Temporal's
time-skipping test environment, ``WorkflowEnvironment.start_time_skipping``).

Workers and clients built with the ``test_clock`` setting (``TRIGGER_CELERY_TEST_CLOCK=1``; the
``trigger_clock`` fixture sets it for the test and for workers from ``trigger_worker``) read run
time as the real clock plus an offset in seconds kept in Redis (``P:testclock``). A test that
moves the offset forward makes waits, retry backoffs and rate-limit slots due at once, through
the real workers and the real wake-up schedule; nothing in the standard library is patched. The
job's own code still sees real time in ``time.time()``; ``io`` tasks' timestamps, ``runs show``
and ``trigger_celery.integration.utc_now()`` inside a run follow the test clock.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis

from trigger_celery._states import RUN_READY_STATES, WAITING
from trigger_celery._time import OffsetClock, clock_key, epoch_s

if TYPE_CHECKING:
    from trigger_celery._runs import RunHandle


class TestClock:
    """The test's handle on the engine clock of one app (one Redis database and key prefix).

    Parameters:
        redis_url: the store's URL (the workers' ``TRIGGER_CELERY_REDIS_URL``).
        key_prefix: the app's ``key_prefix`` (default ``tc``).

    The clock only ever moves forward; a new test starts at offset 0 (the ``trigger_redis_url``
    fixture flushes the database).
    """

    __test__ = False  # a helper, not a pytest test class

    def __init__(self, redis_url: str, *, key_prefix: str = "tc"):
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.key = clock_key(key_prefix)
        self._clock = OffsetClock(self.redis, self.key)

    def close(self) -> None:
        """Close the Redis connection."""
        self.redis.close()

    @property
    def offset_s(self) -> float:
        """Seconds skipped so far (the clock's lead over the real clock)."""
        return self._clock.offset_s()

    def now(self) -> float:
        """Epoch seconds on the engine clock."""
        return self._clock.now()

    def advance(self, *, days: float = 0, hours: float = 0, minutes: float = 0,
                seconds: float = 0) -> float:
        """Move the clock forward by the sum of the arguments; returns the new time (epoch
        seconds). Wake-ups that became due are sent by the workers' pollers within
        ``TEST_CLOCK_POLL_S`` (50 ms).

        Raises:
            ValueError: the sum is negative (the clock never goes back).
        """
        step = days * 86400 + hours * 3600 + minutes * 60 + seconds
        if step < 0:
            raise ValueError(f"advance: the clock only moves forward, got {step} s")
        if step:
            self.redis.incrbyfloat(self.key, step)
        return self.now()

    def skip_to(self, at: datetime | float) -> float:
        """Move the clock forward to ``at`` (an aware datetime, naive means UTC, or epoch
        seconds); a time already past changes nothing. Returns the new time (epoch seconds)."""
        target = epoch_s(at)
        return self.advance(seconds=max(0.0, target - self.now()))

    def run_until_done(self, handle: RunHandle, *, timeout: float = 60) -> Any:
        """Run ``handle``'s run to its end, skipping time whenever it only waits for the clock
        (Temporal's auto time-skipping): while it is WAITING with a wake-up time (a wait, a
        retry backoff, ``delay_until``, a rate-limit slot) ahead of the clock, the clock skips
        to that time. A run waiting on anything else (a dispatched task, a concurrency slot)
        is left to real time.

        Parameters:
            timeout: real seconds to wait at most.

        Returns the run's output, like ``handle.result()``.

        Raises:
            RunFailedError: the run ended in FAILURE or CANCELED.
            RunTimeoutError: ``timeout`` real seconds passed first.
            RunNotFoundError: no such run.
            ValueError: the run's client has another ``key_prefix`` than this clock.
        """
        from trigger_celery._errors import RunTimeoutError

        prefix = handle.client.store.prefix
        if clock_key(prefix) != self.key:
            raise ValueError(
                f"this clock moves {self.key!r} but the run's client uses key_prefix "
                f"{prefix!r}: make the clock with TestClock(url, key_prefix={prefix!r}) or set "
                f"TRIGGER_CELERY_KEY_PREFIX={prefix} for the test (the trigger_clock fixture "
                "reads it)")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            h = handle.client.store.get_run_hash(handle.id)
            if not h or h.get("status") in RUN_READY_STATES:
                return handle.result(timeout=0)
            wake = h.get("wake_at")
            if h.get("status") == WAITING and wake:
                self.skip_to(float(wake))
            time.sleep(0.02)
        raise RunTimeoutError(f"run {handle.id} not finished after {timeout} s of real time")

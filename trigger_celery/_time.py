"""Aware datetimes and the engine's clock.

The one place naive times become UTC and datetimes become epoch seconds (public for
integrations as :func:`trigger_celery.integration.utc_now` and
:func:`trigger_celery.integration.aware`), and the clock every engine time read that concerns
run time goes through (``Store.now``): the real clock, ``time.time``, unless the ``test_clock``
setting is on. Then it is :class:`OffsetClock`: the real clock plus an offset in seconds that a
test advances (``trigger_celery.testing.TestClock``), kept in Redis under ``P:testclock`` so
every worker process reads the same time (ported from Temporal's time-skipping test
environment). Lease TTLs, socket timeouts, hold and poll pauses and metrics stay on real time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, overload

#: The engine clock of the execution running in this context (set only under ``test_clock``,
#: see :func:`engine_clock`); ``None``: the real clock.
_ENGINE_NOW: ContextVar[Callable[[], float] | None] = ContextVar("trigger_celery_now",
                                                                 default=None)


def utc_now() -> datetime:
    """The current time, aware, in UTC: the engine clock inside an execution of a client with
    ``test_clock`` on (so hooks and ``RetryAfterError(retry_after=timedelta)`` agree with the
    engine), else the real clock."""
    now = _ENGINE_NOW.get()
    return datetime.now(UTC) if now is None else datetime.fromtimestamp(now(), UTC)


def engine_clock(now: Callable[[], float] | None) -> contextlib.AbstractContextManager[None]:
    """Within the block, :func:`utc_now` reads ``now`` (epoch seconds); ``None`` changes
    nothing (the real clock: a ``nullcontext``, next to no cost)."""
    return contextlib.nullcontext() if now is None else _using(now)


@contextlib.contextmanager
def _using(now: Callable[[], float]) -> Iterator[None]:
    token = _ENGINE_NOW.set(now)
    try:
        yield
    finally:
        _ENGINE_NOW.reset(token)


def clock_key(prefix: str) -> str:
    """``P:testclock``: the test clock's offset from the real clock, in seconds (a float)."""
    return f"{prefix}:testclock"


class OffsetClock:
    """The test clock: epoch seconds of the real clock plus an offset read from Redis on every
    call (one ``GET``; tests only: with ``test_clock`` off the engine never builds one).

    Parameters:
        redis: a redis-py client (``decode_responses`` either way).
        key: where the offset lives (:func:`clock_key`); absent means 0.
    """

    def __init__(self, redis: Any, key: str):
        self.redis = redis
        self.key = key

    def offset_s(self) -> float:
        """The offset from the real clock, in seconds (0 until a test advances the clock)."""
        raw = self.redis.get(self.key)
        return float(raw) if raw else 0.0

    def now(self) -> float:
        """Epoch seconds on this clock."""
        return time.time() + self.offset_s()


def aware(at: datetime) -> datetime:
    """``at`` unchanged if it has a time zone, else the same wall time taken as UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@overload
def epoch_s(at: datetime | float) -> float: ...
@overload
def epoch_s(at: None) -> None: ...
@overload
def epoch_s(at: datetime | float | None) -> float | None: ...


def epoch_s(at: datetime | float | None) -> float | None:
    """Epoch seconds of ``at``: a datetime (naive means UTC), or a number taken as epoch seconds
    already (returned as is); ``None`` stays ``None``."""
    if at is None or isinstance(at, int | float):
        return at
    return aware(at).timestamp()


def clock_ms(ts: float | None) -> str:
    """Epoch seconds -> ``HH:MM:SS.mmm`` (UTC), ``-`` for None (``runs show``, the web UI)."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3]


def date_s(ts: float | None) -> str:
    """Epoch seconds -> ``YYYY-MM-DD HH:MM:SS`` (UTC), ``-`` for None."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def ms_text(ms: float | None) -> str:
    """Milliseconds -> ``12.3 ms`` or ``4.56 s``; ``""`` for None."""
    if ms is None:
        return ""
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def relative_text(ts: float, now: float | None = None) -> str:
    """Epoch seconds relative to ``now`` (default: the clock): ``in 3 s``, ``2 min ago``."""
    delta = ts - (time.time() if now is None else now)
    if abs(delta) < 1:
        return "now"
    n = abs(delta)
    text = f"{n:.0f} s" if n < 120 else f"{n / 60:.0f} min" if n < 7200 else f"{n / 3600:.1f} h"
    return f"in {text}" if delta > 0 else f"{text} ago"

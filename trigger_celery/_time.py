"""Aware datetimes: the one place naive times become UTC and datetimes become epoch seconds.

Public for integrations as :func:`trigger_celery.integration.utc_now` and
:func:`trigger_celery.integration.aware`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import overload


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


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

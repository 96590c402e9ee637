"""Scheduled slots of cron and interval jobs: one run per job and slot, however many beats run.

A slot is the tick a beat message stands for: ``floor(epoch / seconds) * seconds`` for an interval
trigger, the latest real crontab tick at or before now (UTC) for a cron trigger. A beat that sends
late (a catch-up after downtime) fires the latest real tick, never a minute that is not a tick,
and nothing when no tick lies within :data:`LOOKBACK_DAYS`. The slot's idempotency record lives at
least as long as the slot itself plus :data:`LATE_BEAT_MARGIN_S`, so a second beat later in a
long slot (an interval of days, a monthly cron) starts nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

#: How far back (and forward) a crontab tick is looked for, in days. Four years and a day cover
#: every combination of day of month, month and weekday that ever occurs (Feb 29 on a given
#: weekday may not, and is then treated as never).
LOOKBACK_DAYS = 4 * 366 + 1

#: Slack added to a slot's length for its idempotency record, in seconds: a beat that sends an
#: hour late in the slot still finds it.
LATE_BEAT_MARGIN_S = 3600


def _day_matches(schedule: Any, day: date) -> bool:
    """Day of month, month and weekday all match (celery's crontab combines them with AND)."""
    dow = (day.weekday() + 1) % 7  # crontab: Sunday is 0
    return (day.day in schedule.day_of_month and day.month in schedule.month_of_year
            and dow in schedule.day_of_week)


def _days(start: date, step: int) -> Iterator[date]:
    for n in range(LOOKBACK_DAYS):
        yield start + timedelta(days=n * step)


def _at(day: date, hour: int, minute: int) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).timestamp())


def cron_prev_tick(schedule: Any, now_s: float) -> int | None:
    """Epoch seconds of the latest tick of ``schedule`` (a celery ``crontab``) at or before
    ``now_s``, or ``None`` when there is none within :data:`LOOKBACK_DAYS`."""
    now = datetime.fromtimestamp(now_s, UTC)
    for day in _days(now.date(), -1):
        if not _day_matches(schedule, day):
            continue
        today = day == now.date()
        for hour in sorted(schedule.hour, reverse=True):
            if today and hour > now.hour:
                continue
            limit = now.minute if today and hour == now.hour else 59
            minutes = [m for m in schedule.minute if m <= limit]
            if minutes:
                return _at(day, hour, max(minutes))
    return None


def cron_next_tick(schedule: Any, after_s: float) -> int | None:
    """Epoch seconds of the first tick strictly after ``after_s``, or ``None`` within
    :data:`LOOKBACK_DAYS`."""
    start = datetime.fromtimestamp(int(after_s // 60) * 60 + 60, UTC)
    for day in _days(start.date(), 1):
        if not _day_matches(schedule, day):
            continue
        first = day == start.date()
        for hour in sorted(schedule.hour):
            if first and hour < start.hour:
                continue
            floor = start.minute if first and hour == start.hour else 0
            minutes = [m for m in schedule.minute if m >= floor]
            if minutes:
                return _at(day, hour, min(minutes))
    return None


def interval_slot(seconds: int, now_s: float) -> tuple[int, int]:
    """``(slot start, slot length)`` in epoch seconds and seconds for an interval trigger."""
    return int(now_s // seconds) * seconds, seconds


def cron_slot(schedule: Any, now_s: float) -> tuple[int, int] | None:
    """``(tick, seconds until the next tick)`` of the latest real tick at or before ``now_s``, or
    ``None`` when the crontab has no tick within :data:`LOOKBACK_DAYS` (no run is started)."""
    tick = cron_prev_tick(schedule, now_s)
    if tick is None:
        return None
    following = cron_next_tick(schedule, tick)
    return tick, (following - tick) if following is not None else LOOKBACK_DAYS * 86400


def dedupe_ttl_s(slot_length_s: int, retention_s: int) -> int:
    """How long a slot's idempotency record lives, in seconds: the slot plus a margin for late
    beats, and never less than ``idempotency_retention_s``."""
    return max(retention_s, slot_length_s + LATE_BEAT_MARGIN_S)

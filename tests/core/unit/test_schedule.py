"""Scheduled slots (pure, no Redis): the latest real crontab tick, the next one, interval slots
and how long a slot's idempotency record lives."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from trigger_celery import cron_trigger
from trigger_celery._schedule import (
    LATE_BEAT_MARGIN_S,
    cron_next_tick,
    cron_prev_tick,
    cron_slot,
    dedupe_ttl_s,
    interval_slot,
)


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def sched(expr: str):
    return cron_trigger(expr).schedule


@pytest.mark.parametrize(("expr", "now", "tick"), [
    ("7 13 10 * *", ts(2026, 11, 29, 20, 0), ts(2026, 11, 10, 13, 7)),   # monthly, catch-up
    ("7 13 10 * *", ts(2026, 11, 10, 13, 7), ts(2026, 11, 10, 13, 7)),   # exactly on the tick
    ("7 13 10 * *", ts(2026, 11, 10, 13, 6), ts(2026, 10, 10, 13, 7)),   # a minute before it
    ("*/15 * * * *", ts(2026, 11, 29, 10, 22), ts(2026, 11, 29, 10, 15)),
    ("0 9 * * 1", ts(2026, 11, 29, 20, 0), ts(2026, 11, 23, 9, 0)),      # Sunday -> Monday
    ("0 0 29 2 *", ts(2026, 11, 29, 0, 0), ts(2024, 2, 29, 0, 0)),       # leap day
    ("30 23 31 12 *", ts(2027, 1, 1, 0, 5), ts(2026, 12, 31, 23, 30)),   # across a year
])
def test_prev_tick_is_a_real_tick(expr: str, now: int, tick: int) -> None:
    assert cron_prev_tick(sched(expr), now) == tick


def test_a_crontab_without_a_tick_in_four_years_fires_nothing() -> None:
    # Feb 29 that is also a Monday: none between 2022-11 and 2026-11 (2024-02-29 is a Thursday)
    assert cron_slot(sched("0 0 29 2 1"), ts(2026, 11, 29)) is None


def test_next_tick_and_slot_length_of_a_monthly_cron() -> None:
    s = sched("7 13 10 * *")
    assert cron_next_tick(s, ts(2026, 11, 10, 13, 7)) == ts(2026, 12, 10, 13, 7)
    assert cron_slot(s, ts(2026, 11, 29, 20)) == (
        ts(2026, 11, 10, 13, 7), ts(2026, 12, 10, 13, 7) - ts(2026, 11, 10, 13, 7))


def test_ticks_agree_with_a_minute_by_minute_scan() -> None:
    rng = random.Random(7)
    start = ts(2026, 3, 1)
    for _ in range(25):
        expr = (f"{rng.choice(['*/7', '5', '0,30', '59'])} {rng.choice(['*', '3', '*/5', '22'])} "
                f"{rng.choice(['*', '1', '15'])} * {rng.choice(['*', '1-5', '0', '6'])}")
        s = sched(expr)
        minutes = [m for m in range(start, start + 40 * 86400, 60) if _is_tick(s, m)]
        for now in rng.sample(range(start + 35 * 86400, start + 40 * 86400), 20):
            expected = max((m for m in minutes if m <= now), default=None)
            if expected is not None and expected >= start + 5 * 86400:
                assert cron_prev_tick(s, now) == expected, (expr, now)
        for after in rng.sample(range(start, start + 5 * 86400), 20):
            expected = min((m for m in minutes if m > after), default=None)
            if expected is not None:
                assert cron_next_tick(s, after) == expected, (expr, after)


def _is_tick(s, epoch: int) -> bool:
    t = datetime.fromtimestamp(epoch, UTC)
    return (t.minute in s.minute and t.hour in s.hour and t.day in s.day_of_month
            and t.month in s.month_of_year and (t.weekday() + 1) % 7 in s.day_of_week)


def test_interval_slots_and_their_dedupe_outlive_the_slot() -> None:
    two_days = 2 * 86400
    slot, length = interval_slot(two_days, ts(2026, 11, 29, 20))
    assert slot % two_days == 0 and slot <= ts(2026, 11, 29, 20) < slot + two_days
    assert dedupe_ttl_s(length, 86400) == two_days + LATE_BEAT_MARGIN_S
    assert dedupe_ttl_s(60, 86400) == 86400   # never below idempotency_retention_s

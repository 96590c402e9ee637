"""``_http.parse_retry_after``: RFC 9110 ``Retry-After`` values, as delays or HTTP dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trigger_celery._http import parse_retry_after

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "seconds"), [
    ("30", 30), ("0", 0), ("1.5", 1.5), ("  120 ", 120),
])
def test_a_delay_counts_from_now(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == NOW + timedelta(seconds=seconds)


def test_an_http_date_is_that_time_in_utc() -> None:
    got = parse_retry_after("Wed, 01 May 2024 12:01:30 GMT", NOW)
    assert got == NOW + timedelta(seconds=90)
    assert got is not None and got.utcoffset() == timedelta(0)


def test_an_http_date_already_past_means_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == NOW


def test_a_date_with_an_offset_is_compared_as_an_instant() -> None:
    # 14:01 at +02:00 is 12:01 UTC: one minute after NOW, not two hours and one minute
    got = parse_retry_after("Wed, 01 May 2024 14:01:00 +0200", NOW)
    assert got == NOW + timedelta(minutes=1)


@pytest.mark.parametrize("value", [
    None, "", "   ", "-1", "nan", "NaN", "inf", "-inf", "soon", "Wed, 99 Foo 2024", "1e400x",
])
def test_absent_negative_or_unreadable_values_give_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None

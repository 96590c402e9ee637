"""The helpers for aware datetimes (``_time``) and pydantic models and errors (``_validation``),
public to integrations through ``trigger_celery.integration``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ConfigDict
from pydantic import ValidationError as PydanticValidationError

from trigger_celery import RetryOptions
from trigger_celery._time import aware, epoch_s, utc_now
from trigger_celery._validation import StrictModel, describe_errors

PLUS_2 = timezone(timedelta(hours=2))


def test_utc_now_is_aware_and_current() -> None:
    now = utc_now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert abs(now.timestamp() - datetime.now(UTC).timestamp()) < 5


def test_aware_takes_naive_times_as_utc_and_keeps_zones() -> None:
    assert aware(datetime(2024, 1, 1, 12)) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    at = datetime(2024, 1, 1, 12, tzinfo=PLUS_2)
    assert aware(at) is at


def test_epoch_s() -> None:
    assert epoch_s(None) is None
    assert epoch_s(12.5) == 12.5
    assert epoch_s(7) == 7
    assert epoch_s(datetime(1970, 1, 1, 0, 1)) == 60  # naive: UTC
    assert epoch_s(datetime(1970, 1, 1, 2, 1, tzinfo=PLUS_2)) == 60


class _Issue(StrictModel):
    title: str
    labels: list[str] = []


def test_strict_models_reject_unknown_fields_by_name() -> None:
    with pytest.raises(PydanticValidationError) as info:
        _Issue.model_validate({"title": "t", "lables": ["x"]})
    assert describe_errors(info.value) == "lables: Extra inputs are not permitted"


def test_describe_errors_names_every_field_path() -> None:
    with pytest.raises(PydanticValidationError) as info:
        _Issue.model_validate({"labels": ["ok", 3]})
    text = describe_errors(info.value)
    assert text.split("; ") == ["title: Field required",
                                "labels.1: Input should be a valid string"]


def test_describe_errors_names_the_root() -> None:
    with pytest.raises(PydanticValidationError) as info:
        _Issue.model_validate(["not", "a", "dict"])
    assert describe_errors(info.value, root="(params)").startswith("(params): ")
    assert describe_errors(info.value).startswith("(root): ")


def test_subclass_config_merges_with_strict() -> None:
    class Frozen(StrictModel):
        model_config = ConfigDict(frozen=True)
        n: int

    with pytest.raises(PydanticValidationError):
        Frozen(n=1, m=2)  # type: ignore[call-arg]
    with pytest.raises(PydanticValidationError):
        Frozen(n=1).n = 2
    with pytest.raises(PydanticValidationError, match="max_tires"):
        RetryOptions(max_tires=3)  # type: ignore[call-arg]


def test_utc_now_follows_the_engine_clock_only_within_its_scope() -> None:
    from trigger_celery._time import engine_clock

    with engine_clock(lambda: 86400.0):
        assert utc_now() == datetime(1970, 1, 2, tzinfo=UTC)
        assert RetryOptions(limit=2, min_timeout_ms=1000, randomize=False).retry_at(1) == \
            datetime(1970, 1, 2, 0, 0, 1, tzinfo=UTC)
    assert abs(utc_now().timestamp() - datetime.now(UTC).timestamp()) < 5
    with engine_clock(None):  # the real clock: nothing set
        assert abs(utc_now().timestamp() - datetime.now(UTC).timestamp()) < 5


def test_the_test_clock_sends_every_delay_to_the_schedule() -> None:
    from trigger_celery._settings import load_settings

    assert load_settings(eta_window_s=5).effective_eta_window_s == 5
    assert load_settings(eta_window_s=5, test_clock=True).effective_eta_window_s == 0

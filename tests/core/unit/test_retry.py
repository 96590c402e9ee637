"""Trigger.dev's retry formula, presets, idempotency keys and on_error decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trigger_celery import NonRetriableError, OnErrorResult, RetryAfterError, RetryOptions, retry
from trigger_celery._keys import idempotency_key
from trigger_celery._policy import decide
from trigger_celery._retry import resend_backoff_s
from trigger_celery._settings import Settings


def test_delay_formula_without_randomness():
    opts = RetryOptions(limit=5, factor=2, min_timeout_ms=1000, max_timeout_ms=5000,
                        randomize=False)
    # after n executions: round(min * factor ** max(n - 1, 0)), capped; None at the limit
    assert [opts.delay_ms(n) for n in range(1, 6)] == [1000, 2000, 4000, 5000, None]


def test_a_min_timeout_above_the_max_is_refused_naming_both():
    with pytest.raises(ValueError, match=r"min_timeout_ms \(3600000\) is above max_timeout_ms "
                                         r"\(30000\)"):
        RetryOptions(limit=3, min_timeout_ms=3_600_000)  # the default cap would hide it
    opts = RetryOptions(limit=3, min_timeout_ms=600_000, max_timeout_ms=3_600_000,
                        randomize=False)
    assert opts.delay_ms(1) == 600_000


def test_randomized_delay_stays_in_one_to_two_times():
    opts = RetryOptions(limit=8, factor=1.8, min_timeout_ms=500, max_timeout_ms=30_000)
    delays = {opts.delay_ms(3) for _ in range(200)}
    assert min(delays) >= round(500 * 1.8 ** 2) and max(delays) < round(2 * 500 * 1.8 ** 2) + 1
    assert len(delays) > 10


def test_presets_match_trigger_dev():
    assert retry.standard_backoff == RetryOptions(
        limit=8, factor=1.8, min_timeout_ms=500, max_timeout_ms=30_000, randomize=True)
    assert retry.exponential_backoff == RetryOptions(
        limit=8, factor=2, min_timeout_ms=1000, max_timeout_ms=30_000, randomize=True)


def test_idempotency_key_encoding_is_unambiguous():
    assert idempotency_key("run_1", "a:b", "c") != idempotency_key("run_1", "a", "b:c")
    assert idempotency_key("run_1", None, "k") != idempotency_key("run_1", "null", "k")
    assert idempotency_key("r", None, "k") == idempotency_key("r", None, "k")
    assert len(idempotency_key("r", None, "k")) == 64


def _decide(error, hooks=(), rec=None, retry_opts=None, **settings):
    return decide(error, record=rec or {"attempts": 1}, task=None, io=None, retry=retry_opts,
                  hooks=list(hooks), settings=Settings(**settings), now=1000.0)


def test_on_error_answers():
    at = datetime.fromtimestamp(1010, UTC)
    d = _decide(RuntimeError("x"), [lambda e, t, io: OnErrorResult(retry_at=at)])
    assert d.retry_at == 1010 and d.deferral
    d = _decide(RuntimeError("x"), [lambda e, t, io: OnErrorResult(skip_retrying=True)],
                retry_opts=retry.standard_backoff)
    assert d.retry_at is None
    d = _decide(RuntimeError("x"), [lambda e, t, io: ValueError("replaced")],
                retry_opts=RetryOptions(limit=2, randomize=False, min_timeout_ms=100))
    assert isinstance(d.error, ValueError) and d.retry_at == pytest.approx(1000.1)
    assert _decide(RuntimeError("x"), [lambda e, t, io: None]).retry_at is None  # no policy


def test_async_hooks_are_awaited():
    async def hook(error, task, io):
        return OnErrorResult(retry_at=datetime.fromtimestamp(1005, UTC))

    assert _decide(RuntimeError("x"), [hook]).retry_at == 1005


def test_non_retriable_and_retry_after_errors():
    assert _decide(NonRetriableError("stop"), retry_opts=retry.standard_backoff).retry_at is None
    err = RetryAfterError(retry_after=datetime.fromtimestamp(1030, UTC))
    assert _decide(err).retry_at == 1030
    assert RetryAfterError(retry_after=timedelta(seconds=5)).retry_at > datetime.now(UTC)


def test_retry_at_deferrals_are_capped_by_count_and_deadline():
    hook = [lambda e, t, io: OnErrorResult(retry_at=datetime.fromtimestamp(1010, UTC))]
    capped = _decide(RuntimeError("x"), hook, rec={"attempts": 3, "deferrals": 2},
                     retry_at_max_deferrals=2)
    assert capped.retry_at is None and "cap" in str(capped.error)
    late = [lambda e, t, io: OnErrorResult(retry_at=datetime.fromtimestamp(5000, UTC))]
    capped = _decide(RuntimeError("x"), late, rec={"attempts": 2, "deferrals": 1,
                                                   "first_deferral_at": 900},
                     retry_at_max_deferral_s=3600)
    assert capped.retry_at is None


def test_deferrals_do_not_use_up_the_retry_limit():
    opts = RetryOptions(limit=2, randomize=False, min_timeout_ms=100)
    # 3 executions, 2 of them deferred by a hook: one policy retry is still left
    d = _decide(RuntimeError("x"), rec={"attempts": 3, "deferrals": 2}, retry_opts=opts)
    assert d.retry_at is not None and not d.deferral


def test_resend_backoff_doubles_from_the_check_interval_up_to_the_cap():
    assert [resend_backoff_s(30, n, 600) for n in range(7)] == [30, 60, 120, 240, 480, 600, 600]
    assert resend_backoff_s(30, 10_000, 600) == 600  # no overflow however many re-sends
    assert resend_backoff_s(30, 0, 10) == 30  # a cap below the first wait never shortens it

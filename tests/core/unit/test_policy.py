"""``_policy``: what a failed attempt does next (``decide``), and how it is written on the task
record (``record_attempt_failure``, ``error_record``). Times are epoch seconds; ``now`` = 1000."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from trigger_celery import (
    ConfigurationError,
    NonRetriableError,
    OnErrorResult,
    RetryAfterError,
    RetryOptions,
    TaskFailedError,
)
from trigger_celery._policy import (
    MAX_ERRORS_KEPT,
    Decision,
    decide,
    error_record,
    record_attempt_failure,
)
from trigger_celery._settings import Settings
from trigger_celery._states import TaskRecord

NOW = 1000.0
POLICY = RetryOptions(limit=3, factor=2, min_timeout_ms=100, randomize=False)
SETTINGS = Settings(redis_url="redis://unused:1/0")


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _decide(error: BaseException, hooks: list[Any] | None = None,
            rec: dict[str, Any] | None = None, retry: RetryOptions | None = POLICY) -> Decision:
    return decide(error, record=rec or {"attempts": 1}, task="task", io="io", retry=retry,
                  hooks=hooks or [], settings=SETTINGS, now=NOW)


class Spy:
    """A hook that records its calls and answers ``answer``."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, error: BaseException, task: Any, io: Any) -> Any:
        self.calls.append((error, task, io))
        return self.answer


def test_the_policy_decides_when_no_hook_answers() -> None:
    d = _decide(RuntimeError("x"), [None, Spy(None)])
    assert d.retry_at == pytest.approx(NOW + 0.1) and not d.deferral
    last = _decide(RuntimeError("x"), rec={"attempts": 3})
    assert last.retry_at is None  # limit=3: the third attempt was the last


def test_no_policy_means_one_attempt() -> None:
    assert _decide(RuntimeError("x"), retry=None).retry_at is None


def test_the_first_hook_that_answers_wins_and_sees_task_and_io() -> None:
    task_hook = Spy(OnErrorResult(skip_retrying=True))
    integration_hook = Spy(OnErrorResult(retry_at=at(1500)))
    d = _decide(RuntimeError("x"), [task_hook, integration_hook])
    assert d.retry_at is None
    assert integration_hook.calls == []
    assert task_hook.calls[0][1:] == ("task", "io")


def test_a_hook_answering_none_passes_to_the_next() -> None:
    d = _decide(RuntimeError("x"), [Spy(None), Spy(OnErrorResult(retry_at=at(1500)))])
    assert d.retry_at == 1500 and d.deferral


def test_a_retry_at_in_the_past_means_now() -> None:
    d = _decide(RuntimeError("x"), [Spy(OnErrorResult(retry_at=at(10)))])
    assert d.retry_at == NOW and d.deferral


def test_a_hook_may_replace_the_error_and_leave_timing_to_the_policy() -> None:
    replaced = ValueError("clearer")
    d = _decide(RuntimeError("x"), [Spy(OnErrorResult(error=replaced))])
    assert d.error is replaced and d.retry_at == pytest.approx(NOW + 0.1) and not d.deferral
    d = _decide(RuntimeError("x"), [Spy(NonRetriableError("no"))])
    assert isinstance(d.error, NonRetriableError) and d.retry_at is None


def test_a_hook_answering_something_else_fails_the_task_with_a_type_error() -> None:
    d = _decide(RuntimeError("x"), [Spy("retry please")])
    assert isinstance(d.error, TypeError) and "'retry please'" in str(d.error)
    assert d.retry_at is None


@pytest.mark.parametrize("error", [
    TaskFailedError("child", {"type": "X", "message": "m"}),
    NonRetriableError("stop"),
    ConfigurationError("bad"),
])
def test_failed_children_and_non_retriable_errors_skip_hooks_and_policy(
        error: BaseException) -> None:
    hook = Spy(OnErrorResult(retry_at=at(1500)))
    d = _decide(error, [hook])
    assert d.error is error and d.retry_at is None and hook.calls == []


def test_retry_after_error_sets_the_time_without_asking_hooks() -> None:
    hook = Spy(OnErrorResult(skip_retrying=True))
    d = _decide(RetryAfterError(retry_after=at(1200)), [hook])
    assert d.retry_at == 1200 and d.deferral and hook.calls == []


def test_deferral_caps() -> None:
    hook = Spy(OnErrorResult(retry_at=at(1010)))
    n = SETTINGS.retry_at_max_deferrals
    assert _decide(RuntimeError("x"), [hook], rec={"attempts": n, "deferrals": n - 1}).deferral
    capped = _decide(RuntimeError("x"), [hook], rec={"attempts": n + 1, "deferrals": n})
    assert isinstance(capped.error, NonRetriableError) and capped.retry_at is None
    assert isinstance(capped.error.__cause__, RuntimeError)


# -- the task record -------------------------------------------------------------------------


def test_a_failure_for_good_errors_the_record() -> None:
    rec: TaskRecord = {"attempts": 2, "status": "RUNNING"}
    erec = record_attempt_failure(rec, Decision(KeyError("k")), started=999.5, now=NOW)
    assert erec == {"type": "KeyError", "message": "'k'"}
    assert rec["status"] == "ERRORED" and rec["error"] == erec and rec["completed_at"] == NOW
    assert rec["errors"] == [{"attempt": 2, "type": "KeyError", "message": "'k'", "at": NOW,
                              "duration_ms": 500.0}]


def test_a_retry_waits_and_a_deferral_is_counted_apart() -> None:
    rec: TaskRecord = {"attempts": 1}
    record_attempt_failure(rec, Decision(RuntimeError("x"), retry_at=1100), NOW, NOW)
    assert rec["status"] == "WAITING" and rec["retry_at"] == 1100 and "deferrals" not in rec
    record_attempt_failure(rec, Decision(RuntimeError("x"), 1200, deferral=True), NOW, NOW)
    record_attempt_failure(rec, Decision(RuntimeError("x"), 1300, deferral=True), 1250, 1250)
    assert rec["deferrals"] == 2 and rec["first_deferral_at"] == NOW
    assert rec["retry_at"] == 1300


def test_only_the_latest_errors_are_kept() -> None:
    rec: TaskRecord = {"attempts": 0}
    for i in range(MAX_ERRORS_KEPT + 5):
        rec["attempts"] = i + 1
        record_attempt_failure(rec, Decision(RuntimeError(str(i)), retry_at=NOW), NOW, NOW)
    assert len(rec["errors"]) == MAX_ERRORS_KEPT
    assert rec["errors"][-1]["message"] == str(MAX_ERRORS_KEPT + 4)
    assert rec["errors"][0]["attempt"] == 6


def test_error_record_of_odd_exceptions() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    class Http(Exception):
        status_code = 429

    assert error_record(Unprintable()) == {"type": "Unprintable",
                                           "message": "<unprintable Unprintable>"}
    assert error_record(Http("slow down"))["status"] == 429
    assert len(error_record(ValueError("x" * 10_000))["message"]) == 4000

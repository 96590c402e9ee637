"""What a failed task does next: retry by policy, defer to a hook's ``retry_at``, or fail.

Ported from Trigger.dev v2's ``runTask`` error path: the task's own ``on_error`` (else the
integration's) sees the error first; its answer may replace the error, set ``retry_at``, or
``skip_retrying``. Otherwise the task's :class:`RetryOptions` decide. Unlike Trigger.dev, a
``retry_at`` deferral is counted apart from error retries and capped (``retry_at_max_deferrals``,
``retry_at_max_deferral_s``), so a hook cannot keep a task waiting forever.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trigger_celery._errors import (
    NonRetriableError,
    RetryAfterError,
    TaskFailedError,
    TriggerCeleryError,
)
from trigger_celery._logging import task_attempt_failed
from trigger_celery._loop import run_awaitable
from trigger_celery._retry import OnErrorResult, RetryOptions
from trigger_celery._settings import Settings
from trigger_celery._states import ERRORED, WAITING, ErrorRecord, TaskRecord
from trigger_celery._text import is_encoding_error
from trigger_celery._time import epoch_s

NO_RETRY = RetryOptions(limit=1)


@dataclass(frozen=True)
class Decision:
    """``retry_at`` (epoch seconds) is set when the task runs again; ``deferral`` when that time
    came from a hook or :class:`RetryAfterError` rather than the retry policy."""

    error: BaseException
    retry_at: float | None = None
    deferral: bool = False


def resolve(value: Any) -> Any:
    """Await a coroutine returned by a hook or callback (on the thread's one long-lived event
    loop, see ``_loop``); others pass."""
    if inspect.isawaitable(value):
        return run_awaitable(value)
    return value




def decide(
    error: BaseException,
    *,
    record: Mapping[str, Any],
    task: Any,
    io: Any,
    retry: RetryOptions | None,
    hooks: Sequence[Callable[..., Any] | None],
    settings: Settings,
    now: float,
) -> Decision:
    """Decide after a failed attempt. ``record`` is the task record (``attempts`` already counts
    this attempt; ``deferrals`` and ``first_deferral_at`` track earlier deferrals)."""
    if isinstance(error, TaskFailedError) or (
        isinstance(error, TriggerCeleryError) and not error.retriable
    ):
        return Decision(error)  # a child failed for good, or a non-retriable error
    if is_encoding_error(error):  # text that cannot be encoded fails the same way every time
        return Decision(_not_encodable(error))
    retry_at: float | None = None
    if isinstance(error, RetryAfterError):
        retry_at = epoch_s(error.retry_at)
    else:
        for hook in hooks:
            if hook is None:
                continue
            answer = resolve(hook(error, task, io))
            if answer is None:
                continue
            if isinstance(answer, BaseException):
                error = answer
                if isinstance(error, NonRetriableError):
                    return Decision(error)
            elif isinstance(answer, OnErrorResult):
                if answer.error is not None:
                    error = answer.error
                if answer.skip_retrying:
                    return Decision(error)
                if answer.retry_at is not None:
                    retry_at = epoch_s(answer.retry_at)
            else:
                return Decision(TypeError(
                    f"on_error must return None, an exception or OnErrorResult, got {answer!r}"
                ))
            break
    if retry_at is not None:
        deferrals = int(record.get("deferrals", 0))
        first = float(record.get("first_deferral_at") or now)
        if deferrals + 1 > settings.retry_at_max_deferrals:
            return Decision(_capped(error, f"{deferrals} retry_at deferrals"))
        if retry_at - first > settings.retry_at_max_deferral_s:
            span = f"{settings.retry_at_max_deferral_s:.0f} s of deferrals"
            return Decision(_capped(error, span))
        return Decision(error, retry_at=max(retry_at, now), deferral=True)
    policy_attempts = int(record["attempts"]) - int(record.get("deferrals", 0))
    delay_ms = (retry or NO_RETRY).delay_ms(policy_attempts)
    if delay_ms is None:
        return Decision(error)
    return Decision(error, retry_at=now + delay_ms / 1000)


#: Errors kept per task record (the latest ones).
MAX_ERRORS_KEPT = 20


def record_attempt_failure(rec: TaskRecord, d: Decision, started: float,
                           now: float, *, run_id: str = "", job_id: str = "") -> ErrorRecord:
    """Write a failed attempt and the decision into a task record: the attempt's error (the
    latest :data:`MAX_ERRORS_KEPT` kept), then ``ERRORED`` for good or ``WAITING`` until
    ``retry_at`` (a deferral counted apart). Returns the error record.

    The one place that logs a failed or retried task attempt (``trigger_celery`` logger: run id,
    job, task key, attempt, error, next attempt time). ``started``/``now``: epoch seconds."""
    erec = error_record(d.error)
    task_attempt_failed(run_id, job_id, rec, erec, d.retry_at, now=now)
    errors = rec.setdefault("errors", [])
    errors.append({"attempt": rec["attempts"], **erec, "at": now,
                   "duration_ms": round((now - started) * 1000, 3)})
    rec["errors"] = errors[-MAX_ERRORS_KEPT:]
    if d.retry_at is None:
        rec["status"], rec["error"], rec["completed_at"] = ERRORED, erec, now
        return erec
    if d.deferral:
        rec["deferrals"] = int(rec.get("deferrals", 0)) + 1
        rec.setdefault("first_deferral_at", now)
    rec["status"], rec["retry_at"], rec["error"] = WAITING, d.retry_at, erec
    return erec


def _not_encodable(error: BaseException) -> NonRetriableError:
    """Our non-retriable error for a text encoding error, naming the original (its cause)."""
    final = NonRetriableError(
        f"{type(error).__name__}: {error} (text that is not valid Unicode, e.g. a lone "
        "surrogate, cannot be sent or stored; not retried)")
    final.__cause__ = error
    return final


def _capped(error: BaseException, what: str) -> NonRetriableError:
    capped = NonRetriableError(f"retry_at cap reached after {what}; last error: {error!r}")
    capped.__cause__ = error
    return capped


def error_record(error: BaseException) -> ErrorRecord:
    """A JSON description of an exception, safe for any exception (even one whose ``str`` fails)."""
    try:
        message = str(error)
    except Exception:  # an exception whose __str__ raises must not crash the worker
        message = f"<unprintable {type(error).__name__}>"
    rec: ErrorRecord = {"type": type(error).__name__, "message": message[:4000]}
    status = getattr(error, "status", None) or getattr(error, "status_code", None)
    if isinstance(status, int):
        rec["status"] = status
    return rec

"""Every error trigger-celery raises, as one tree.

::

    TriggerCeleryError                 root: ``except TriggerCeleryError`` catches all of ours
    ├── ConfigurationError             bad settings, bad job definition, unknown option
    ├── ValidationError                bad payload or task params (names the field)
    ├── UnknownJobError                ``trigger`` / ``send_event`` of a job id no one defined
    ├── RunNotFoundError               ``get_run`` of an id that does not exist (or expired)
    ├── DuplicateTaskKeyError          the same task key twice under one parent in one execution
    ├── TaskOutputError                task output not JSON-serializable or over the size limit
    ├── TaskFailedError                a task failed for good (carries the stored error)
    ├── RunFailedError                 ``RunHandle.result`` of a run that failed or was canceled
    ├── RunTimeoutError                ``RunHandle.result`` timed out
    ├── NonDeterminismError            a replay differs from the recorded run (strict replay), or
    │                                  task keys change between executions
    ├── NonRetriableError              raise it in a task to fail without retrying
    └── RetryAfterError                raise it in a task to retry at a given time

The control-flow exceptions a run uses to suspend itself (:class:`Suspend` and its subclasses)
derive from ``BaseException``, so a user's ``except Exception`` cannot swallow them (Trigger.dev
uses thrown sentinels the same way).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from trigger_celery._states import CANCELED
from trigger_celery._time import aware, utc_now


class TriggerCeleryError(Exception):
    """Root of every error this package raises."""

    #: Whether the engine may retry a task that raised this error.
    retriable: bool = True


class ConfigurationError(TriggerCeleryError):
    """A setting, a job definition or an option is invalid. Raised where it is declared."""

    retriable = False


class ValidationError(TriggerCeleryError):
    """A payload or task params failed validation; the message names the field and the problem."""

    retriable = False


class UnknownJobError(TriggerCeleryError):
    """No worker or local definition knows this job id."""

    retriable = False


class RunNotFoundError(TriggerCeleryError):
    """No run with this id exists (never created, or expired after its retention)."""

    retriable = False


class DuplicateTaskKeyError(TriggerCeleryError):
    """The same task key was used twice under the same parent in one execution of a run."""

    retriable = False


class TaskOutputError(TriggerCeleryError):
    """A task's output is not JSON-serializable or exceeds ``max_output_bytes``."""

    retriable = False


class TaskFailedError(TriggerCeleryError):
    """A task failed for good; ``error`` is the stored record ``{"type", "message", ...}``."""

    retriable = False

    def __init__(self, key: str, error: Mapping[str, Any]):
        self.key = key
        self.error = dict(error)
        kind = error.get("type", "Error")
        super().__init__(f"task {key!r} failed: {kind}: {error.get('message')}")


class RunFailedError(TriggerCeleryError):
    """The run ended in ``FAILURE`` or ``CANCELED``; ``run`` is its :class:`~trigger_celery.Run`."""

    def __init__(self, run: Any):
        self.run = run
        super().__init__(f"run {run.id} ended {run.status}{error_suffix(run)}")


def error_suffix(run: Any) -> str:
    """``": Type: message"`` for a run with an error; for a canceled run without one,
    ``" (canceled; it ran no further task)"``; else ``""``."""
    err = run.error or {}
    if err.get("type") or err.get("message"):
        message = err.get("message")
        return f": {err.get('type') or 'Error'}" + (f": {message}" if message else "")
    if run.status == CANCELED:
        return " (canceled; it ran no further task)"
    return ""


class RunTimeoutError(TriggerCeleryError):
    """``RunHandle.result(timeout=...)`` ran out of time before the run finished."""


class NonDeterminismError(TriggerCeleryError):
    """The job's code does not make the same calls on replay as when the run recorded them.

    Raised (and the run failed) in two cases: a replayed task whose recorded name or params
    differ from the call made now, under strict replay (``define_job(..., strict_replay=True)``
    or the ``strict_replay`` setting; DBOS's ``DBOSUnexpectedStepError``); and a run whose
    executions keep leaving the task or wait they resumed for unreached (its key changes between
    executions). The message shows what was recorded and what was called.
    """

    retriable = False


class NonRetriableError(TriggerCeleryError):
    """Raise inside a task to fail it now, with no further attempt."""

    retriable = False


class RetryAfterError(TriggerCeleryError):
    """Raise inside a task to retry it at a time of your choosing.

    Parameters:
        retry_after: a ``timedelta`` from now, or an aware ``datetime`` (naive means UTC).
    """

    def __init__(self, message: str = "", *, retry_after: timedelta | datetime):
        super().__init__(message or f"retry after {retry_after}")
        if isinstance(retry_after, timedelta):
            self.retry_at = utc_now() + retry_after
        elif isinstance(retry_after, datetime):
            self.retry_at = aware(retry_after)
        else:
            raise TypeError("retry_after must be a timedelta or a datetime")


# -- control flow (BaseException: not catchable by `except Exception`) ------------------------


class Suspend(BaseException):  # noqa: N818 - control flow, not an error
    """The run stops this execution and resumes later (by a Celery message)."""

    #: Epoch seconds at which the run is due again; ``None``: woken by a dispatched task.
    wake_at: float | None = None
    reason: str = ""

    def __init__(self, wake_at: float | None, reason: str):
        super().__init__(reason)
        self.wake_at = wake_at
        self.reason = reason


class LeaseLost(BaseException):  # noqa: N818 - control flow, not an error
    """Another execution took over this run (our lease expired); stop without writing."""


class RunCanceled(BaseException):  # noqa: N818 - control flow, not an error
    """The run was canceled while this execution ran; it stops without writing."""


class StoreUnavailable(BaseException):  # noqa: N818 - control flow, not an error
    """The store did not take a write (down, out of memory, read-only) for as long as this
    execution's lease allowed; the execution stops without finishing and the run resumes once
    the store answers. Never reaches user code as an ``Exception``."""

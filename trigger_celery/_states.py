"""Run and task statuses, as named constants and sets (as Celery's ``celery/states.py``), and the
shapes of the records the store keeps.

Run statuses (a run's hash, ``status`` field): ``QUEUED`` (waiting for a worker), ``EXECUTING``
(an execution holds the lease), ``WAITING`` (suspended until ``wake_at`` or a dispatched task),
then one of :data:`RUN_READY_STATES`: ``SUCCESS``, ``FAILURE``, ``CANCELED``.

Task statuses (Trigger.dev v2's; a task record's ``status``): ``PENDING`` (recorded, not started),
``RUNNING``, ``WAITING`` (until ``retry_at``: delay_until, a wait, a retry), then one of
:data:`TASK_READY_STATES`: ``COMPLETED``, ``ERRORED``. A task left unsettled when its run
finished reads ``CANCELED``.

The Lua scripts under ``lua/`` write the same strings; the values are part of the stored format.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypedDict

RunStatus = Literal["QUEUED", "EXECUTING", "WAITING", "SUCCESS", "FAILURE", "CANCELED"]
TaskStatus = Literal["PENDING", "RUNNING", "WAITING", "COMPLETED", "ERRORED", "CANCELED"]

# -- run statuses ---------------------------------------------------------------------------

#: Created, or woken, and waiting for a worker to take the run's message.
QUEUED: Final = "QUEUED"
#: An execution holds the run's lease.
EXECUTING: Final = "EXECUTING"
#: Suspended until ``wake_at`` (a wait, a retry) or until a dispatched task settles. Also a task
#: status: the task waits for ``retry_at``.
WAITING: Final = "WAITING"
#: The job's function returned; ``output`` is set.
SUCCESS: Final = "SUCCESS"
#: The job's function raised (or its payload failed validation); ``error`` is set.
FAILURE: Final = "FAILURE"
#: ``cancel_run`` stopped it. Also a task status: a task left unsettled by a finished run.
CANCELED: Final = "CANCELED"

RUN_STATUSES: Final[tuple[RunStatus, ...]] = (
    QUEUED, EXECUTING, WAITING, SUCCESS, FAILURE, CANCELED)
#: A run in one of these has finished for good and expires after ``run_retention_s``.
RUN_READY_STATES: Final[frozenset[str]] = frozenset({SUCCESS, FAILURE, CANCELED})
RUN_UNREADY_STATES: Final[frozenset[str]] = frozenset({QUEUED, EXECUTING, WAITING})

# -- task statuses --------------------------------------------------------------------------

#: Recorded, not started (a dispatched task waits for a worker of its queue).
PENDING: Final = "PENDING"
#: An attempt is in progress.
RUNNING: Final = "RUNNING"
#: The task succeeded; ``output`` is stored and replayed.
COMPLETED: Final = "COMPLETED"
#: The task failed for good; ``error`` is stored and raised again on replay.
ERRORED: Final = "ERRORED"

TASK_STATUSES: Final[tuple[TaskStatus, ...]] = (
    PENDING, RUNNING, WAITING, COMPLETED, ERRORED, CANCELED)
#: A task in one of these is settled: a replay returns its output or raises its error.
TASK_READY_STATES: Final[frozenset[str]] = frozenset({COMPLETED, ERRORED})
#: A task in one of these has not settled (it reads CANCELED once its run has finished).
TASK_UNREADY_STATES: Final[frozenset[str]] = frozenset({PENDING, RUNNING, WAITING})


# -- records --------------------------------------------------------------------------------


class ErrorRecord(TypedDict, total=False):
    """An exception as stored (``_policy.error_record``): ``type`` and ``message`` always;
    ``status`` (an HTTP status) when the exception had one; ``stack`` for a run's error."""

    type: str
    message: str
    status: int
    stack: str


class TaskRecord(TypedDict, total=False):
    """A task as stored in ``P:run:{run_id}:tasks`` (JSON), keyed by its idempotency key.

    Times are epoch seconds, durations milliseconds. ``kind`` is ``inline`` (``io.run_task``),
    ``wait`` (``io.wait``), ``dispatched`` (an integration call run by a Celery task) or
    ``parallel`` (``io.parallel``; its items' tasks are its children).
    """

    key: str
    idem: str
    parent: str | None
    kind: Literal["inline", "wait", "dispatched", "parallel"]
    name: str
    display: str
    icon: str | None
    status: TaskStatus
    attempts: int
    params: Any
    #: the validated params a dispatched attempt calls the provider with (unredacted)
    call: dict[str, Any]
    properties: list[dict[str, Any]]
    connection: str
    queue: str
    created_at: float
    dispatched_at: float
    retry_at: float
    wait: str
    completed_at: float
    duration_ms: float
    output: Any
    error: ErrorRecord
    errors: list[dict[str, Any]]
    deferrals: int
    first_deferral_at: float
    rerun_after_loss: bool
    #: task records a settled task's callback reached (at any depth; a replay skips them)
    descendants: int
    #: the ``io.parallel`` item the task was created in (``"<parallel idem>#<index>"``)
    item: str
    resend_by_run: bool
    #: SHA-256 (16 hex digits) of the call's params as recorded, for the determinism check
    params_hash: str | None
    #: a dispatched call deferred by a rate limit (``_ratelimit``): which limit, until when,
    #: how many times, and the limit's description
    rate_limit: str
    rate_limited_until: float
    rate_limit_waits: int
    rate_limit_detail: str
    #: a dispatched attempt's message: when it was first due on its queue (epoch s) and how
    #: many times it was sent again, presumed lost
    queued_at: float
    resends: int


class RunFields(TypedDict, total=False):
    """The fields a run's hash (``P:run:{run_id}``) is created with (``TriggerClient._create``);
    the Lua scripts add ``started_at``, ``finished_at``, ``output``, ``lost_executions``, ...
    Redis returns every field as a string."""

    id: str
    job_id: str
    job_version: str
    payload: str
    status: RunStatus
    seq: int
    executions: int
    created_at: float
    updated_at: float
    queue: str
    event_name: str
    event_id: str
    error: str
    finished_at: float
    wake_at: float
    wait_reason: str


def keep_descendants(rec: TaskRecord, n: int) -> None:
    """Keep how many task records a settled task's callback reached (its descendants, at any
    depth): a replay returns its output without reaching them, and counts them instead."""
    if n:
        rec["descendants"] = n
    else:
        rec.pop("descendants", None)

"""What callers see of a run: :class:`Run`, :class:`Task`, :class:`LogEntry`, :class:`RunHandle`."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from pydantic import BaseModel, Field

from trigger_celery._errors import RunFailedError, RunNotFoundError, RunTimeoutError
from trigger_celery._states import (
    CANCELED,
    EXECUTING,
    RUN_READY_STATES,
    SUCCESS,
    TASK_READY_STATES,
    TASK_UNREADY_STATES,
    RunStatus,
    TaskStatus,
)

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient


#: Status of a task whose stored record cannot be read (not JSON, or not a task's shape).
UNREADABLE: Final = "UNREADABLE"


class Task(BaseModel):
    """A task of a run as stored. Times are epoch seconds; durations milliseconds."""

    key: str
    idem: str = Field(description="idempotency key")
    parent: str | None = None
    kind: str = "inline"
    #: The Celery queue a dispatched task's attempts go to (its integration's).
    queue: str | None = None
    name: str
    display: str | None = None
    icon: str | None = None
    #: Trigger.dev's task statuses, or ``UNREADABLE`` for a stored record that cannot be read
    status: TaskStatus | Literal["UNREADABLE"]
    attempts: int = 0
    deferrals: int = 0
    params: Any = None
    properties: list[dict[str, Any]] = []
    output: Any = None
    error: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = []
    retry_at: float | None = None
    created_at: float | None = None
    #: When the attempt in flight started (epoch seconds): set on an inline task whose callback
    #: is running now (``status`` RUNNING), shown once it has run half a second.
    started_at: float | None = None
    completed_at: float | None = None
    duration_ms: float | None = None
    #: The task ran in an execution that took over from a lost one (its worker died) before
    #: the task had a record: the lost execution may have run it too (at-least-once).
    rerun_after_loss: bool = False
    #: 16 hex digits of SHA-256 of the params the task was called with (replay checks).
    params_hash: str | None = None
    #: While the task waits for a rate limit: when its slot comes (epoch seconds), and which
    #: limit (``github rate limit``); ``rate_limit_waits`` counts such waits (no attempt used).
    rate_limited_until: float | None = None
    rate_limit: str | None = None
    rate_limit_waits: int = 0
    #: Dispatched tasks: when the current attempt's message was first due on ``queue`` (epoch
    #: seconds); how many times that message was sent again, presumed lost; whether a worker
    #: started the current attempt.
    queued_at: float | None = None
    resends: int = 0
    started: bool = False


class LogEntry(BaseModel):
    level: str
    message: str
    at: float
    data: dict[str, Any] | None = None


class Run(BaseModel):
    """A run's record. ``status`` is one of QUEUED, EXECUTING, WAITING, SUCCESS, FAILURE,
    CANCELED; ``wake_at`` (epoch seconds) is when a waiting run is due again."""

    id: str
    job_id: str
    job_version: str | None = None
    status: RunStatus
    payload: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    event_name: str | None = None
    event_id: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    wake_at: float | None = None
    wait_reason: str | None = None
    #: The run's concurrency key (``""``: the job's limit is job-wide; ``None``: no limit) and
    #: its limit; a run waiting for a slot is QUEUED with ``wait_reason`` ``concurrency``.
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    executions: int = 0
    #: Executions that ended without suspending or finishing (their worker died).
    lost_executions: int = 0
    tasks: list[Task] = []
    logs: list[LogEntry] = []
    logs_dropped: int = 0
    #: Replayed tasks whose recorded name or params differ from the call made on replay, once
    #: per task: ``{"key", "idem", "recorded": {"name", "params"}, "now": {"name", "params"},
    #: "at"}`` (``at`` in epoch seconds); see :mod:`trigger_celery._determinism`.
    replay_warnings: list[dict[str, Any]] = []

    @property
    def finished(self) -> bool:
        return self.status in RUN_READY_STATES

    def task(self, key: str) -> Task:
        """The (first) task with this key. Raises KeyError."""
        for t in self.tasks:
            if t.key == key:
                return t
        raise KeyError(key)

    @classmethod
    def from_redis(cls, h: dict[str, str], tasks: dict[str, str], logs: list[str],
                   starts: dict[str, str] | None = None) -> Run:
        """A run from its Redis hashes; ``starts`` (``"<idem>:<attempt>"`` -> count) tells
        which dispatched attempts a worker started."""
        def num(k: str) -> float | None:
            v = h.get(k)
            return float(v) if v not in (None, "") else None

        def js(k: str) -> Any:
            v = h.get(k)
            if not v:
                return None
            try:
                return json.loads(v)
            except ValueError as exc:  # one bad field must not hide the run
                return _unreadable(f"run field {k!r}", v, exc)

        recs = sorted((read_task(idem, raw) for idem, raw in tasks.items()),
                      key=lambda t: t.created_at or 0)
        for t in recs:
            if t.kind == "dispatched" and starts:
                t.started = f"{t.idem}:{t.attempts + 1}" in starts
        finished = h["status"] in RUN_READY_STATES
        running = h.get("running_task")
        if running and h["status"] == EXECUTING:  # an inline callback in flight (LeaseKeeper)
            live = read_task("running", running)
            known = [i for i, t in enumerate(recs) if t.idem == live.idem]
            if not known:
                recs.append(live)
            elif recs[known[0]].status not in TASK_READY_STATES:
                recs[known[0]] = live
        if finished:  # nothing is pending any more: tasks left unfinished were canceled
            for t in recs:
                if t.status in TASK_UNREADY_STATES:
                    t.status = CANCELED
                    t.retry_at = None
                    t.rate_limited_until = None
        return cls(
            id=h["id"], job_id=h["job_id"], job_version=h.get("job_version"),
            status=cast("RunStatus", h["status"]),
            payload=js("payload"), output=js("output"), error=js("error"),
            event_name=h.get("event_name") or None, event_id=h.get("event_id") or None,
            created_at=num("created_at"), started_at=num("started_at"),
            finished_at=num("finished_at"), wake_at=None if finished else num("wake_at"),
            wait_reason=None if finished else h.get("wait_reason") or None,
            concurrency_key=h.get("conc_name") if h.get("conc_key") else None,
            concurrency_limit=int(h["conc_limit"]) if h.get("conc_limit") else None,
            executions=int(h.get("executions", 0)),
            lost_executions=int(h.get("lost_executions", 0)),
            tasks=recs, logs=[read_log(x) for x in logs],
            logs_dropped=int(h.get("logs_dropped", 0)),
            replay_warnings=js("replay_warnings") or [],
        )




def _unreadable(what: str, raw: str, exc: Exception) -> dict[str, Any]:
    """The error record shown for a stored value that cannot be read: ``{"type":
    "UnreadableRecord", "message": ..., "raw": the first 200 characters}``."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return {"type": "UnreadableRecord", "message": f"{what} is unreadable: {reason}"[:500],
            "raw": raw[:200]}


def read_task(idem: str, raw: str) -> Task:
    """A stored task record (JSON) as a :class:`Task`; one that is not JSON or not a task's
    shape becomes a task with status ``UNREADABLE`` whose ``error`` says why, so the rest of
    the run still shows."""
    try:
        rec = json.loads(raw)  # json, not pydantic's parser: that one refuses "\ud83d"
        return Task.model_validate(rec)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        return Task(key=f"<unreadable {idem[:12]}>", idem=idem, name="unreadable record",
                    status=UNREADABLE, error=_unreadable(f"task record {idem}", raw, exc))


def read_log(raw: str) -> LogEntry:
    """A stored log entry (JSON) as a :class:`LogEntry`; an unreadable one becomes an
    ``ERROR`` line saying so (``at`` 0: its time is unknown)."""
    try:
        return LogEntry.model_validate(json.loads(raw))
    except ValueError as exc:
        err = _unreadable("log entry", raw, exc)
        return LogEntry(level="ERROR", message=err["message"], at=0.0, data={"raw": err["raw"]})


class RunHandle:
    """A handle on a run an app started. ``created`` is False when an idempotency key or event
    id named an existing run."""

    def __init__(self, client: TriggerClient, run_id: str, *, created: bool = True):
        self.client = client
        self.id = run_id
        self.created = created

    def __repr__(self) -> str:
        return f"RunHandle({self.id!r})"

    def get(self) -> Run:
        """The run's current record. Raises :class:`RunNotFoundError`."""
        return self.client.get_run(self.id)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the run to finish and return its output.

        Parameters:
            timeout: seconds to wait at most; ``None`` waits forever.

        Raises:
            RunFailedError: the run ended in FAILURE or CANCELED (``.run`` has the record).
            RunTimeoutError: ``timeout`` seconds passed first.
            RunNotFoundError: no such run.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.02
        while True:
            h = self.client.store.get_run_hash(self.id)
            if not h:
                raise RunNotFoundError(f"no run {self.id!r}")
            if h.get("status") in RUN_READY_STATES:
                run = self.get()
                if run.status != SUCCESS:
                    raise RunFailedError(run)
                return run.output
            if deadline is not None and time.monotonic() >= deadline:
                raise RunTimeoutError(
                    f"run {self.id} still {h.get('status')} after {timeout} s"
                )
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            time.sleep(delay if left is None else min(delay, left))
            delay = min(delay * 1.5, 0.5)

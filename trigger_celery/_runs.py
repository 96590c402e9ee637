"""What callers see of a run: :class:`Run`, :class:`Task`, :class:`LogEntry`, :class:`RunHandle`."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from trigger_celery._errors import RunFailedError, RunNotFoundError, RunTimeoutError
from trigger_celery._store import FINISHED

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient


class Task(BaseModel):
    """A task of a run as stored. Times are epoch seconds; durations milliseconds."""

    key: str
    idem: str = Field(description="idempotency key")
    parent: str | None = None
    kind: str = "inline"
    name: str
    display: str | None = None
    icon: str | None = None
    status: str
    attempts: int = 0
    deferrals: int = 0
    params: Any = None
    properties: list[dict[str, Any]] = []
    output: Any = None
    error: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = []
    retry_at: float | None = None
    created_at: float | None = None
    completed_at: float | None = None
    duration_ms: float | None = None
    #: The task ran in an execution that took over from a lost one (its worker died) before
    #: the task had a record: the lost execution may have run it too (at-least-once).
    rerun_after_loss: bool = False
    #: Dispatched tasks: the Celery queue its attempts go to; when the current attempt's
    #: message was first due there (epoch seconds); how many times that message was sent again,
    #: presumed lost; whether a worker started the current attempt.
    queue: str | None = None
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
    status: str
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
    executions: int = 0
    #: Executions that ended without suspending or finishing (their worker died).
    lost_executions: int = 0
    tasks: list[Task] = []
    logs: list[LogEntry] = []
    logs_dropped: int = 0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

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
            return json.loads(v) if v else None

        recs = sorted((json.loads(v) for v in tasks.values()),
                      key=lambda r: r.get("created_at") or 0)
        for r in recs:
            if r.get("kind") == "dispatched" and starts:
                r["started"] = f"{r.get('idem')}:{int(r.get('attempts', 0)) + 1}" in starts
        finished = h["status"] in FINISHED
        if finished:  # nothing is pending any more: tasks left unfinished were canceled
            for r in recs:
                if r.get("status") in ("PENDING", "RUNNING", "WAITING"):
                    r["status"] = "CANCELED"
                    r.pop("retry_at", None)
        return cls(
            id=h["id"], job_id=h["job_id"], job_version=h.get("job_version"), status=h["status"],
            payload=js("payload"), output=js("output"), error=js("error"),
            event_name=h.get("event_name") or None, event_id=h.get("event_id") or None,
            created_at=num("created_at"), started_at=num("started_at"),
            finished_at=num("finished_at"), wake_at=None if finished else num("wake_at"),
            wait_reason=None if finished else h.get("wait_reason") or None,
            executions=int(h.get("executions", 0)),
            lost_executions=int(h.get("lost_executions", 0)),
            tasks=[Task.model_validate(r) for r in recs],
            logs=[LogEntry.model_validate_json(x) for x in logs],
            logs_dropped=int(h.get("logs_dropped", 0)),
        )


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
            if h.get("status") in FINISHED:
                run = self.get()
                if run.status != "SUCCESS":
                    raise RunFailedError(run)
                return run.output
            if deadline is not None and time.monotonic() >= deadline:
                raise RunTimeoutError(
                    f"run {self.id} still {h.get('status')} after {timeout} s"
                )
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            time.sleep(delay if left is None else min(delay, left))
            delay = min(delay * 1.5, 0.5)

"""Executing runs and dispatched tasks: leases, replay, suspension and resumption.

A run message is ``(run_id, seq)``. ``seq`` grows each time an execution ends, so a duplicate or
redelivered message of an execution that already happened is stale and does nothing; a message
for the current ``seq`` runs only if no live execution holds the run's lease. Every write of an
execution is fenced by its lease token (``checkpoint.lua``), so an execution that lost its lease
cannot overwrite the one that took over.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from trigger_celery._errors import (
    LeaseLost,
    Suspend,
    TriggerCeleryError,
    UnknownJobError,
    ValidationError,
)
from trigger_celery._io import IO, RunCanceled, TaskRunner, encode_output
from trigger_celery._keys import celery_task_id
from trigger_celery._policy import decide, error_record, record_attempt_failure
from trigger_celery._store import Store, dumps
from trigger_celery.integration import Integration, OperationResult, TaskInfo

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient

logger = logging.getLogger("trigger_celery")


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


@dataclass(frozen=True)
class Context:
    """The ``ctx`` argument of a job: what the run knows about itself.

    Attributes:
        run_id, job_id, job_version (the version the run started with), job_name,
        event_name, event_id (``None`` for ``trigger``), executions (this one included),
        created_at (epoch seconds).
    """

    run_id: str
    job_id: str
    job_version: str
    job_name: str
    event_name: str | None
    event_id: str | None
    executions: int
    created_at: float


class LeaseKeeper:
    """One thread per process renewing the leases of executions in progress (every third of
    ``lease_s``). A lease that could not be renewed is marked lost."""

    def __init__(self, store: Store):
        self.store = store
        self.lease_ms = int(store.settings.lease_s * 1000)
        self._held: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def hold(self, key: str, token: str, run_id: str = "") -> None:
        import os

        with self._lock:
            self._held[key] = (token, run_id)
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="tc-leases", daemon=True)
                self._thread.start()

    def release(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)

    def _loop(self) -> None:
        while True:
            time.sleep(self.store.settings.lease_s / 3)
            with self._lock:
                held = list(self._held.items())
            for key, (token, run_id) in held:
                try:
                    self.store.renew(key, token, self.lease_ms, run_id)
                except Exception:  # Redis away: the next round tries again
                    logger.warning("lease renewal failed for %s", key, exc_info=True)


class RunExecution(TaskRunner):
    """One execution of one run: its lease, its snapshot of task records, its io."""

    def __init__(self, executor: Executor, run_id: str, token: str,
                 run: dict[str, str], tasks: dict[str, Any], integrations: dict[str, Integration]):
        self.executor = executor
        self.client = executor.client
        self.store = executor.store
        self.settings = executor.store.settings
        self.grace_s = executor.store.grace_s
        self.run_id = run_id
        self.token = token
        self.run = run
        self.tasks = tasks
        self.integrations = integrations
        self.keys = self.store.run_keys(run_id)
        self._seen: set[str] = set()
        self._parents: list[str] = []
        self.replayed = 0
        self.settled = len(tasks)  # records from earlier executions; logs before them are old
        # This execution took over from one whose worker died (acquire.lua): the first task it
        # runs without a record may have been in flight then; it is marked rerun_after_loss.
        self.recovering = bool(run.get("recovered_by")) and \
            run.get("recovered_by") == run.get("executions")
        self.io = IO(self)

    # -- writes, fenced by the lease token ---------------------------------------------------

    def checkpoint(self, idem: str, rec: dict[str, Any], output_json: str | None = None, *,
                   expect_attempts: int | None = None) -> bool:
        """Store ``rec`` (with ``output_json`` spliced in); fenced by the lease token.

        ``expect_attempts``: store only while the stored record is unsettled at that many
        attempts; returns False (nothing stored) when a worker settled it meanwhile.
        """
        if output_json is None:
            text = dumps(rec)
        else:  # splice the already-encoded output in, instead of encoding it twice
            rec.pop("output", None)
            text = dumps(rec)[:-1] + ',"output":' + output_json + "}"
        run, tasks, _, lease = self.keys
        expect = "" if expect_attempts is None else str(expect_attempts)
        res = self.store.script("checkpoint", [run, tasks, lease], [self.token, idem, text, expect])
        if res == 0:
            raise LeaseLost(self.run_id)
        if res == -1:
            raise RunCanceled(self.run_id)
        if res == -2:
            return False
        self.tasks[idem] = text
        self.recovering = False  # past the point where the lost execution could have been
        return True

    def suspend(self, wake_at: float | None, reason: str, idem: str = "",
                rec: dict[str, Any] | None = None, *, message: bool = True,
                check_at: float | None = None) -> NoReturn:
        """Raise :class:`Suspend`; the executor writes ``rec`` with the suspension.

        ``wake_at`` (epoch seconds) is when the run is due; ``None``: when a dispatched task wakes
        it, checked at ``check_at`` (epoch seconds; default ``dispatch_check_s`` from now).
        ``message=False``: something else (a task's own retry message) is due at ``wake_at``;
        the run only checks on it a grace period later.
        """
        raise _Suspension(wake_at, reason, idem, rec, message, check_at)

    def log(self, level: str, message: str, data: dict[str, Any]) -> None:
        if self.replayed < self.settled:
            return  # an earlier execution logged this line already
        entry = {"level": level, "message": str(message), "at": time.time()}
        if data:
            try:
                entry["data"] = json.loads(dumps(data))
            except (TypeError, ValueError):
                entry["data"] = {k: repr(v) for k, v in data.items()}
        run, _, logs, _ = self.keys
        self.store.script("log", [run, logs], [self.settings.max_log_entries, dumps(entry)])

    def send_task(self, integ: Integration, qname: str, idem: str, attempt: int,
                  rec: dict[str, Any]) -> None:
        self.executor.send_task(integ, qname, self.run_id, idem, attempt, rec)


class _Suspension(Suspend):
    def __init__(self, wake_at: float | None, reason: str, idem: str,
                 rec: dict[str, Any] | None, message: bool = True,
                 check_at: float | None = None):
        super().__init__(wake_at, reason)
        self.idem = idem
        self.rec = rec
        self.message = message
        self.check_at = check_at


class Executor:
    """Runs executions and dispatched task attempts for one :class:`TriggerClient`."""

    def __init__(self, client: TriggerClient):
        self.client = client
        self.store = client.store
        self.settings = client.settings
        self.leases = LeaseKeeper(self.store)
        #: Called as ``hook(execution, suspend)`` before a suspension is written; for tests and
        #: instrumentation (a hook that blocks holds the run's suspension open).
        self.before_suspend: list[Any] = []

    # -- messages ----------------------------------------------------------------------------

    def send_run(self, run_id: str, seq: int, *, job_id: str = "", queue: str = "",
                 eta_s: float | None = None) -> None:
        """Publish the run's execution message to the run's own runs queue (the one of the
        client that created it; ``eta_s``: epoch seconds, within the ETA window). Flower shows
        the run id and the job id."""
        opts: dict[str, Any] = {}
        if eta_s is not None and eta_s > time.time():
            opts["countdown"] = eta_s - time.time()
        self.client.run_celery_task.apply_async(
            args=[run_id, seq], queue=queue or self.settings.runs_queue,
            argsrepr=f"({run_id!r}, seq={seq})", kwargsrepr=f"{{job: {job_id or '?'}}}", **opts,
        )

    def send_task(self, integ: Integration, qname: str, run_id: str, idem: str, attempt: int,
                  rec: dict[str, Any], *, eta_s: float | None = None) -> None:
        """Publish a dispatched task's attempt. The message carries ids only: params live in the
        run's task record, credentials on the worker; Flower shows the display properties."""
        task = self.client.operation_celery_task(integ, qname)
        shown = ", ".join(f"{p.get('label')}={p.get('text')}" for p in rec.get("properties", []))
        opts: dict[str, Any] = {}
        if eta_s is not None and eta_s > time.time():
            opts["countdown"] = eta_s - time.time()
        task.apply_async(
            kwargs={"run_id": run_id, "idem": idem, "attempt": attempt,
                    "connection": integ.connection_key},
            task_id=celery_task_id(idem, attempt), queue=integ.queue,
            argsrepr=f"({rec.get('display') or rec.get('name')!r})",
            kwargsrepr=f"{{{shown}}} run={run_id} key={rec.get('key')!r} attempt={attempt}",
            **opts,
        )

    # -- run executions ----------------------------------------------------------------------

    def execute(self, run_id: str, seq: int) -> str:
        """Execute a run if this message is current and no one else holds it.

        Returns what happened: ``ok`` (ran), ``missing``, ``finished``, ``stale``, ``busy``.
        Never raises for a run's own failures; they are recorded on the run.
        """
        token = uuid.uuid4().hex
        run, tasks, _, lease = self.store.run_keys(run_id)
        lease_ms = int(self.settings.lease_s * 1000)
        res = self.store.script(
            "acquire", [run, tasks, lease, self.store.schedule_key],
            [run_id, token, seq, lease_ms, time.time()],
        )
        if res[0] != "ok":
            logger.debug("run %s seq %s: %s, nothing to do", run_id, seq, res[0])
            return str(res[0])
        self.leases.hold(lease, token, run_id)
        try:
            self._execute(run_id, token, _pairs(res[1]), _pairs(res[2]))
        finally:
            self.leases.release(lease)
        return "ok"

    def _execute(self, run_id: str, token: str, run: dict[str, str], tasks: dict[str, Any]) -> None:
        job = self.client.jobs.get(run["job_id"])
        if job is None:
            self._finish(run_id, token, "FAILURE", None, error_record(UnknownJobError(
                f"this worker has no job {run['job_id']!r}")))
            return
        if job.version != run.get("job_version"):
            logger.warning("run %s started with %s version %s; resuming with version %s",
                           run_id, job.id, run.get("job_version"), job.version)
        x = RunExecution(self, run_id, token, run, tasks, job.integrations)
        ctx = Context(
            run_id=run_id, job_id=job.id, job_version=run.get("job_version", job.version),
            job_name=job.name, event_name=run.get("event_name") or None,
            event_id=run.get("event_id") or None, executions=int(run.get("executions", 1)),
            created_at=float(run.get("created_at", 0)),
        )
        try:
            payload = job.parse_payload(json.loads(run.get("payload", "null")))
            output = job.run(payload, x.io, ctx)
            text = encode_output(output, f"run of {job.id!r}", self.settings.max_output_bytes)
        except _Suspension as s:
            self._suspend(x, s)
            return
        except (LeaseLost, RunCanceled) as stop:
            logger.info("run %s: execution stopped (%s)", run_id, type(stop).__name__)
            return
        except Exception as err:  # noqa: BLE001 - the run fails; the worker goes on
            rec = error_record(err)
            if not isinstance(err, TriggerCeleryError) or isinstance(err, ValidationError):
                rec["stack"] = "".join(traceback.format_exception(err))[-8000:]
            self._finish(run_id, token, "FAILURE", None, rec)
            return
        self._finish(run_id, token, "SUCCESS", text, None)

    def _suspend(self, x: RunExecution, s: _Suspension) -> None:
        for hook in self.before_suspend:
            hook(x, s)
        now = time.time()
        grace = self.store.grace_s
        in_window = (s.message and s.wake_at is not None
                     and s.wake_at - now <= self.settings.eta_window_s)
        if s.wake_at is None:
            due = s.check_at if s.check_at is not None else now + self.settings.dispatch_check_s
        else:
            due = s.wake_at + grace if in_window or not s.message else s.wake_at
        run, tasks, _, lease = x.keys
        rec_json = dumps(s.rec) if s.rec is not None else ""
        res = self.store.script(
            "suspend", [run, tasks, lease, self.store.schedule_key],
            [x.token, x.run_id, "" if s.wake_at is None else s.wake_at, s.reason, now, due,
             s.idem, rec_json, now + grace],
        )
        outcome, seq = res[0], int(res[1]) if len(res) > 1 else 0
        if outcome == "now":
            self.send_run(x.run_id, seq, job_id=x.run.get("job_id", ""),
                          queue=x.run.get("queue", ""))
        elif outcome == "waiting" and in_window:
            self.send_run(x.run_id, seq, eta_s=s.wake_at, job_id=x.run.get("job_id", ""),
                          queue=x.run.get("queue", ""))

    def _finish(self, run_id: str, token: str, status: str, output: str | None,
                error: dict[str, Any] | None) -> None:
        run, tasks, logs, lease = self.store.run_keys(run_id)
        self.store.script(
            "finish", [run, tasks, logs, lease, self.store.schedule_key],
            [token, run_id, status, output or "", dumps(error) if error else "", time.time(),
             self.settings.run_retention_s],
        )

    # -- dispatched task attempts ------------------------------------------------------------

    def execute_operation(self, integ: Integration, qname: str, run_id: str, idem: str,
                          attempt: int, celery_task: Any = None) -> str:
        """Run one attempt of a dispatched task; store its outcome and wake its run.

        Returns ``ok``, or why nothing ran: ``missing``, ``finished`` (the run was canceled or
        ended: nothing more reaches the provider), ``done``, ``stale``, ``busy``.
        """
        token = uuid.uuid4().hex
        run, tasks, _, _ = self.store.run_keys(run_id)
        tlease = self.store.task_lease_key(run_id, idem)
        lease_ms = int(self.settings.lease_s * 1000)
        res = self.store.script("task_start",
                                [tasks, tlease, self.store.task_starts_key(run_id), run],
                                [idem, attempt, token, lease_ms, time.time(),
                                 self.settings.run_retention_s])
        if res[0] != "ok":
            return str(res[0])
        rec: dict[str, Any] = json.loads(res[1])
        if int(res[2]) > 1:  # this attempt started before and its worker died: it may repeat
            rec["rerun_after_loss"] = True
        self.leases.hold(tlease, token)
        try:
            return self._attempt(integ, qname, run_id, idem, attempt, rec, token, celery_task)
        finally:
            self.leases.release(tlease)

    def _attempt(self, integ: Integration, qname: str, run_id: str, idem: str, attempt: int,
                 rec: dict[str, Any], token: str, celery_task: Any) -> str:
        op = integ.operations()[qname]
        rec.update(attempts=attempt, status="RUNNING")
        info = TaskInfo(run_id, rec["key"], idem, rec["name"], attempt, rec.get("params"),
                        rec.get("properties", []))
        started = time.time()
        try:
            params = op.params.model_validate(rec.get("call") or {})
            result = op.fn(integ.client(), params, info)
            if isinstance(result, OperationResult):
                rec["properties"] = [*rec.get("properties", []), *result.properties]
                result = result.output
            text = encode_output(result, f"task {rec['key']!r} ({rec['name']})",
                                 self.settings.max_output_bytes)
        except Exception as err:  # noqa: BLE001 - recorded, retried or failed
            return self._attempt_failed(integ, qname, run_id, idem, rec, token, info, err,
                                        started, celery_task)
        now = time.time()
        rec.update(status="COMPLETED", completed_at=now,
                   duration_ms=round((now - started) * 1000, 3))
        for k in ("call", "error", "retry_at"):
            rec.pop(k, None)
        self._settle(run_id, idem, token, dumps(rec)[:-1] + ',"output":' + text + "}", True)
        return "ok"

    def _attempt_failed(self, integ: Integration, qname: str, run_id: str, idem: str,
                        rec: dict[str, Any], token: str, info: TaskInfo, err: Exception,
                        started: float, celery_task: Any) -> str:
        now = time.time()
        d = decide(err, record=rec, task=info, io=None, retry=integ.retry,
                   hooks=[integ.on_error], settings=self.settings, now=now)
        erec = record_attempt_failure(rec, d, started, now)
        if d.retry_at is None:
            rec.pop("call", None)
            self._settle(run_id, idem, token, dumps(rec), True)
            logger.info("task %s of run %s failed for good: %s", rec["name"], run_id, erec)
            return "failed"
        in_window = d.retry_at - now <= self.settings.eta_window_s
        # the next attempt's message is due at retry_at: the run checks on it from then on
        rec.update(dispatched_at=d.retry_at, queued_at=d.retry_at, resends=0)
        if not in_window:
            rec["resend_by_run"] = True  # the run wakes at retry_at and dispatches it
        # wake the run: it records when it is due next (retry_at) instead of polling the task
        self._settle(run_id, idem, token, dumps(rec), True)
        if in_window:
            self._retry_message(integ, qname, run_id, idem, rec, d.retry_at, celery_task)
        return "retry"

    def _retry_message(self, integ: Integration, qname: str, run_id: str, idem: str,
                       rec: dict[str, Any], retry_at: float, celery_task: Any) -> None:
        """The next attempt as Celery's own ``retry(eta=...)`` (Flower shows it as a retry)."""
        attempt = int(rec["attempts"]) + 1
        if celery_task is None:
            self.send_task(integ, qname, run_id, idem, attempt, rec, eta_s=retry_at)
            return
        raise celery_task.retry(
            eta=datetime.fromtimestamp(retry_at, UTC), max_retries=None,
            kwargs={"run_id": run_id, "idem": idem, "attempt": attempt,
                    "connection": integ.connection_key},
        )

    def _settle(self, run_id: str, idem: str, token: str, rec_json: str, wake: bool) -> None:
        run, tasks, _, _ = self.store.run_keys(run_id)
        res = self.store.script(
            "task_settle",
            [run, tasks, self.store.task_lease_key(run_id, idem), self.store.schedule_key],
            [idem, token, rec_json, "1" if wake else "", run_id, time.time() + self.store.grace_s],
        )
        if res[0] == "wake":
            self.send_run(run_id, int(res[1]), job_id=res[2], queue=res[3])

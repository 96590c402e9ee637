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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from trigger_celery import _ratelimit
from trigger_celery._determinism import ReplayGuard
from trigger_celery._errors import (
    LeaseLost,
    StoreUnavailable,
    Suspend,
    TriggerCeleryError,
    UnknownJobError,
    ValidationError,
)
from trigger_celery._io import IO, RunCanceled, TaskRunner, encode_output
from trigger_celery._keys import celery_task_id
from trigger_celery._policy import decide, error_record, record_attempt_failure
from trigger_celery._store import Store, dumps, is_transient
from trigger_celery.integration import Integration, OperationResult, TaskInfo

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient

logger = logging.getLogger("trigger_celery")

T = TypeVar("T")


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
    ``lease_s``; every second while the store does not answer). A lease that expired while the
    store was away is taken back when it answers again, unless another execution took the run
    (``renew.lua``); :meth:`expires_at` tells how long writes may still be retried."""

    def __init__(self, store: Store):
        self.store = store
        self.lease_ms = int(store.settings.lease_s * 1000)
        self._held: dict[str, tuple[str, str, int]] = {}
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def hold(self, key: str, token: str, run_id: str = "", seq: int = 0) -> None:
        """Keep renewing ``key`` (held with ``token``; a run lease when ``run_id`` is given, at
        ``seq``) until :meth:`release`."""
        import os

        with self._lock:
            self._held[key] = (token, run_id, seq)
            self._expires[key] = time.monotonic() + self.lease_ms / 1000
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="tc-leases", daemon=True)
                self._thread.start()

    def release(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)
            self._expires.pop(key, None)

    def expires_at(self, key: str) -> float:
        """``time.monotonic()`` at which the lease ``key`` runs out, as last renewed (0: not
        held)."""
        with self._lock:
            return self._expires.get(key, 0.0)

    def _loop(self) -> None:
        failing = False
        while True:
            time.sleep(1.0 if failing else self.store.settings.lease_s / 3)
            with self._lock:
                held = list(self._held.items())
            failing = False
            for key, (token, run_id, seq) in held:
                started = time.monotonic()
                try:
                    kept = self.store.renew(key, token, self.lease_ms, run_id, seq)
                except Exception as exc:  # noqa: BLE001 - store away: again in a second
                    failing = True
                    logger.debug("lease renewal failed for %s: %r", key, exc)
                    continue
                if kept:
                    with self._lock:
                        if key in self._held:
                            self._expires[key] = started + self.lease_ms / 1000
                    if kept == 2:
                        logger.info("took back the lease of %s after a store outage", key)


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
        self.guard = ReplayGuard(self)
        self.settled = len(tasks)  # records from earlier executions; logs before them are old
        # This execution took over from one whose worker died (acquire.lua): the first task it
        # runs without a record may have been in flight then; it is marked rerun_after_loss.
        self.recovering = bool(run.get("recovered_by")) and \
            run.get("recovered_by") == run.get("executions")
        self.io = IO(self)

    # -- writes, fenced by the lease token ---------------------------------------------------

    def checkpoint(self, idem: str, rec: dict[str, Any], output_json: str | None = None) -> None:
        if output_json is None:
            text = dumps(rec)
        else:  # splice the already-encoded output in, instead of encoding it twice
            rec.pop("output", None)
            text = dumps(rec)[:-1] + ',"output":' + output_json + "}"
        run, tasks, _, lease = self.keys
        res = self.write(lambda: self.store.script("checkpoint", [run, tasks, lease],
                                                   [self.token, idem, text]))
        if res == 0:
            raise LeaseLost(self.run_id)
        if res == -1:
            raise RunCanceled(self.run_id)
        self.tasks[idem] = text
        self.recovering = False  # past the point where the lost execution could have been

    def suspend(self, wake_at: float | None, reason: str, idem: str = "",
                rec: dict[str, Any] | None = None, *, message: bool = True) -> None:
        """Raise :class:`Suspend`; the executor writes ``rec`` with the suspension.

        ``wake_at`` (epoch seconds) is when the run is due; ``None``: when a dispatched task wakes
        it (checked after ``dispatch_check_s``). ``message=False``: something else (a task's own
        retry message) is due at ``wake_at``; the run only checks on it a grace period later.
        """
        raise _Suspension(wake_at, reason, idem, rec, message)

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
        self.write(lambda: self.store.script("log", [run, logs],
                                             [self.settings.max_log_entries, dumps(entry)]))

    def write(self, call: Callable[[], T]) -> T:
        """``call()`` (a store write of this execution), retried in place with backoff while
        the store errs transiently (down, OOM, read-only) and this execution's lease lasts; the
        caller's data stays in memory meanwhile.

        Raises:
            StoreUnavailable: the store stayed away past the lease; the execution stops
                without finishing and the run resumes once the store answers.
        """
        return self.executor.write(self.keys[3], call, self.run_id)

    def send_task(self, integ: Integration, qname: str, idem: str, attempt: int,
                  rec: dict[str, Any]) -> None:
        self.executor.send_task(integ, qname, self.run_id, idem, attempt, rec)


class _Suspension(Suspend):
    def __init__(self, wake_at: float | None, reason: str, idem: str,
                 rec: dict[str, Any] | None, message: bool = True):
        super().__init__(wake_at, reason)
        self.idem = idem
        self.rec = rec
        self.message = message


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

    def write(self, lease_key: str, call: Callable[[], T], run_id: str = "") -> T:
        """``call()`` retried in place (50 ms doubling to 1 s) while the store errs transiently
        and the lease ``lease_key`` lasts (see :meth:`RunExecution.write`).

        Raises:
            StoreUnavailable: the lease ran out first.
        """
        delay, first, last = 0.05, time.monotonic(), None
        while True:
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - classified just below
                if not is_transient(exc):
                    raise
                last = exc
            now = time.monotonic()
            if now + delay >= self.leases.expires_at(lease_key):
                logger.warning("run %s: the store did not take a write for %.1f s (%r); the "
                               "execution stops and the run resumes once the store answers",
                               run_id, now - first, last)
                raise StoreUnavailable(run_id)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

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
        self.leases.hold(lease, token, run_id, seq)
        try:
            self._execute(run_id, token, _pairs(res[1]), _pairs(res[2]))
        except StoreUnavailable:
            return "store-unavailable"
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
        x.guard.strict = self.settings.strict_replay if job.strict_replay is None \
            else job.strict_replay
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
            unstable = x.guard.stop_error(s.rec)  # keys that change between executions
            if unstable is None:
                self._suspend(x, s)
                return
            self._finish(run_id, token, "FAILURE", None, error_record(unstable))
            return
        except (LeaseLost, RunCanceled, StoreUnavailable) as stop:
            logger.info("run %s: execution stopped (%s)", run_id, type(stop).__name__)
            return
        except Exception as caught:  # noqa: BLE001 - the run fails; the worker goes on
            err = x.guard.fatal or caught  # a strict replay mismatch the job swallowed wins
            rec = error_record(err)
            if not isinstance(err, TriggerCeleryError) or isinstance(err, ValidationError):
                rec["stack"] = "".join(traceback.format_exception(err))[-8000:]
            self._finish(run_id, token, "FAILURE", None, rec)
            return
        if x.guard.fatal is not None:
            self._finish(run_id, token, "FAILURE", None, error_record(x.guard.fatal))
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
            due = now + self.settings.dispatch_check_s
        else:
            due = s.wake_at + grace if in_window or not s.message else s.wake_at
        run, tasks, _, lease = x.keys
        rec_json = dumps(s.rec) if s.rec is not None else ""
        res = x.write(lambda: self.store.script(
            "suspend", [run, tasks, lease, self.store.schedule_key],
            [x.token, x.run_id, "" if s.wake_at is None else s.wake_at, s.reason, now, due,
             s.idem, rec_json, now + grace],
        ))
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
        self.write(lease, lambda: self.store.script(
            "finish", [run, tasks, logs, lease, self.store.schedule_key],
            [token, run_id, status, output or "", dumps(error) if error else "", time.time(),
             self.settings.run_retention_s],
        ), run_id)

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
            if _ratelimit.gate(self, integ, qname, run_id, idem, attempt, rec, token, celery_task):
                return "rate-limited"  # sent again at its slot; attempts unchanged
            return self._attempt(integ, qname, run_id, idem, attempt, rec, token, celery_task)
        except StoreUnavailable:
            return "store-unavailable"  # the run's dispatch check sends the attempt again
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
            _ratelimit.observe(self.store, integ, qname, f"{idem}:{attempt}", err)
            return self._attempt_failed(integ, qname, run_id, idem, rec, token, info, err,
                                        started, celery_task)
        _ratelimit.observe(self.store, integ, qname, f"{idem}:{attempt}", None)
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
        rec["dispatched_at"] = d.retry_at
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
        tlease = self.store.task_lease_key(run_id, idem)
        res = self.write(tlease, lambda: self.store.script(
            "task_settle", [run, tasks, tlease, self.store.schedule_key],
            [idem, token, rec_json, "1" if wake else "", run_id, time.time() + self.store.grace_s],
        ), run_id)
        if res[0] == "wake":
            self.send_run(run_id, int(res[1]), job_id=res[2], queue=res[3])

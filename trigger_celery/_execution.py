"""Executing runs and dispatched tasks: leases, suspension and resumption, dispatched attempts.

The :class:`Executor` takes a run's lease, builds a :class:`~trigger_celery._replay.RunExecution`
(the replay and the task state machine behind ``io``), runs the job, and writes what it ended
with: a suspension, a success or a failure. It also runs each attempt of a dispatched task.

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

from celery.exceptions import Reject
from kombu.exceptions import ChannelError as AMQPChannelError
from kombu.exceptions import ConnectionError as AMQPConnectionError
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from trigger_celery import _metrics, _ratelimit
from trigger_celery._concurrency import adopt_key, release_slot
from trigger_celery._errors import (
    LeaseLost,
    RunCanceled,
    StoreUnavailable,
    TriggerCeleryError,
    UnknownJobError,
    ValidationError,
)
from trigger_celery._hold import attempt_continues, attempt_settled
from trigger_celery._keys import celery_task_id
from trigger_celery._logging import run_finished
from trigger_celery._policy import decide, error_record, record_attempt_failure
from trigger_celery._replay import RunExecution, Suspension, encode_output
from trigger_celery._states import (
    CANCELED,
    COMPLETED,
    FAILURE,
    RUNNING,
    SUCCESS,
    ErrorRecord,
    TaskRecord,
)
from trigger_celery._store import Store, dumps, is_transient
from trigger_celery._time import engine_clock
from trigger_celery.integration import Integration, OperationResult, TaskInfo

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient

logger = logging.getLogger("trigger_celery")

T = TypeVar("T")


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


#: An inline task whose callback runs longer than this (seconds) is written to its run's hash
#: (field ``running_task``) by the lease thread, so ``runs show`` shows it while it runs.
RUNNING_TASK_AFTER_S = 0.5

#: What a publish raises when the broker does not take the message: kombu's errors (Celery
#: re-raises a transport's recoverable ones as ``OperationalError``), the transport's others
#: (amqp's connection and channel errors, redis-py's) and socket errors. Anything else (a bug)
#: still raises.
BROKER_ERRORS: tuple[type[Exception], ...] = (KombuError, AMQPConnectionError,
                                              AMQPChannelError, RedisError, OSError)

#: What sends a message the broker did not take (:meth:`Executor.publish`, for its log line):
#: a run's schedule entry, stored with the write that made the run due, is the poller's to send;
#: a dispatched task's record is the run's check of the task's (``_check_dispatched``,
#: ``dispatch_check_s`` after the send).
POLLER_SENDS = "a worker's poller sends it when its schedule entry is due"
TASK_CHECK_SENDS = "the run's check of the task sends it again"


def _task_label(run_id: str, rec: TaskRecord, attempt: int) -> str:
    return f"run {run_id}, task {rec.get('key')!r} attempt {attempt}"


def _time_limited(celery_task: Any) -> bool:
    """Whether Celery limits the time of this task (``time_limit``/``soft_time_limit`` on the
    task, its message or the app): a run continued in place inside it would be cut short."""
    conf = celery_task.app.conf
    limits = getattr(celery_task.request, "timelimit", None) or ()
    return any(limits) or any((celery_task.time_limit, celery_task.soft_time_limit,
                               conf.task_time_limit, conf.task_soft_time_limit))


class LeaseKeeper:
    """One thread per process renewing the leases of executions in progress (every third of
    ``lease_s``; every second while the store does not answer). A lease that expired while the
    store was away is taken back when it answers again, unless another execution took the run
    (``renew.lua``); :meth:`expires_at` tells how long writes may still be retried.

    The same thread publishes the inline task in flight of each execution once its callback has
    run :data:`RUNNING_TASK_AFTER_S`: the task's record (status ``RUNNING``, ``started_at`` in
    epoch seconds) as JSON in the run hash's ``running_task`` field. Fast tasks cost no write.
    """

    def __init__(self, store: Store):
        self.store = store
        self.lease_ms = int(store.settings.lease_s * 1000)
        #: run hash key -> stack of (task record, started epoch s) of inline callbacks running
        self.running: dict[str, list[tuple[dict[str, Any], float]]] = {}
        self._published: dict[str, tuple[str, int]] = {}
        self._held: dict[str, tuple[str, str, int, tuple[str, str, int] | None]] = {}
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def hold(self, key: str, token: str, run_id: str = "", seq: int = 0, *,
             task: tuple[str, str, int] | None = None) -> None:
        """Renew lease ``key`` (held with ``token``; a run's lease names ``run_id`` and the
        execution's ``seq``, a task attempt's lease its run id, idempotency key and attempt
        number as ``task``) until :meth:`release`."""
        import os

        with self._lock:
            self._held[key] = (token, run_id, seq, task)
            self._expires[key] = time.monotonic() + self.lease_ms / 1000
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="tc-leases", daemon=True)
                self._thread.start()

    def release(self, key: str, token: str | None = None) -> None:
        """Stop renewing lease ``key``; with ``token``, only while that token holds it (in a
        threads or gevent pool another execution of this process may have taken the same
        lease since, e.g. a run continued in place just after it suspended)."""
        with self._lock:
            held = self._held.get(key)
            if held is None or (token is not None and held[0] != token):
                return
            del self._held[key]
            self._expires.pop(key, None)

    def expires_at(self, key: str) -> float:
        """``time.monotonic()`` at which lease ``key`` runs out, as last renewed (0: not held)."""
        with self._lock:
            return self._expires.get(key, 0.0)

    def _loop(self) -> None:
        every = self.store.settings.lease_s / 3
        next_renewal = time.monotonic() + every
        while True:
            time.sleep(min(RUNNING_TASK_AFTER_S, every))
            self._publish_running()
            if time.monotonic() < next_renewal:
                continue
            failing = self._renew_all()
            next_renewal = time.monotonic() + (min(1.0, every) if failing else every)

    def _renew_all(self) -> bool:
        """Renew (or take back) every lease held; True when the store did not answer."""
        with self._lock:
            held = list(self._held.items())
        failing = False
        for key, (token, run_id, seq, task) in held:
            started = time.monotonic()
            try:
                kept = self.store.renew(key, token, self.lease_ms, run_id, seq, task=task)
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
        return failing

    def _publish_running(self) -> None:
        for gone in set(self._published) - set(self.running):
            self._published.pop(gone, None)
        if not self.running:
            return
        try:
            now = self.store.now()
        except Exception:  # noqa: BLE001 - the test clock's store away: next round
            return
        for run_key, stack in list(self.running.items()):
            try:
                rec, started = stack[-1]
            except IndexError:
                continue
            mark = (str(rec.get("idem")), int(rec.get("attempts", 0)))
            if now - started < RUNNING_TASK_AFTER_S or self._published.get(run_key) == mark:
                continue
            try:
                self.store.redis.hset(run_key, "running_task",
                                      dumps({**rec, "started_at": started}))
                self._published[run_key] = mark
            except Exception:  # noqa: BLE001 - only a display hint; the next round tries again
                logger.debug("could not publish the running task of %s", run_key, exc_info=True)


def task_reprs(run_id: str, attempt: int, rec: TaskRecord) -> dict[str, str]:
    """What Flower shows of a dispatched task's attempt instead of its ids: ``argsrepr``
    ``('Send hi to #general')`` (display name, else task name) and ``kwargsrepr``
    ``{Channel=#general} run=run_… key='send' attempt=2`` (display properties)."""
    shown = ", ".join(f"{p.get('label')}={p.get('text')}" for p in rec.get("properties", []))
    return {"argsrepr": f"({rec.get('display') or rec.get('name')!r})",
            "kwargsrepr": f"{{{shown}}} run={run_id} key={rec.get('key')!r} attempt={attempt}"}


class Executor:
    """Runs executions and dispatched task attempts for one :class:`TriggerClient`."""

    def __init__(self, client: TriggerClient):
        self.client = client
        self.store = client.store
        self.settings = client.settings
        self.leases = LeaseKeeper(self.store)
        #: What :func:`~trigger_celery._time.utc_now` reads in executions: the engine clock
        #: under ``test_clock``, else ``None`` (the real clock, nothing set).
        self.clock = self.store.now if self.settings.test_clock else None
        #: Called as ``hook(execution, suspend)`` before a suspension is written; for tests and
        #: instrumentation (a hook that blocks holds the run's suspension open).
        self.before_suspend: list[Any] = []

    def write(self, lease_key: str, call: Callable[[], T], run_id: str = "") -> T:
        """``call()`` (a store write of an execution or attempt holding ``lease_key``), retried
        in place (50 ms doubling to 1 s) while the store errs transiently (down, OOM, LOADING,
        read-only) and the lease lasts as last renewed; the caller's data stays in memory.

        Raises:
            StoreUnavailable: the lease ran out first; the execution stops without finishing
                and the run resumes once the store answers.
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

    def publish(self, send: Callable[[], object], what: str, then: str) -> bool:
        """Publish a message whose record the store already holds (``send()``: a
        :meth:`send_run` or :meth:`send_task` call). A broker that does not take it (down,
        refusing, timing out after kombu's publish retries: :data:`BROKER_ERRORS`) is logged in
        one warning, not raised: the stored record has its own way to the message (``then``,
        for the log: the run's check of a dispatched task, the poller's schedule entry of a
        run), so a broker outage never fails a run, nor an enqueue or a settle that already
        took effect. Returns whether the message went out."""
        try:
            send()
        except BROKER_ERRORS as exc:  # the stored record's safety net sends it
            logger.warning("%s: could not send its message (%r); %s", what, exc, then)
            return False
        return True

    def publish_run(self, run_id: str, seq: int, *, job_id: str = "", queue: str = "",
                    eta_s: float | None = None) -> bool:
        """:meth:`send_run` through :meth:`publish`, for a run whose schedule entry is stored
        (the poller sends the message from it). Returns whether the message went out."""
        return self.publish(lambda: self.send_run(run_id, seq, job_id=job_id, queue=queue,
                                                  eta_s=eta_s), f"run {run_id}", POLLER_SENDS)

    def publish_task(self, integ: Integration, qname: str, run_id: str, idem: str,
                     attempt: int, rec: TaskRecord, *, eta_s: float | None = None) -> bool:
        """:meth:`send_task` through :meth:`publish`, for a dispatched task whose record is
        stored (the run's check of the task sends it again). Returns whether it went out."""
        return self.publish(lambda: self.send_task(integ, qname, run_id, idem, attempt, rec,
                                                   eta_s=eta_s),
                            _task_label(run_id, rec, attempt), TASK_CHECK_SENDS)

    def send_run(self, run_id: str, seq: int, *, job_id: str = "", queue: str = "",
                 eta_s: float | None = None) -> None:
        """Publish the run's execution message to the run's own runs queue (the one of the
        client that created it; ``eta_s``: epoch seconds, within the ETA window). Flower shows
        the run id and the job id."""
        opts: dict[str, Any] = {}
        if eta_s is not None and (countdown := eta_s - self.store.now()) > 0:
            opts["countdown"] = countdown
        self.client.run_celery_task.apply_async(
            args=[run_id, seq], queue=queue or self.settings.runs_queue,
            argsrepr=f"({run_id!r}, seq={seq})", kwargsrepr=f"{{job: {job_id or '?'}}}", **opts,
        )

    def send_task(self, integ: Integration, qname: str, run_id: str, idem: str, attempt: int,
                  rec: TaskRecord, *, eta_s: float | None = None) -> None:
        """Publish a dispatched task's attempt. The message carries ids only: params live in the
        run's task record, credentials on the worker; Flower shows the display properties."""
        task = self.client.operation_celery_task(integ, qname)
        opts: dict[str, Any] = {}
        if eta_s is not None and (countdown := eta_s - self.store.now()) > 0:
            opts["countdown"] = countdown
        task.apply_async(
            kwargs={"run_id": run_id, "idem": idem, "attempt": attempt,
                    "connection": integ.connection_key},
            task_id=celery_task_id(idem, attempt), queue=integ.queue,
            **task_reprs(run_id, attempt, rec), **opts,
        )

    # -- run executions ----------------------------------------------------------------------

    def execute(self, run_id: str, seq: int) -> str:
        """Execute a run if this message is current and no one else holds it.

        Returns what happened: ``ok`` (ran), ``missing``, ``finished``, ``stale``, ``busy``.
        Never raises for a run's own failures; they are recorded on the run.
        """
        token = uuid.uuid4().hex
        lease = self.store.run_keys(run_id)[3]
        got = self.store.acquire(run_id, token, seq, int(self.settings.lease_s * 1000))
        if got.outcome == "ok" and adopt_key(self, run_id, token, got.run):
            got = self.store.acquire(run_id, token, seq, int(self.settings.lease_s * 1000))
        if got.outcome != "ok":
            logger.debug("run %s seq %s: %s, nothing to do", run_id, seq, got.outcome)
            return got.outcome
        self.leases.hold(lease, token, run_id, seq)
        try:
            with engine_clock(self.clock):
                self._execute(run_id, token, got.run, got.tasks)
        except StoreUnavailable:
            return "store-unavailable"
        finally:
            self.leases.release(lease, token)
            release_slot(self, run_id, token, got.run)
        return "ok"

    def _execute(self, run_id: str, token: str, run: dict[str, str], tasks: dict[str, Any]) -> None:
        _metrics.execution_started(run_id, run)
        job = self.client.jobs.get(run["job_id"])
        if job is None:
            self._finish(run_id, token, FAILURE, None, error_record(UnknownJobError(
                f"this worker has no job {run['job_id']!r}")), run)
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
        except Suspension as s:
            unstable = x.guard.stop_error(s.rec)  # keys that change between executions
            if unstable is None:
                self._suspend(x, s)
                return
            self._finish(run_id, token, FAILURE, None, error_record(unstable), run)
            return
        except (LeaseLost, RunCanceled, StoreUnavailable) as stop:
            logger.info("run %s: execution stopped (%s)", run_id, type(stop).__name__)
            if isinstance(stop, RunCanceled):
                run_finished(run_id, job.id, run.get("job_version"), CANCELED, None,
                             executions=int(run.get("executions", 0)))
            _metrics.execution_stopped(run_id, stop)
            return
        except Exception as caught:  # noqa: BLE001 - the run fails; the worker goes on
            err = x.guard.fatal or caught  # a strict replay mismatch the job swallowed wins
            rec = error_record(err)
            if not isinstance(err, TriggerCeleryError) or isinstance(err, ValidationError):
                rec["stack"] = "".join(traceback.format_exception(err))[-8000:]
            self._finish(run_id, token, FAILURE, None, rec, run)
            return
        if x.guard.fatal is not None:
            self._finish(run_id, token, FAILURE, None, error_record(x.guard.fatal), run)
            return
        self._finish(run_id, token, SUCCESS, text, None, run)

    def _suspend(self, x: RunExecution, s: Suspension) -> None:
        for hook in self.before_suspend:
            hook(x, s)
        now = self.store.now()
        grace = self.store.grace_s
        in_window = (s.message and s.wake_at is not None
                     and s.wake_at - now <= self.settings.effective_eta_window_s)
        if s.wake_at is None:
            due = s.check_at if s.check_at is not None else now + self.settings.dispatch_check_s
        else:
            due = s.wake_at + grace if in_window or not s.message else s.wake_at
            if s.check_at is not None:  # an io.parallel batch: also tasks to check on
                due = min(due, s.check_at)
        rec_json = dumps(s.rec) if s.rec is not None else ""
        outcome, seq = x.write(lambda: self.store.suspend(
            x.run_id, x.token, wake_at=s.wake_at, reason=s.reason, due_s=due, idem=s.idem,
            record_json=rec_json, wait_for=s.wait_for, keep_pending=s.keep_pending,
            waits_on=s.waits_on))
        # the task's first message, its record stored with the suspension; on 'lost' too: a
        # suspension retried after a lost reply finds its own first write done (the lease
        # gone), and after a real takeover the attempt still runs at most once (task_start.lua:
        # no record, or the new execution's with its own message). A broker error is logged:
        # the run's check at check_at sends it again.
        if s.send is not None and outcome != "canceled":
            s.send()
        if outcome == "now" or (outcome == "waiting" and in_window):
            self.publish_run(x.run_id, seq, job_id=x.run.get("job_id", ""),
                             queue=x.run.get("queue", ""),
                             eta_s=s.wake_at if outcome == "waiting" else None)

    def _finish(self, run_id: str, token: str, status: str, output: str | None,
                error: ErrorRecord | None, fields: dict[str, str]) -> None:
        """Record the run's end (``fields``: its hash as loaded) and log its outcome."""
        _metrics.run_finished(run_id, status)
        lease = self.store.run_keys(run_id)[3]
        now = self.store.now()
        done = self.write(lease, lambda: self.store.finish(run_id, token, status, output or "",
                                                          dumps(error) if error else ""), run_id)
        if done:
            created = fields.get("created_at")
            run_finished(run_id, fields.get("job_id", "?"), fields.get("job_version"), status,
                         error, executions=int(fields.get("executions", 0)),
                         created_at=float(created) if created else None, now=now)

    # -- dispatched task attempts ------------------------------------------------------------

    def execute_operation(self, integ: Integration, qname: str, run_id: str, idem: str,
                          attempt: int, celery_task: Any = None) -> str:
        """Run one attempt of a dispatched task; store its outcome and wake its run.

        Returns ``ok``, or why nothing ran: ``missing``, ``finished`` (the run was canceled or
        ended: nothing more reaches the provider), ``done``, ``stale``, ``busy``.
        """
        token = uuid.uuid4().hex
        tlease = self.store.task_lease_key(run_id, idem)
        started = self.store.task_start(run_id, idem, attempt, token,
                                        int(self.settings.lease_s * 1000))
        if started.outcome != "ok":
            return started.outcome
        rec: TaskRecord = json.loads(started.record)
        if started.starts > 1:  # this attempt started before and its worker died: it may repeat
            rec["rerun_after_loss"] = True
        self.leases.hold(tlease, token, task=(run_id, idem, attempt))
        try:
            with engine_clock(self.clock):
                if _ratelimit.gate(self, integ, qname, run_id, idem, attempt, rec, token,
                                   celery_task):
                    return "rate-limited"  # sent again at its slot; attempts unchanged
                return self._attempt(integ, qname, run_id, idem, attempt, rec, token,
                                     celery_task)
        except StoreUnavailable:
            return "store-unavailable"  # the run's dispatch check sends the attempt again
        finally:
            self.leases.release(tlease, token)

    def _attempt(self, integ: Integration, qname: str, run_id: str, idem: str, attempt: int,
                 rec: TaskRecord, token: str, celery_task: Any) -> str:
        op = integ.operations()[qname]
        rec["attempts"], rec["status"] = attempt, RUNNING
        info = TaskInfo(run_id, rec["key"], idem, rec["name"], attempt, rec.get("params"),
                        rec.get("properties", []))
        started = self.store.now()
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
        now = self.store.now()
        rec["status"], rec["completed_at"] = COMPLETED, now
        rec["duration_ms"] = round((now - started) * 1000, 3)
        rec.pop("call", None)
        rec.pop("error", None)
        rec.pop("retry_at", None)
        _metrics.task_attempt(integ, None)
        self._settle(run_id, idem, token, dumps(rec)[:-1] + ',"output":' + text + "}", True,
                     completed=True, settled=True, celery_task=celery_task)
        return "ok"

    def _attempt_failed(self, integ: Integration, qname: str, run_id: str, idem: str,
                        rec: TaskRecord, token: str, info: TaskInfo, err: Exception,
                        started: float, celery_task: Any) -> str:
        now = self.store.now()
        d = decide(err, record=rec, task=info, io=None, retry=integ.retry,
                   hooks=[integ.on_error], settings=self.settings, now=now)
        _metrics.task_attempt(integ, d)
        job_id = self.store.redis.hget(self.store.run_key(run_id), "job_id") or "?"
        record_attempt_failure(rec, d, started, now, run_id=run_id, job_id=str(job_id))
        if d.retry_at is None:
            rec.pop("call", None)
            self._settle(run_id, idem, token, dumps(rec), True, settled=True,
                         celery_task=celery_task)
            return "failed"
        in_window = d.retry_at - now <= self.settings.effective_eta_window_s
        # the next attempt's message is due at retry_at: the run checks on it from then on
        rec["dispatched_at"] = rec["queued_at"] = d.retry_at
        rec["resends"] = 0
        if not in_window:
            rec["resend_by_run"] = True  # the run wakes at retry_at and dispatches it
        # wake the run: it records when it is due next (retry_at) instead of polling the task
        self._settle(run_id, idem, token, dumps(rec), True)
        if in_window:
            self._retry_message(integ, qname, run_id, idem, rec, d.retry_at, celery_task)
        return "retry"

    def _retry_message(self, integ: Integration, qname: str, run_id: str, idem: str,
                       rec: TaskRecord, retry_at: float, celery_task: Any) -> None:
        """The next attempt as Celery's own ``retry(eta=...)`` (Flower shows it as a retry).
        Its record is stored (waiting at ``retry_at``): a broker that does not take the message
        is logged, as :meth:`publish` does, and the run's check of the task sends it again.

        Raises:
            celery.exceptions.Retry: inside a worker, once the retry's message is out.
        """
        attempt = int(rec["attempts"]) + 1
        if celery_task is None:
            self.publish_task(integ, qname, run_id, idem, attempt, rec, eta_s=retry_at)
            return

        def retry() -> None:
            try:
                raise celery_task.retry(
                    eta=datetime.fromtimestamp(retry_at, UTC), max_retries=None,
                    kwargs={"run_id": run_id, "idem": idem, "attempt": attempt,
                            "connection": integ.connection_key},
                    **task_reprs(run_id, attempt, rec),  # else Flower shows the raw ids
                )
            except Reject as rejected:  # Task.retry wraps a failed publish: unwrap it
                if isinstance(rejected.reason, BROKER_ERRORS):
                    raise rejected.reason from rejected
                raise

        self.publish(retry, _task_label(run_id, rec, attempt), TASK_CHECK_SENDS)

    def _settle(self, run_id: str, idem: str, token: str, rec_json: str, wake: bool, *,
                completed: bool = False, settled: bool = False,
                celery_task: Any = None) -> None:
        """Store a dispatched attempt's outcome; when that wakes its run, continue the run in
        this process (inside a worker, ``celery_task``, and the task ``settled`` for good), else
        send the run's message."""
        tlease = self.store.task_lease_key(run_id, idem)
        attempt_settled()  # free for the run's next task once this write is in (_hold.py)
        done = self.write(tlease, lambda: self.store.task_settle(
            run_id, idem, token, rec_json, wake=wake, completed=completed, settled=settled),
            run_id)
        if done.outcome != "wake":
            return
        if celery_task is not None and settled and not _time_limited(celery_task):
            self.leases.release(tlease, token)  # settled: its lease is gone, not to be renewed
            if self._continue_in_place(run_id, done.seq, done.job_id, done.queue):
                return
        self.publish_run(run_id, done.seq, job_id=done.job_id, queue=done.queue)

    def continues_here(self, run_queue: str = "", task_queue: str | None = None) -> bool:
        """Whether a dispatched task that settles on this worker continues its run (of runs
        queue ``run_queue``, default the client's) in place: ``continue_in_place`` is on and
        this worker consumes the run's queue and (when given) the task's ``task_queue``."""
        consumed = self.client.celery.amqp.queues.consume_from
        return (self.settings.continue_in_place
                and (run_queue or self.settings.runs_queue) in consumed
                and (task_queue is None or task_queue in consumed))

    def continues_after(self, integ: Integration, qname: str, run_queue: str = "") -> bool:
        """Whether the worker that settles a task of ``integ``'s operation ``qname`` is to
        continue its run (of runs queue ``run_queue``) in place, as far as is known before the
        task runs: :meth:`continues_here` for both queues, and no Celery time limit on that
        task or the app (``_settle`` does not continue a run inside a time-limited task)."""
        return (self.continues_here(run_queue, integ.queue)
                and not _time_limited(self.client.operation_celery_task(integ, qname)))

    def _continue_in_place(self, run_id: str, seq: int, job_id: str, queue: str) -> bool:
        """Continue in place: the run a settled task just woke executes in this process, as
        the run's message would have had it executed on any worker of its runs queue, saving
        that message (its publish, delivery and events). Only with ``continue_in_place``, when
        this worker has the run's job and consumes its runs queue. Returns False when the run
        is to be sent its message instead (not here, or the store erred before it started)."""
        if job_id not in self.client.jobs or not self.continues_here(queue):
            return False
        attempt_continues()
        try:
            self.execute(run_id, seq)
        except Exception:  # noqa: BLE001 - the message then; its execution finds what is left
            logger.warning("run %s: could not continue in place; sending its message", run_id,
                           exc_info=True)
            return False
        return True

"""The replay engine: one execution of a run and the task state machine behind ``io``.

A run's function runs again from the top each time the run resumes. Each task call enters the
state machine with its key; its idempotency key (``_keys.idempotency_key``) finds the record an
earlier execution wrote:

- ``COMPLETED`` / ``ERRORED`` (``TASK_READY_STATES``): return the stored output or raise
  :class:`~trigger_celery._errors.TaskFailedError` again, without running anything;
- ``WAITING`` with a ``retry_at`` still ahead: suspend again;
- none, or due: run the attempt (inline) or send it to the integration's queue (dispatched),
  checkpoint the record (fenced by the lease token), then return, retry or fail.

:class:`RunExecution` is what :class:`~trigger_celery._io.IO` reaches through its
:class:`~trigger_celery._io.Runtime` protocol; the :class:`~trigger_celery._execution.Executor`
builds one per execution and writes its suspension or its end.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

from trigger_celery import _metrics
from trigger_celery._determinism import ReplayGuard, params_hash
from trigger_celery._errors import (
    DuplicateTaskKeyError,
    LeaseLost,
    RunCanceled,
    Suspend,
    TaskFailedError,
    TaskOutputError,
    ValidationError,
)
from trigger_celery._hold import HOLD_AFTER_TASKS, may_hold, send_and_hold
from trigger_celery._io import IO, call_with
from trigger_celery._keys import idempotency_key
from trigger_celery._parallel import run_parallel
from trigger_celery._policy import decide, record_attempt_failure, resolve
from trigger_celery._retry import RetryOptions, resend_backoff_s
from trigger_celery._states import (
    COMPLETED,
    PENDING,
    RUNNING,
    TASK_READY_STATES,
    WAITING,
    TaskRecord,
    keep_descendants,
)
from trigger_celery._store import dumps
from trigger_celery._time import epoch_s
from trigger_celery.integration import Integration, Operation, OperationResult, TaskInfo

T = TypeVar("T")

if TYPE_CHECKING:
    from trigger_celery._execution import Executor

def redact(params: Any, paths: list[str] | tuple[str, ...] | None) -> Any:
    """A copy of ``params`` with each dotted path's value replaced by ``"[redacted]"``."""
    if not paths or not isinstance(params, dict):
        return params
    out = json.loads(dumps(params))
    for path in paths:
        node = out
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and parts[-1] in node:
            node[parts[-1]] = "[redacted]"
    return out


# Task records are JSON we wrote ourselves: decode them without ``json.loads``' whitespace checks
# (a replay decodes one per completed task, on every execution of the run).
_decode_record = json.JSONDecoder().raw_decode


def encode_output(value: Any, what: str, limit: int) -> str:
    """JSON-encode a task or run output; raises :class:`TaskOutputError` naming ``what``."""
    try:
        text = dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TaskOutputError(f"{what}: output is not JSON-serializable: {exc}") from None
    if len(text.encode()) > limit:
        raise TaskOutputError(
            f"{what}: output is {len(text.encode())} bytes, over the {limit}-byte limit "
            "(max_output_bytes)"
        )
    return text


class Suspension(Suspend):
    """The :class:`Suspend` an execution raises: ``idem`` and ``rec`` (a task record to write
    with the suspension, or none), ``message`` (False: a task's own retry message is due at
    ``wake_at``, the run only checks on it a grace period later), ``check_at`` (epoch seconds:
    when to check on dispatched tasks), ``waits_on`` (the dispatched task it waits for, if
    any), ``wait_for`` (an ``io.parallel`` batch's dispatched tasks in flight: the run wakes
    once all completed), ``keep_pending`` (another task may settle and wake it meanwhile) and
    ``send`` (publishes the first message of the dispatched task ``rec`` once the suspension
    that writes its record is stored, so the run is WAITING before the task can settle)."""

    def __init__(self, wake_at: float | None, reason: str, idem: str,
                 rec: TaskRecord | None, message: bool = True, check_at: float | None = None,
                 *, waits_on: str = "", wait_for: tuple[str, ...] = (),
                 keep_pending: bool = False, send: Callable[[], object] | None = None):
        super().__init__(wake_at, reason)
        self.send = send
        self.idem = idem
        self.rec = rec
        self.message = message
        self.check_at = check_at
        self.waits_on = waits_on
        self.wait_for = wait_for
        self.keep_pending = keep_pending



class RunExecution:
    """One execution of one run: its lease, its snapshot of task records, its ``io``, and the
    task state machine ``io`` drives (it implements :class:`~trigger_celery._io.Runtime`).

    Parameters:
        executor: the worker's :class:`~trigger_celery._execution.Executor`.
        run_id: the run.
        token: the lease token this execution holds (every write is fenced by it).
        run: the run's hash as loaded when the lease was taken.
        tasks: the run's task records, idempotency key -> JSON (decoded on first use).
        integrations: the job's integrations by name (``io.<name>``).

    Every method that needs the run to stop raises a control-flow ``BaseException``:
    :class:`Suspension` (wait), :class:`~trigger_celery._errors.LeaseLost` or
    :class:`~trigger_celery._errors.RunCanceled`.
    """

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
        self._parents: list[str] = []  # the tasks being run, innermost last (display parent)
        # what each new task key is hashed under, innermost last: the running task's
        # idempotency key, or "<parallel idem>#<item index>" inside an io.parallel item
        self._scopes: list[str] = []
        self.batch_depth = 0  # > 0 inside io.parallel items (_parallel.py)
        self._items: list[str] = []  # the io.parallel item scopes we are in, innermost last
        self._item_replayed: Counter[str] = Counter()  # records replayed per enclosing item
        self._item_settled: Counter[str] | None = None  # records of earlier executions, per item
        self._created: set[str] = set()  # records this execution created
        self.reached = 0  # records reached so far (a settled task counts its descendants too)
        self.replayed = 0  # records of earlier executions reached (with their descendants)
        self.guard = ReplayGuard(self)
        self.settled = len(tasks)  # records from earlier executions; logs before them are old
        # This execution took over from one whose worker died (acquire.lua): the first task it
        # runs without a record may have been in flight then; it is marked rerun_after_loss.
        self.recovering = bool(run.get("recovered_by")) and \
            run.get("recovered_by") == run.get("executions")
        self.io = IO(self)

    # -- writes, fenced by the lease token ---------------------------------------------------

    def checkpoint(self, idem: str, rec: TaskRecord, output_json: str | None = None, *,
                   expect_attempts: int | None = None, held: bool = False) -> bool:
        """Store task record ``rec`` (with ``output_json`` spliced in, when given).

        ``expect_attempts``: store only while the stored record is unsettled at that many
        attempts; returns False (nothing stored) when a worker settled it meanwhile.
        ``held``: this execution holds for the dispatched task (``_hold.py``).

        Raises:
            LeaseLost: another execution took the run over; nothing was written.
            RunCanceled: the run was canceled; nothing was written.
        """
        if output_json is None:
            text = dumps(rec)
        else:  # splice the already-encoded output in, instead of encoding it twice
            rec.pop("output", None)
            text = dumps(rec)[:-1] + ',"output":' + output_json + "}"
        outcome = self.write(lambda: self.store.checkpoint(
            self.run_id, self.token, idem, text, expect_attempts=expect_attempts, held=held))
        if outcome == "lost":
            raise LeaseLost(self.run_id)
        if outcome == "canceled":
            raise RunCanceled(self.run_id)
        if outcome == "moved":
            return False
        if idem not in self.tasks:
            self._created.add(idem)
        self.tasks[idem] = text
        self.recovering = False  # past the point where the lost execution could have been
        return True

    def suspend(self, wake_at: float | None, reason: str, idem: str = "",
                rec: TaskRecord | None = None, *, message: bool = True,
                check_at: float | None = None, waits_on: str = "",
                wait_for: tuple[str, ...] = (), keep_pending: bool = False,
                send: Callable[[], object] | None = None) -> NoReturn:
        """Raise :class:`Suspend`; the executor writes ``rec`` with the suspension.

        ``wake_at`` (epoch seconds) is when the run is due; ``None``: when a dispatched task wakes
        it, checked at ``check_at`` (epoch seconds; default ``dispatch_check_s`` from now).
        ``message=False``: something else (a task's own retry message) is due at ``wake_at``;
        the run only checks on it a grace period later. ``waits_on``: the dispatched task
        whose settle wakes the run; ``wait_for``, ``keep_pending``, ``send`` (not inside an
        ``io.parallel`` item, which sends its task itself): see :class:`Suspension`.

        Inside an ``io.parallel`` item the suspension only stops that item: ``rec`` is written
        now, and the batch suspends the run once for all its items (``_parallel.py``).
        """
        if self.batch_depth and rec is not None:
            self.checkpoint(idem, rec)
            idem, rec = "", None
        raise Suspension(wake_at, reason, idem, rec, message, check_at, waits_on=waits_on,
                         wait_for=wait_for, keep_pending=keep_pending, send=send)

    def log(self, level: str, message: str, data: dict[str, Any]) -> None:
        """``io.logger``: store a log line unless an earlier execution did (replay): while
        records of earlier executions lie ahead, the run (or the ``io.parallel`` item the line
        is in) has been past this point before."""
        if self._items:
            item = self._items[-1]
            if self._item_replayed[item] < self._settled_in_items()[item]:
                return
        elif self.replayed < self.settled:
            return  # an earlier execution logged this line already
        entry = {"level": level, "message": str(message), "at": self.store.now()}
        if data:
            try:
                entry["data"] = json.loads(dumps(data))
            except (TypeError, ValueError, RecursionError):
                entry["data"] = {k: repr(v) for k, v in data.items()}
        self.write(lambda: self.store.log(self.run_id, dumps(entry)))

    def write(self, call: Callable[[], T]) -> T:
        """``call()`` (a store write of this execution), retried in place while the store errs
        transiently and this execution's lease lasts (:meth:`Executor.write`).

        Raises:
            StoreUnavailable: the store stayed away past the lease.
        """
        return self.executor.write(self.keys[3], call, self.run_id)

    def send_task(self, integ: Integration, qname: str, idem: str, attempt: int,
                  rec: TaskRecord) -> bool:
        """Publish attempt ``attempt`` (1-based) of dispatched task ``idem``, whose record is
        stored. Returns False when the broker did not take it (logged, not raised: the run's
        check of the task sends it again, see :meth:`Executor.publish_task`)."""
        return self.executor.publish_task(integ, qname, self.run_id, idem, attempt, rec)

    def send_event(self, name: str, payload: Any, *, id: str | None,
                   deliver_at: datetime | None) -> list[str]:
        """Send an event through the run's client; returns the started run ids."""
        handles = self.client.send_event(name, payload, id=id, deliver_at=deliver_at)
        return [h.id for h in handles]

    def _enter(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise ValidationError(f"a task key must be a non-empty string, got {key!r}")
        scope = self._scopes[-1] if self._scopes else None
        idem = idempotency_key(self.run_id, scope, key)
        if idem in self._seen:
            raise DuplicateTaskKeyError(
                f"task key {key!r} used twice under the same parent in one execution"
            )
        self._seen.add(idem)
        return idem

    def _record(self, idem: str) -> TaskRecord | None:
        raw = self.tasks.get(idem)
        if raw is None:
            self.reached += 1
            return None
        if isinstance(raw, dict):
            rec = cast("TaskRecord", raw)
        else:
            rec = _decode_record(raw)[0]
            self.tasks[idem] = rec
        # a record an earlier execution wrote: we are still replaying; a settled task's
        # descendants are not reached again (its output is replayed), so count them now
        n = 1 + int(rec.get("descendants", 0)) if rec["status"] in TASK_READY_STATES else 1
        self.replayed += n
        self.reached += n
        for item in self._items:
            self._item_replayed[item] += n
        return rec

    def _settled_in_items(self) -> Counter[str]:
        """Records of earlier executions per ``io.parallel`` item scope they lie in (at any
        depth), counted once per execution on the first log line inside an item."""
        if self._item_settled is None:
            counts: Counter[str] = Counter()
            for idem, raw in list(self.tasks.items()):
                if idem in self._created:
                    continue
                scope = self._decoded(idem, raw).get("item")
                while scope:
                    counts[scope] += 1
                    pidem = scope.rsplit("#", 1)[0]
                    parent = self.tasks.get(pidem)
                    scope = None if parent is None else self._decoded(pidem, parent).get("item")
            self._item_settled = counts
        return self._item_settled

    def _decoded(self, idem: str, raw: Any) -> TaskRecord:
        if isinstance(raw, dict):
            return cast("TaskRecord", raw)
        rec: TaskRecord = _decode_record(raw)[0]
        if idem in self.tasks:
            self.tasks[idem] = rec
        return rec

    def placed(self, rec: TaskRecord) -> TaskRecord:
        """Set a new record's ``parent`` (the task it runs in) and, inside an ``io.parallel``
        item, ``item`` (the item's scope)."""
        rec["parent"] = self._parents[-1] if self._parents else None
        if self._items:
            rec["item"] = self._items[-1]
        return rec

    def _replayed(self, key: str, rec: TaskRecord) -> Any:
        if rec["status"] == COMPLETED:
            return rec.get("output")
        raise TaskFailedError(key, rec.get("error") or {})

    # -- the task state machine (Runtime, as io sees it) -------------------------------------

    def run_inline(
        self,
        key: str,
        callback: Callable[..., Any],
        *,
        name: str | None = None,
        icon: str | None = None,
        params: Any = None,
        properties: list[dict[str, Any]] | None = None,
        retry: RetryOptions | None = None,
        delay_until: datetime | float | None = None,
        redact: list[str] | None = None,
        on_error: Callable[..., Any] | None = None,
        integration: Integration | None = None,
    ) -> Any:
        """``io.run_task``: replay a settled task, or run ``callback(task, io)`` now, record
        it, and retry or fail it by policy (see :meth:`IO.run_task` for the options;
        ``integration``: whose ``on_error`` applies after the task's own)."""
        idem = self._enter(key)
        rec = self._record(idem)
        phash = params_hash(_redact(params, redact) if redact else params)
        if rec is not None:
            self.guard.replayed(key, idem, rec, name or key, phash,
                                lambda: _redact(params, redact))
            if rec["status"] in TASK_READY_STATES:
                return self._replayed(key, rec)
        now = self.store.now()
        if rec is None:
            rec = {
                "key": key, "idem": idem, "parent": self._parents[-1] if self._parents else None,
                "kind": "inline", "name": name or key, "icon": icon, "status": PENDING,
                "attempts": 0, "params": _redact(params, redact), "properties": properties or [],
                "created_at": now,
            }
            self.placed(rec)
            if phash is not None:
                rec["params_hash"] = phash
            due = epoch_s(delay_until)
            if due is not None and due > now:
                rec["status"], rec["retry_at"], rec["wait"] = WAITING, due, "delay_until"
                self.suspend(due, f"delay_until of task {key!r}", idem, rec)
        elif rec.get("retry_at") and rec["retry_at"] > now:
            self.suspend(rec["retry_at"], f"retry of task {key!r}")
        rec["attempts"] += 1
        rec["status"] = RUNNING
        rec.pop("retry_at", None)
        if self.recovering:  # a lost execution may have run this callback already
            rec["rerun_after_loss"] = True
        info = TaskInfo(self.run_id, key, idem, rec["name"], rec["attempts"], params,
                        rec["properties"])
        started = self.store.now()
        reached = self.reached
        self._parents.append(idem)
        self._scopes.append(idem)
        running = self.executor.leases.running.setdefault(self.keys[0], [])
        running.append((cast("dict[str, Any]", rec), started))  # shown if it runs long
        try:
            output = resolve(call_with(callback, info, self.io))
            if isinstance(output, OperationResult):
                rec["properties"] = [*rec["properties"], *output.properties]
                output = output.output
            text = encode_output(output, f"task {key!r}", self.settings.max_output_bytes)
        except (Suspend, LeaseLost, RunCanceled):
            raise
        except Exception as err:  # noqa: BLE001 - recorded, then retried or failed
            keep_descendants(rec, self.reached - reached)
            self._fail(key, idem, rec, err, info, retry, [on_error, integration and
                       integration.on_error], started, integration)
        finally:
            self._parents.pop()
            self._scopes.pop()
            running.pop()
            if not running:
                self.executor.leases.running.pop(self.keys[0], None)
        now = self.store.now()
        rec["status"], rec["completed_at"] = COMPLETED, now
        rec["duration_ms"] = round((now - started) * 1000, 3)
        keep_descendants(rec, self.reached - reached)
        rec.pop("error", None)
        _metrics.task_attempt(integration, None)
        self.checkpoint(idem, rec, text)
        return json.loads(text)

    def _fail(self, key: str, idem: str, rec: TaskRecord, err: Exception, info: TaskInfo,
              retry: RetryOptions | None, hooks: list[Any], started: float,
              integration: Integration | None = None) -> None:
        now = self.store.now()
        d = decide(err, record=rec, task=info, io=self.io, retry=retry, hooks=hooks,
                   settings=self.settings, now=now)
        _metrics.task_attempt(integration, d)
        erec = record_attempt_failure(rec, d, started, now, run_id=self.run_id,
                                      job_id=self.run.get("job_id", ""))
        if d.retry_at is None:
            self.checkpoint(idem, rec)
            raise TaskFailedError(key, erec) from d.error
        self.suspend(d.retry_at, f"retry of task {key!r}", idem, rec)

    def wait(self, key: str, seconds: float) -> None:
        """``io.wait``: suspend until ``seconds`` after the wait was first reached."""
        idem = self._enter(key)
        rec = self._record(idem)
        name, params = f"wait {seconds:g}s", {"seconds": seconds}
        phash = params_hash(params)
        if rec is not None:
            self.guard.replayed(key, idem, rec, name, phash, lambda: params)
            if rec["status"] == COMPLETED:
                return
        now = self.store.now()
        if rec is None:
            rec = {"key": key, "idem": idem, "parent": self._parents[-1] if self._parents else None,
                   "kind": "wait", "name": name, "icon": "clock", "params_hash": phash,
                   "status": WAITING, "attempts": 0, "params": params,
                   "properties": [], "created_at": now, "retry_at": now + seconds}
            self.placed(rec)
            _metrics.wait_started(seconds)
            self.suspend(now + seconds, f"wait {key!r}", idem, rec)
        if rec["retry_at"] > now:
            self.suspend(rec["retry_at"], f"wait {key!r}")
        rec["status"], rec["attempts"], rec["completed_at"] = COMPLETED, 1, now
        rec["output"] = None
        rec.pop("retry_at", None)
        self.checkpoint(idem, rec)

    def parallel(self, key: str, items: Sequence[Any], callback: Callable[..., Any], *,
                 name: str | None = None,
                 properties: list[dict[str, Any]] | None = None) -> list[Any]:
        """``io.parallel``: task ``key`` running ``callback(item, index)`` for every item, each
        item's tasks namespaced under it; see :func:`trigger_celery._parallel.run_parallel`."""
        return run_parallel(self, key, items, callback, name=name, properties=properties)

    def dispatch(self, integ: Integration, qname: str, op: Operation[Any], key: str,
                 params: dict[str, Any]) -> Any:
        """An integration call: a Celery task on the integration's queue; the run waits."""
        full = f"{integ.id}.{qname}"
        model = op.validate(full, params)  # bad params: ValidationError now, before any HTTP
        idem = self._enter(key)
        rec = self._record(idem)
        # the call as given (its redacted form when some params are secret: no secret is hashed)
        phash = params_hash(_redact(model.model_dump(mode="json", exclude_unset=True), op.redact)
                            if op.redact else params)
        if rec is not None:
            self.guard.replayed(key, idem, rec, full, phash, lambda: _redact(
                model.model_dump(mode="json", exclude_unset=True), op.redact))
            if rec["status"] in TASK_READY_STATES:
                return self._replayed(key, rec)
        now = self.store.now()
        reason = f"waiting for {full} {key!r}"
        if rec is None:
            call = model.model_dump(mode="json", exclude_unset=True)
            rec = {
                "key": key, "idem": idem, "parent": self._parents[-1] if self._parents else None,
                "kind": "dispatched", "name": full, "display": op.display_name(model),
                "icon": integ.icon, "status": PENDING, "attempts": 0, "params_hash": phash,
                "params": _redact(call, op.redact), "call": call,
                "properties": op.display_properties(model), "connection": integ.connection_key,
                "queue": integ.queue, "created_at": now, "dispatched_at": now, "queued_at": now,
            }
            self.placed(rec)
            check_at = now + self.settings.dispatch_check_s

            def send() -> bool:  # attempt 1's message
                return self.send_task(integ, qname, idem, 1, rec)

            if self.batch_depth:  # io.parallel: the other items go on meanwhile, no hold
                self.checkpoint(idem, rec)
                send()
            elif may_hold(self, short=self.reached <= HOLD_AFTER_TASKS and
                          self.executor.continues_after(integ, qname, self.run.get("queue", ""))):
                held = send_and_hold(  # its result in place, if it comes soon (_hold.py)
                    self, idem, lambda: self.checkpoint(idem, rec, held=True), send)
                if held is not None:
                    self.tasks[idem] = held
                    return self._replayed(key, held)
            else:
                # no hold: the record goes with the suspension (one write, and the run is
                # WAITING before the task can settle), the task's message once it is stored
                self.suspend(None, reason, idem, rec, check_at=check_at, waits_on=idem,
                             send=send)
            self.suspend(None, reason, check_at=check_at, waits_on=idem)
        retry_at = rec.get("retry_at")
        if rec["status"] == WAITING and retry_at:
            if retry_at > now:
                # the run is due at retry_at: it sends the attempt then if the retry is beyond
                # the ETA window (resend_by_run), else it checks the task's own retry message
                why = f"the {rec['rate_limit']}" if rec.get("rate_limited_until") else "retry"
                self.suspend(retry_at, f"{why} of {full} {key!r}",
                             message=bool(rec.get("resend_by_run")))
            if rec.get("resend_by_run"):
                self._redispatch(integ, qname, idem, rec, now, reason, lost=False)
                self.suspend(None, reason, check_at=now + self.settings.dispatch_check_s,
                             waits_on=idem)
        self._check_dispatched(integ, qname, idem, rec, now, reason)

    def _check_dispatched(self, integ: Integration, qname: str, idem: str, rec: TaskRecord,
                          now: float, reason: str) -> NoReturn:
        """Check on the current attempt's message (sent at ``rec["dispatched_at"]``, epoch
        seconds), then suspend until the next check; a completed attempt wakes the run sooner.

        The message is sent again only when presumed lost: the attempt started on a worker that
        died (started, no task lease, not settled), or no worker started it within
        ``dispatch_check_s * 2 ** resends`` (capped at ``resend_max_s``) though a worker
        consumed its queue. A message on a queue that no worker consumed since it was sent is
        known to be queued: it is not sent again, and the run looks again after as long as it
        has waited so far (doubling, capped), so the queue holds one message per waiting task.
        """
        settings = self.settings
        check = settings.dispatch_check_s
        sent = float(rec.get("dispatched_at", 0))
        backoff = resend_backoff_s(check, int(rec.get("resends", 0)), settings.resend_max_s)
        if now - sent < backoff:
            self.suspend(None, reason, check_at=sent + backoff, waits_on=idem)
        attempt = int(rec["attempts"]) + 1
        state = self.store.dispatch_state(self.run_id, idem, attempt, integ.queue)
        if state.running:  # a worker runs it now: its settle wakes the run
            self.suspend(None, reason, check_at=now + check, waits_on=idem)
        # a consumer alive at any moment after the send heartbeats at most one poll later
        consumed = (state.consumer_seen_s is not None
                    and state.consumer_seen_s >= sent - 2 * settings.poll_interval_s)
        if not state.starts:
            if not consumed:  # known queued: nobody could have taken it
                later = min(max(check, now - sent), max(settings.resend_max_s, check))
                self.suspend(None, f"{reason}: waiting for a worker on queue {integ.queue}",
                             check_at=now + later, waits_on=idem)
            # a worker that appeared after the send gets the whole backoff to take it
            since = max(sent, state.consumer_since_s or 0.0)
            if now - since < backoff:
                self.suspend(None, reason, check_at=since + backoff, waits_on=idem)
        self._redispatch(integ, qname, idem, rec, now, reason, lost=True)
        self.suspend(None, reason, check_at=now + resend_backoff_s(
            check, int(rec["resends"]), settings.resend_max_s), waits_on=idem)

    def _redispatch(self, integ: Integration, qname: str, idem: str, rec: TaskRecord,
                    now: float, reason: str, *, lost: bool) -> None:
        """Send the current attempt's message: a new attempt (``lost=False``: its first message
        is due now) or again, the last one presumed lost (``lost=True``: counted in
        ``resends``). The record is written only if no worker settled the attempt since this
        execution loaded it; if one did, nothing is sent and the run runs again at once (the
        settle marked it ``wake_pending``)."""
        settled_at = int(rec["attempts"])
        if lost:
            rec["resends"] = int(rec.get("resends", 0)) + 1
        else:
            rec["resends"] = 0
            rec["queued_at"] = now
        rec["dispatched_at"] = now
        rec.pop("resend_by_run", None)
        if not self.checkpoint(idem, rec, expect_attempts=settled_at):
            self.suspend(None, reason, check_at=now, waits_on=idem)
        self.send_task(integ, qname, idem, int(rec["attempts"]) + 1, rec)


def _redact(params: Any, paths: list[str] | tuple[str, ...] | None) -> Any:
    if params is None:
        return None
    try:
        return redact(params, paths) if paths else json.loads(dumps(params))
    except (TypeError, ValueError, RecursionError):
        raise ValidationError("task params must be JSON-serializable") from None

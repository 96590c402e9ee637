"""``io``: everything a job does to the outside world, each call a task named by its key.

Ported from Trigger.dev v2's ``IO`` (``io.runTask``, ``io.wait``, ``io.try``, ``io.logger``,
``io.random``, ``io.sendEvent``, ``io.<integration>.<namespace>.<method>``). A run's function is
executed again from the top each time the run resumes; a task whose record says ``COMPLETED``
returns its stored output without running again.
"""

from __future__ import annotations

import inspect
import json
import random as _random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from trigger_celery._errors import (
    DuplicateTaskKeyError,
    LeaseLost,
    Suspend,
    TaskFailedError,
    TaskOutputError,
    ValidationError,
)
from trigger_celery._keys import idempotency_key
from trigger_celery._policy import decide, record_attempt_failure, resolve
from trigger_celery._retry import RetryOptions, resend_backoff_s
from trigger_celery._store import dumps
from trigger_celery.integration import (
    Compound,
    Integration,
    Operation,
    OperationResult,
    TaskInfo,
)

if TYPE_CHECKING:
    from trigger_celery._execution import RunExecution
    from trigger_celery._settings import Settings


class RunCanceled(BaseException):  # noqa: N818 - control flow
    """The run was canceled while this execution ran; it stops without writing."""


def _epoch(at: datetime | float | None) -> float | None:
    if at is None or isinstance(at, int | float):
        return at
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


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


_ARITY: dict[Any, int] = {}

# Task records are JSON we wrote ourselves: decode them without ``json.loads``' whitespace checks
# (a replay decodes one per completed task, on every execution of the run).
_decode_record = json.JSONDecoder().raw_decode


def _call_with(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn`` with as many leading ``args`` as it has required positional parameters
    (cached per code object), so ``lambda: ...``, ``lambda task: ...`` and
    ``lambda task, io: ...`` all work."""
    code = getattr(fn, "__code__", None) or fn
    n = _ARITY.get(code)
    if n is None:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            n = len(args)
        else:
            if any(p.kind is p.VAR_POSITIONAL for p in params):
                n = len(args)
            else:
                # parameters with defaults are the caller's own (``lambda i=i: ...``)
                n = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                        and p.default is p.empty for p in params)
        _ARITY[code] = n
    return fn(*args[:n])


class IOLogger:
    """``io.logger``: log lines stored on the run (capped at ``max_log_entries``)."""

    def __init__(self, x: RunExecution):
        self._x = x

    def _log(self, level: str, message: str, data: dict[str, Any]) -> None:
        self._x.log(level, message, data)

    def debug(self, message: str, **data: Any) -> None:
        self._log("DEBUG", message, data)

    def info(self, message: str, **data: Any) -> None:
        self._log("INFO", message, data)

    def warn(self, message: str, **data: Any) -> None:
        self._log("WARN", message, data)

    def error(self, message: str, **data: Any) -> None:
        self._log("ERROR", message, data)


class _OpPath:
    """``io.github.issues`` -> ``io.github.issues.create(key, **params)``.

    What an attribute resolves to is kept on the instance (one per execution), so a replay that
    calls ``io.github.issues.create`` a thousand times resolves it once."""

    def __init__(self, io: IO, integ: Integration, path: str):
        self._io, self._integ, self._path = io, integ, path

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        qname = f"{self._path}.{name}" if self._path else name
        integ = self._integ
        op = integ.operations().get(qname)
        comp = integ.compounds().get(qname)
        found: Any
        if op is not None:
            dispatch = self._io._x.dispatch
            found = lambda key, **params: dispatch(integ, qname, op, key, params)  # noqa: E731
        elif comp is not None:
            found = lambda key, **params: self._compound(comp, qname, key, params)  # noqa: E731
        elif any(q.startswith(qname + ".") for q in (*integ.operations(), *integ.compounds())):
            found = _OpPath(self._io, integ, qname)
        else:
            raise AttributeError(f"{integ.id} has no task or namespace {qname!r}")
        self.__dict__[name] = found
        return found

    def _compound(self, comp: Compound[Any], qname: str, key: str, params: dict[str, Any]) -> Any:
        full = f"{self._integ.id}.{qname}"
        model = comp.validate(full, params)
        root = _OpPath(self._io, self._integ, "")
        return self._io.run_task(
            key, lambda: comp.fn(root, model), name=full, icon=self._integ.icon,
            params=model.model_dump(mode="json", exclude_unset=True),
            properties=comp.display_properties(model),
        )

    def run_task(self, key: str, callback: Callable[..., Any], **options: Any) -> Any:
        """Run ``callback(client, task, io)`` as a task with this integration's authenticated
        SDK client, icon, retry preset and ``on_error``. Options as :meth:`IO.run_task`."""
        integ = self._integ
        options.setdefault("icon", integ.icon)
        options.setdefault("retry", integ.retry)
        return self._io._x.run_inline(
            key, lambda task, io: _call_with(callback, integ.client(), task, io),
            integration=integ, **options,
        )


class IO:
    """The ``io`` argument of a job's ``run(payload, io, ctx)``."""

    def __init__(self, x: RunExecution):
        self._x = x
        self.logger = IOLogger(x)
        self.run_id = x.run_id

    def __getattr__(self, name: str) -> Any:
        integ = self._x.integrations.get(name)
        if integ is None:
            raise AttributeError(
                f"io has no attribute {name!r}; integrations of this job: "
                f"{sorted(self._x.integrations) or 'none'}"
            )
        path = self.__dict__[name] = _OpPath(self, integ, "")
        return path

    def run_task(
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
    ) -> Any:
        """Run ``callback(task, io)`` once for this run, memoized under ``key``.

        Parameters:
            key: the task's key, unique under its parent within the run.
            callback: ``fn(task, io) -> JSON`` (it may take fewer arguments, or be ``async``).
            name, icon, params, properties: stored on the task for display.
            retry: :class:`RetryOptions`; default no retry (one execution).
            delay_until: do not start before this time (aware datetime or epoch seconds).
            redact: dotted paths into ``params`` stored as ``"[redacted]"``.
            on_error: ``hook(error, task, io)`` answering ``None``, an exception or
                :class:`OnErrorResult` (``retry_at``, ``skip_retrying``, ``error``).

        Returns the callback's output as JSON decodes it (tuples become lists), the same on
        every execution.

        Raises:
            DuplicateTaskKeyError: ``key`` already used under this parent in this execution.
            TaskFailedError: the task failed for good (now or in an earlier execution).
            TaskOutputError: the output is not JSON or larger than ``max_output_bytes``.
        """
        return self._x.run_inline(
            key, callback, name=name, icon=icon, params=params, properties=properties,
            retry=retry, delay_until=delay_until, redact=redact, on_error=on_error,
        )

    def wait(self, key: str, seconds: float) -> None:
        """Suspend the run for ``seconds`` seconds; no worker is held meanwhile.

        Raises:
            ValidationError: ``seconds`` is negative or not a finite number.
        """
        if not isinstance(seconds, int | float) or not 0 <= seconds < float("inf"):
            raise ValidationError(f"io.wait({key!r}): seconds must be a number >= 0, got "
                                  f"{seconds!r}")
        self._x.wait(key, float(seconds))

    def try_(self, fn: Callable[[], Any], catch: Callable[[Exception], Any]) -> Any:
        """Trigger.dev's ``io.try``: ``fn()``, or ``catch(error)`` if it raises an ``Exception``.

        Suspension (waits, retries) passes through: it derives from ``BaseException``.
        """
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - the user's catch decides
            return catch(err)

    def random(
        self, key: str, *, min: float = 0.0, max: float = 1.0, round: bool = False
    ) -> float | int:
        """A random number in [min, max) (ints in [min, max] when ``round``), the same on every
        execution of the run."""
        def draw() -> float | int:
            if round:
                return _random.randint(int(min), int(max))
            return _random.uniform(min, max)

        return self.run_task(key, draw, name="random", icon="dice")  # type: ignore[no-any-return]

    def send_event(
        self,
        key: str,
        name: str,
        payload: Any,
        *,
        id: str | None = None,
        deliver_at: datetime | None = None,
    ) -> list[str]:
        """Send an event from inside a run, once. The event id defaults to the task's
        idempotency key, so a resumed run does not send it twice. Returns the started run ids."""
        x = self._x

        def send(task: TaskInfo) -> list[str]:
            handles = x.client.send_event(
                name, payload, id=id or task.idempotency_key, deliver_at=deliver_at
            )
            return [h.id for h in handles]

        return self.run_task(  # type: ignore[no-any-return]
            key, send, name=f"send event {name}", icon="send", params={"name": name, "id": id}
        )


def encode_output(value: Any, what: str, limit: int) -> str:
    """JSON-encode a task or run output; raises :class:`TaskOutputError` naming ``what``."""
    try:
        text = dumps(value)
    except (TypeError, ValueError) as exc:
        raise TaskOutputError(f"{what}: output is not JSON-serializable: {exc}") from None
    if len(text.encode()) > limit:
        raise TaskOutputError(
            f"{what}: output is {len(text.encode())} bytes, over the {limit}-byte limit "
            "(max_output_bytes)"
        )
    return text


class TaskRunner:
    """The task logic of one execution (mixed into :class:`RunExecution`)."""

    # provided by RunExecution
    run_id: str
    client: Any
    settings: Settings
    grace_s: float
    tasks: dict[str, Any]
    integrations: dict[str, Integration]
    io: IO
    recovering: bool
    replayed: int
    _seen: set[str]
    _parents: list[str]

    if TYPE_CHECKING:  # RunExecution's methods, declared for the type checker only

        def checkpoint(
            self, idem: str, rec: dict[str, Any], output_json: str | None = None, *,
            expect_attempts: int | None = None,
        ) -> bool: ...

        def suspend(self, wake_at: float | None, reason: str, idem: str = "",
                    rec: dict[str, Any] | None = None, *, message: bool = True,
                    check_at: float | None = None) -> NoReturn: ...

        def send_task(self, integ: Integration, qname: str, idem: str, attempt: int,
                      rec: dict[str, Any]) -> None: ...

    def _enter(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise ValidationError(f"a task key must be a non-empty string, got {key!r}")
        parent = self._parents[-1] if self._parents else None
        idem = idempotency_key(self.run_id, parent, key)
        if idem in self._seen:
            raise DuplicateTaskKeyError(
                f"task key {key!r} used twice under the same parent in one execution"
            )
        self._seen.add(idem)
        return idem

    def _record(self, idem: str) -> dict[str, Any] | None:
        raw = self.tasks.get(idem)
        if raw is None:
            return None
        self.replayed += 1  # a record an earlier execution wrote: we are still replaying
        if isinstance(raw, dict):
            return raw
        rec: dict[str, Any] = _decode_record(raw)[0]
        self.tasks[idem] = rec
        return rec

    def _replayed(self, key: str, rec: dict[str, Any]) -> Any:
        if rec["status"] == "COMPLETED":
            return rec.get("output")
        raise TaskFailedError(key, rec.get("error") or {})

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
        idem = self._enter(key)
        rec = self._record(idem)
        if rec is not None and rec["status"] in ("COMPLETED", "ERRORED"):
            return self._replayed(key, rec)
        now = time.time()
        if rec is None:
            rec = {
                "key": key, "idem": idem, "parent": self._parents[-1] if self._parents else None,
                "kind": "inline", "name": name or key, "icon": icon, "status": "PENDING",
                "attempts": 0, "params": _redact(params, redact), "properties": properties or [],
                "created_at": now,
            }
            due = _epoch(delay_until)
            if due is not None and due > now:
                rec.update(status="WAITING", retry_at=due, wait="delay_until")
                self.suspend(due, f"delay_until of task {key!r}", idem, rec)
        elif rec.get("retry_at") and rec["retry_at"] > now:
            self.suspend(rec["retry_at"], f"retry of task {key!r}")
        rec["attempts"] += 1
        rec["status"] = "RUNNING"
        rec.pop("retry_at", None)
        if self.recovering:  # a lost execution may have run this callback already
            rec["rerun_after_loss"] = True
        info = TaskInfo(self.run_id, key, idem, rec["name"], rec["attempts"], params,
                        rec["properties"])
        started = time.time()
        self._parents.append(idem)
        try:
            output = resolve(_call_with(callback, info, self.io))
            if isinstance(output, OperationResult):
                rec["properties"] = [*rec["properties"], *output.properties]
                output = output.output
            text = encode_output(output, f"task {key!r}", self.settings.max_output_bytes)
        except (Suspend, LeaseLost, RunCanceled):
            raise
        except Exception as err:  # noqa: BLE001 - recorded, then retried or failed
            self._fail(key, idem, rec, err, info, retry, [on_error, integration and
                       integration.on_error], started)
        finally:
            self._parents.pop()
        rec.update(status="COMPLETED", completed_at=time.time(),
                   duration_ms=round((time.time() - started) * 1000, 3))
        rec.pop("error", None)
        self.checkpoint(idem, rec, text)
        return json.loads(text)

    def _fail(self, key: str, idem: str, rec: dict[str, Any], err: Exception, info: TaskInfo,
              retry: RetryOptions | None, hooks: list[Any], started: float) -> None:
        now = time.time()
        d = decide(err, record=rec, task=info, io=self.io, retry=retry, hooks=hooks,
                   settings=self.settings, now=now)
        erec = record_attempt_failure(rec, d, started, now)
        if d.retry_at is None:
            self.checkpoint(idem, rec)
            raise TaskFailedError(key, erec) from d.error
        self.suspend(d.retry_at, f"retry of task {key!r}", idem, rec)

    def wait(self, key: str, seconds: float) -> None:
        idem = self._enter(key)
        rec = self._record(idem)
        if rec is not None and rec["status"] == "COMPLETED":
            return
        now = time.time()
        if rec is None:
            rec = {"key": key, "idem": idem, "parent": self._parents[-1] if self._parents else None,
                   "kind": "wait", "name": f"wait {seconds:g}s", "icon": "clock",
                   "status": "WAITING", "attempts": 0, "params": {"seconds": seconds},
                   "properties": [], "created_at": now, "retry_at": now + seconds}
            self.suspend(now + seconds, f"wait {key!r}", idem, rec)
        if rec["retry_at"] > now:
            self.suspend(rec["retry_at"], f"wait {key!r}")
        rec.update(status="COMPLETED", attempts=1, completed_at=now, output=None)
        rec.pop("retry_at", None)
        self.checkpoint(idem, rec)

    def dispatch(self, integ: Integration, qname: str, op: Operation[Any], key: str,
                 params: dict[str, Any]) -> Any:
        """An integration call: a Celery task on the integration's queue; the run waits."""
        full = f"{integ.id}.{qname}"
        model = op.validate(full, params)  # bad params: ValidationError now, before any HTTP
        idem = self._enter(key)
        rec = self._record(idem)
        if rec is not None and rec["status"] in ("COMPLETED", "ERRORED"):
            return self._replayed(key, rec)
        now = time.time()
        reason = f"waiting for {full} {key!r}"
        if rec is None:
            call = model.model_dump(mode="json", exclude_unset=True)
            rec = {
                "key": key, "idem": idem, "parent": self._parents[-1] if self._parents else None,
                "kind": "dispatched", "name": full, "display": op.display_name(model),
                "icon": integ.icon, "status": "PENDING", "attempts": 0,
                "params": _redact(call, op.redact), "call": call,
                "properties": op.display_properties(model), "connection": integ.connection_key,
                "queue": integ.queue, "created_at": now, "dispatched_at": now, "queued_at": now,
            }
            self.checkpoint(idem, rec)
            self.send_task(integ, qname, idem, 1, rec)
            self.suspend(None, reason, check_at=now + self.settings.dispatch_check_s)
        retry_at = rec.get("retry_at")
        if rec["status"] == "WAITING" and retry_at:
            if retry_at > now:
                # the run is due at retry_at: it sends the attempt then if the retry is beyond
                # the ETA window (resend_by_run), else it checks the task's own retry message
                self.suspend(retry_at, f"retry of {full} {key!r}",
                             message=bool(rec.get("resend_by_run")))
            if rec.get("resend_by_run"):
                self._redispatch(integ, qname, idem, rec, now, reason, lost=False)
                self.suspend(None, reason, check_at=now + self.settings.dispatch_check_s)
        self._check_dispatched(integ, qname, idem, rec, now, reason)

    def _check_dispatched(self, integ: Integration, qname: str, idem: str, rec: dict[str, Any],
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
            self.suspend(None, reason, check_at=sent + backoff)
        attempt = int(rec["attempts"]) + 1
        state = self.client.store.dispatch_state(self.run_id, idem, attempt, integ.queue)
        if state.running:  # a worker runs it now: its settle wakes the run
            self.suspend(None, reason, check_at=now + check)
        # a consumer alive at any moment after the send heartbeats at most one poll later
        consumed = (state.consumer_seen_s is not None
                    and state.consumer_seen_s >= sent - 2 * settings.poll_interval_s)
        if not state.starts:
            if not consumed:  # known queued: nobody could have taken it
                later = min(max(check, now - sent), max(settings.resend_max_s, check))
                self.suspend(None, f"{reason}: waiting for a worker on queue {integ.queue}",
                             check_at=now + later)
            # a worker that appeared after the send gets the whole backoff to take it
            since = max(sent, state.consumer_since_s or 0.0)
            if now - since < backoff:
                self.suspend(None, reason, check_at=since + backoff)
        self._redispatch(integ, qname, idem, rec, now, reason, lost=True)
        self.suspend(None, reason, check_at=now + resend_backoff_s(
            check, int(rec["resends"]), settings.resend_max_s))

    def _redispatch(self, integ: Integration, qname: str, idem: str, rec: dict[str, Any],
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
            self.suspend(None, reason, check_at=now)
        self.send_task(integ, qname, idem, int(rec["attempts"]) + 1, rec)


def _redact(params: Any, paths: list[str] | tuple[str, ...] | None) -> Any:
    if params is None:
        return None
    try:
        return redact(params, paths) if paths else json.loads(dumps(params))
    except (TypeError, ValueError):
        raise ValidationError("task params must be JSON-serializable") from None

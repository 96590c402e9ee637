"""``io``: everything a job does to the outside world, each call a task named by its key.

Ported from Trigger.dev v2's ``IO`` (``io.runTask``, ``io.wait``, ``io.try``, ``io.logger``,
``io.random``, ``io.sendEvent``, ``io.<integration>.<namespace>.<method>``). A run's function is
executed again from the top each time the run resumes; a task whose record says ``COMPLETED``
returns its stored output without running again.
"""

from __future__ import annotations

import inspect
import random as _random
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from trigger_celery._errors import ValidationError
from trigger_celery._retry import RetryOptions
from trigger_celery._validation import check_display
from trigger_celery.integration import Compound, Integration, Operation, TaskInfo


class Runtime(Protocol):
    """All ``io`` knows of the engine running the job (implemented by
    :class:`trigger_celery._replay.RunExecution`; a test may implement it with no Redis).

    Each task call may end the execution instead of returning: the engine raises a control-flow
    ``BaseException`` (:class:`~trigger_celery._errors.Suspend` and its kin) to suspend the run,
    which ``io`` lets through.
    """

    @property
    def run_id(self) -> str:
        """The run this execution belongs to."""

    @property
    def integrations(self) -> Mapping[str, Integration]:
        """The job's integrations by name (``io.<name>``)."""

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
        """Run ``callback(task, io)`` as task ``key`` once for the run (:meth:`IO.run_task`);
        ``integration``: whose ``on_error`` applies after the task's own."""

    def wait(self, key: str, seconds: float) -> None:
        """Suspend the run for ``seconds`` (checked >= 0) once, under task ``key``."""

    def dispatch(self, integ: Integration, qname: str, op: Operation[Any], key: str,
                 params: dict[str, Any]) -> Any:
        """Operation ``qname`` of ``integ`` as task ``key``, run by a Celery task on the
        integration's queue; returns its output once it completed (the run waits meanwhile).
        Raises :class:`~trigger_celery._errors.ValidationError` for bad ``params``."""

    def parallel(self, key: str, items: Sequence[Any], callback: Callable[..., Any], *,
                 name: str | None = None,
                 properties: list[dict[str, Any]] | None = None) -> list[Any]:
        """Run ``callback(item, index)`` for each item as children of task ``key``
        (:meth:`IO.parallel`); returns their outputs in item order."""

    def log(self, level: str, message: str, data: dict[str, Any]) -> None:
        """Store a log line on the run (``level``: DEBUG, INFO, WARN, ERROR), once per run."""

    def send_event(self, name: str, payload: Any, *, id: str | None,
                   deliver_at: datetime | None) -> list[str]:
        """Send an event now; returns the ids of the runs it started."""


_ARITY: dict[Any, int] = {}


def call_with(fn: Callable[..., Any], *args: Any) -> Any:
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

    def __init__(self, rt: Runtime):
        self._rt = rt

    def _log(self, level: str, message: str, data: dict[str, Any]) -> None:
        self._rt.log(level, message, data)

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
            dispatch = self._io._rt.dispatch
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
        return self._io._rt.run_inline(
            key, lambda task, io: call_with(callback, integ.client(), task, io),
            integration=integ, **options,
        )


class IO:
    """The ``io`` argument of a job's ``run(payload, io, ctx)``.

    Parameters:
        rt: the engine running this execution (:class:`Runtime`).
    """

    def __init__(self, rt: Runtime):
        self._rt = rt
        self.logger = IOLogger(rt)
        self.run_id = rt.run_id

    def __getattr__(self, name: str) -> Any:
        integ = self._rt.integrations.get(name)
        if integ is None:
            raise AttributeError(
                f"io has no attribute {name!r}; integrations of this job: "
                f"{sorted(self._rt.integrations) or 'none'}"
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
            ValidationError: ``name`` or ``icon`` is not a non-empty string, or ``properties``
                not a list of JSON objects.
            DuplicateTaskKeyError: ``key`` already used under this parent in this execution.
            TaskFailedError: the task failed for good (now or in an earlier execution).
            TaskOutputError: the output is not JSON or larger than ``max_output_bytes``.
        """
        if name is not None or icon is not None or properties is not None:
            check_display(f"io.run_task({key!r})", name, icon, properties)
        return self._rt.run_inline(
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
        self._rt.wait(key, float(seconds))

    def parallel(
        self,
        key: str,
        items: Sequence[Any],
        callback: Callable[..., Any],
        *,
        name: str | None = None,
        properties: list[dict[str, Any]] | None = None,
    ) -> list[Any]:
        """Run ``callback(item, index)`` for every item, with the items' dispatched calls in
        flight at once; returns the callbacks' outputs in item order (Trigger.dev v2's
        ``io.parallel(cacheKey, items, callback, options)``).

        ``key`` is a task like any other: once it completed, a replay returns the stored list
        without calling the items again. Each item's ``io`` calls are its own tasks, keyed
        under the parallel task and the item's index, so two items may both call
        ``io.run_task("fetch", ...)`` without a :class:`DuplicateTaskKeyError`.

        What runs at once: integration calls (``io.<integration>.<namespace>.<method>``), each
        a Celery task on its queue. Items run one after the other in this process, in item
        order; an item stops at its first dispatched call whose result is not in yet (its
        later calls may depend on it) and the next item starts, so every item's call is sent
        before the run waits. The run then suspends once, holding no worker, and resumes when
        all those calls completed (or one failed for good or is retried later: the usual
        retry and failure rules), replaying from the top: completed calls return their stored
        outputs (found by key, whatever order they completed in) and each item goes on to its
        next call. Inline work (``io.run_task`` callbacks, ``io.random``) runs inline, one
        item after the other. ``io.wait`` inside an item is allowed: that item waits (the
        others go on); the run then resumes at the earliest of the wait's end (or an item's
        retry time) and the moment the calls in flight are all done, and suspends again for
        what is still pending.

        Parameters:
            key: the parallel task's key, unique under its parent within the run.
            items: a list or tuple; the callback gets each item and its 0-based index.
            callback: ``fn(item, index) -> JSON`` (it may take only the item); it uses ``io``
                from the job's scope for its calls.
            name: the task's display name (default ``"parallel"``).
            properties: display properties (``[{"label": ..., "text": ...}]``).

        Returns the items' outputs in item order, as JSON decodes them, stored as the
        parallel task's output (so their total is bound by ``max_output_bytes``).

        Raises:
            ValidationError: ``key`` is not a non-empty string, ``items`` not a list or tuple,
                ``callback`` not callable or ``async``, ``name`` or ``properties`` malformed.
            DuplicateTaskKeyError: ``key`` already used under this parent in this execution.
            TaskFailedError: an item raised (the first in item order; items after it are not
                started in that execution), now or in an earlier execution; e.g. a call of an
                item that failed for good after its retries.
            TaskOutputError: the outputs are not JSON or larger than ``max_output_bytes``.
        """
        if not isinstance(key, str) or not key:
            raise ValidationError(f"io.parallel: key must be a non-empty string, got {key!r}")
        if not isinstance(items, list | tuple):
            raise ValidationError(f"io.parallel({key!r}): items must be a list or tuple, got "
                                  f"{type(items).__name__}")
        if not callable(callback):
            raise ValidationError(f"io.parallel({key!r}): callback must be callable, got "
                                  f"{type(callback).__name__}")
        if inspect.iscoroutinefunction(callback):
            raise ValidationError(
                f"io.parallel({key!r}): callback must be a plain function, not async: items "
                "run in the run's process one after the other (put async work in an "
                "io.run_task callback, which is awaited)")
        check_display(f"io.parallel({key!r})", name, None, properties)
        return self._rt.parallel(key, items, callback, name=name, properties=properties)

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
        rt = self._rt

        def send(task: TaskInfo) -> list[str]:
            return rt.send_event(name, payload, id=id or task.idempotency_key,
                                 deliver_at=deliver_at)

        return self.run_task(  # type: ignore[no-any-return]
            key, send, name=f"send event {name}", icon="send", params={"name": name, "id": id}
        )


"""``io.parallel``: one task whose items each run a callback, their dispatched calls in flight at
once (Trigger.dev v2's ``io.parallel(cacheKey, items, callback)``).

The parallel task is a task like any other, keyed by ``key``; each item's callback runs as its
child, and the item's own ``io`` calls are tasks hashed under ``"<parallel idem>#<index>"``, so
two items may use the same keys without colliding. One execution runs every item in item order,
as far as it can go:

- a call whose record says ``COMPLETED`` returns its output, as anywhere (replay);
- a call that would suspend the run (a dispatched call not settled yet, a wait, a retry later)
  stops only its item: the execution's ``suspend`` raises a :class:`Suspension` that the batch
  catches (``RunExecution.batch_depth``), writing the task record at once; a dispatched call is
  sent first, with no hold, so every item's call is in flight when the next item starts;
- an exception (a task failed for good, a bug in the callback) fails the parallel task: the
  first item in item order that raised; later items are not started in that execution.

When items are pending the run suspends once, waiting for all of them: the suspension carries
the dispatched tasks in flight (``wait_for``), which ``suspend.lua`` keeps in the run's waitfor
set and ``task_settle.lua`` empties; the last task to complete wakes the run (one that fails for
good or retries wakes it at once), so a batch of n calls costs one resume, not n. It is due
earlier when a wait or retry of an item is (the earliest one). The resumed execution replays
from the top: completed calls return their records (found by idempotency key, never by the
order they completed in, so any completion order replays alike), the items go on, and once all
returned the parallel task completes with their results in item order, stored as its output;
later replays return that list without calling the items again.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from trigger_celery._determinism import params_hash
from trigger_celery._errors import Suspend, ValidationError
from trigger_celery._io import call_with
from trigger_celery._states import (
    COMPLETED,
    RUNNING,
    TASK_READY_STATES,
    TaskRecord,
    keep_descendants,
)
from trigger_celery.integration import TaskInfo

if TYPE_CHECKING:
    from trigger_celery._replay import RunExecution, Suspension


def item_scope(parallel_idem: str, index: int) -> str:
    """What the tasks of item ``index`` are hashed under (in place of a parent task id):
    ``"<parallel idem>#<index>"``, never a task's idempotency key (64 hex digits alone)."""
    return f"{parallel_idem}#{index}"


def run_parallel(x: RunExecution, key: str, items: Sequence[Any], callback: Callable[..., Any],
                 *, name: str | None, properties: list[dict[str, Any]] | None) -> list[Any]:
    """Run task ``key``: ``callback(item, index)`` for each of ``items`` (see the module
    docstring); returns the callbacks' outputs in item order (as JSON decodes them).

    ``items`` and ``callback`` were checked by :meth:`IO.parallel`.

    Raises:
        TaskFailedError: an item raised (now or in an earlier execution).
        Suspension: items are pending; the run suspends once for all of them.
    """
    idem = x._enter(key)
    rec = x._record(idem)
    shown = name or "parallel"
    params = {"items": len(items)}
    phash = params_hash(params)
    if rec is not None:
        x.guard.replayed(key, idem, rec, shown, phash, lambda: params)
        if rec["status"] in TASK_READY_STATES:
            return cast("list[Any]", x._replayed(key, rec))
    if rec is None:
        rec = {
            "key": key, "idem": idem, "parent": None, "kind": "parallel", "name": shown,
            "icon": "parallel", "status": RUNNING,
            "attempts": 1, "params": params, "params_hash": phash,
            "properties": properties or [], "created_at": x.store.now(),
        }
        x.placed(rec)
        x.checkpoint(idem, rec)  # the items' tasks show under it
    started = x.store.now()
    reached = x.reached
    results: list[Any] = [None] * len(items)
    pending: list[Suspension] = []
    failed: Exception | None = None
    x._parents.append(idem)
    x.batch_depth += 1
    try:
        for index, item in enumerate(items):
            scope = item_scope(idem, index)
            x._scopes.append(scope)
            x._items.append(scope)
            try:
                results[index] = call_with(callback, item, index)
                if inspect.isawaitable(results[index]):
                    _close(results[index])
                    raise ValidationError(
                        f"io.parallel({key!r}): item {index}'s callback returned an awaitable; "
                        "items run one after the other and are not awaited (put async work "
                        "in an io.run_task callback)")
            except Suspend as s:
                pending.append(cast("Suspension", s))
            except Exception as err:  # noqa: BLE001 - fails the parallel task, below
                failed = err
                rec["properties"] = [*rec.get("properties", []),
                                     {"label": "failed item", "text": str(index)}]
                break
            finally:
                x._scopes.pop()
                x._items.pop()
    finally:
        x.batch_depth -= 1
        x._parents.pop()
    keep_descendants(rec, x.reached - reached)  # replays of the settled task count them
    if failed is not None:
        info = TaskInfo(x.run_id, key, idem, shown, int(rec["attempts"]), params,
                        rec.get("properties", []))
        x._fail(key, idem, rec, failed, info, None, [], started)
    if pending:
        _suspend(x, key, len(items), pending)
    return _complete(x, key, idem, rec, results, started)


def _close(awaitable: Any) -> None:
    """Close a coroutine that will not be awaited (no "never awaited" warning)."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


def _suspend(x: RunExecution, key: str, n: int, pending: list[Suspension]) -> None:
    """Suspend the run once for every pending item (in an enclosing batch: stop its item)."""
    now = x.store.now()
    wake_at: float | None = None
    check_at: float | None = None
    wait_for: list[str] = []
    keep_pending = False
    for s in pending:
        if s.wake_at is not None:
            due = s.wake_at if s.message else s.wake_at + x.grace_s
            wake_at = due if wake_at is None else min(wake_at, due)
            keep_pending = keep_pending or not s.message  # its own retry message settles it
        if s.check_at is not None or s.wake_at is None:
            check = s.check_at if s.check_at is not None else now + x.settings.dispatch_check_s
            check_at = check if check_at is None else min(check_at, check)
        if s.waits_on:
            wait_for.append(s.waits_on)
        elif s.wake_at is None and not s.wait_for:
            keep_pending = True  # woken by something else than a task of the batch
        wait_for.extend(s.wait_for)
        keep_pending = keep_pending or s.keep_pending
    x.suspend(wake_at, f"parallel {key!r}: {len(pending)} of {n} items waiting",
              check_at=check_at, wait_for=tuple(wait_for), keep_pending=keep_pending)


def _complete(x: RunExecution, key: str, idem: str, rec: TaskRecord, results: list[Any],
              started: float) -> list[Any]:
    from trigger_celery._replay import encode_output  # _replay imports this module

    text = encode_output(results, f"task {key!r}", x.settings.max_output_bytes)
    now = x.store.now()
    rec["status"], rec["completed_at"] = COMPLETED, now
    # from the first item's start to the last item's end, across executions
    rec["duration_ms"] = round((now - float(rec.get("created_at", started))) * 1000, 3)
    x.checkpoint(idem, rec, text)
    return cast("list[Any]", json.loads(text))

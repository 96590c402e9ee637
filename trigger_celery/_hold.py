"""The short hold: after sending a dispatched task, wait a bounded time for its result in place.

Without it every dispatched call suspends the run, and the run resumes (a wake message, a new
execution that loads every task record and replays the function from the top) once the task
settles: n dispatched calls in a row cost n resumes and O(n²) replay and Redis traffic.

With it, :meth:`RunExecution.dispatch` writes the task's record with the run hash's ``held``
field naming the task (``checkpoint.lua``), sends the task's message, and waits
(:func:`send_and_hold`) on the run's notify list (``P:run:{run_id}:notify``, ``BLPOP`` with a
timeout). When a worker settles the task for good (completed, or failed with no retry left),
``task_settle.lua`` sees ``held`` and pushes ``"<idem>\n<record>"`` there instead of waking the
run: the hold has the task's record and the job goes on in the same execution with no further
round trip, no suspension, no wake message and no replay. The execution's lease keeps being
renewed by the :class:`~trigger_celery._execution.LeaseKeeper` thread meanwhile.

The hold is bounded, so it cannot deadlock when every pool process holds a run waiting for a task
no free process can run:

- an execution holds only while another pool process of its worker is idle (free to take the
  task at once), and at most ``concurrency - 1`` processes of one worker hold at a time
  (:class:`HoldGate`, set up at ``worker_init``, before the pool forks); a ``solo`` pool (one
  task at a time) never holds. A busy pool (runs queued behind each other) therefore runs as
  without the hold, and holding never takes a process away from queued work;
- the task must have started within ``dispatch_hold_start_s`` (50 ms by default; checked then,
  in the attempt's start count, unless it settled first), else the execution suspends as
  before (every process is busy; the task runs when one frees up and wakes the run);
- it must settle within ``dispatch_hold_s`` (2 s by default) of being sent, else the execution
  suspends as before.

A hold that gives up suspends the run waiting on the task (``suspend.lua``), which clears
``held`` and makes the run due at once if the task settled in between (its settle, seeing
``held``, set no ``wake_pending``). A settle into a retry pushes ``"<idem>"`` alone and marks
the run ``wake_pending``: the hold gives up and the suspension is due at once.

The trade-off: a run holds its worker process up to ``dispatch_hold_s`` per dispatched call (the
process does nothing else meanwhile). ``dispatch_hold_s = 0`` turns the hold off.

The notify list is a hand-over only: an entry left by an earlier execution names another task
and is skipped; a lost one (a worker killed mid-hold, a store outage) costs at most the hold's
timeout, after which the suspension finds the settled record, never correctness.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trigger_celery._states import TaskRecord
from trigger_celery._store import is_transient

if TYPE_CHECKING:
    from trigger_celery._replay import RunExecution

logger = logging.getLogger("trigger_celery")


class HoldGate:
    """Which executions of one worker may hold: at most ``processes - 1`` at once, and only
    while another process of the worker is idle (free to take the task right away).

    ``shared=True`` (prefork): a shared array made before the pool forks, ``[pid, state]`` per
    pool process (state :data:`IDLE`, :data:`BUSY` running a Celery task, :data:`HOLDING`);
    each process registers at ``worker_process_init`` and marks itself busy and idle around
    every task (``task_prerun``/``task_postrun``). A slot whose pid is gone (a process killed
    mid-task) counts as nothing and is reused. Else (threads, gevent): a semaphore of
    ``processes - 1`` in the one process, without the idle check.
    """

    def __init__(self, processes: int, *, shared: bool):
        self.processes = max(processes, 1)
        self.slots = self.processes - 1
        self._procs: Any = multiprocessing.Array("i", 2 * self.processes) if shared else None
        self._sem = None if shared else threading.BoundedSemaphore(max(self.slots, 1))

    def _mine(self, me: int) -> int:
        """Index of this process's slot (claiming a free or dead one), -1 if none."""
        procs = self._procs
        free = -1
        for i in range(0, 2 * self.processes, 2):
            pid = procs[i]
            if pid == me:
                return i
            if free < 0 and (pid == 0 or not _alive(pid)):
                free = i
        if free >= 0:
            procs[free], procs[free + 1] = me, IDLE
        return free

    def mark(self, state: int) -> None:
        """Set this process's state (:data:`IDLE` or :data:`BUSY`)."""
        if self._procs is None:
            return
        with self._procs.get_lock():
            i = self._mine(os.getpid())
            if i >= 0:
                self._procs[i + 1] = state

    def enter(self) -> bool:
        """Start holding; False when ``processes - 1`` hold already or no other process of the
        worker is idle (then do not hold)."""
        if self.slots == 0:
            return False
        if self._sem is not None:
            return self._sem.acquire(blocking=False)
        me = os.getpid()
        procs = self._procs
        with procs.get_lock():
            i = self._mine(me)
            holding = idle = 0
            for j in range(0, 2 * self.processes, 2):
                pid = procs[j]
                if j == i or pid == 0 or not _alive(pid):
                    continue
                holding += procs[j + 1] == HOLDING
                idle += procs[j + 1] == IDLE
            if i < 0 or holding >= self.slots or not idle:
                return False
            procs[i + 1] = HOLDING
            return True

    def leave(self) -> None:
        """Stop holding (the process goes on with its task: :data:`BUSY`)."""
        if self._sem is not None:
            self._sem.release()
            return
        self.mark(BUSY)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: States of a pool process in the :class:`HoldGate`.
IDLE, BUSY, HOLDING = 1, 2, 3

#: With ``continue_in_place``, where this worker consumes both the task's queue and the run's
#: (so the process that settles the task can continue the run), an execution holds only once it
#: has reached more task records than this: until then a resume (in the settling task's
#: process, no message) replays at most this many records, which costs less than a pool
#: process held through the task's call.
HOLD_AFTER_TASKS = 4

#: This worker's gate (None outside a worker, e.g. an execution run in process: no limit).
_gate: HoldGate | None = None


def install() -> None:
    """Connect Celery's signals: ``worker_init`` (main process, before the pool forks) sets up
    the :class:`HoldGate` from the worker's pool and concurrency; ``worker_process_init``,
    ``task_prerun`` and ``task_postrun`` keep each pool process's state in it."""
    from celery import signals

    def init(sender: Any = None, **_: Any) -> None:
        global _gate
        pool = str(getattr(sender, "pool_cls", "") or "prefork")
        concurrency = getattr(sender, "concurrency", None)
        try:
            n = int(concurrency)  # type: ignore[arg-type]
        except (TypeError, ValueError):  # "auto" (resolved later): the machine's CPUs
            n = os.cpu_count() or 1
        if "solo" in pool:
            n = 1
        _gate = HoldGate(n, shared="prefork" in pool)

    def state(value: int) -> Any:
        def mark(**_: Any) -> None:
            if _gate is not None:
                _gate.mark(value)
        return mark

    signals.worker_init.connect(init, weak=False, dispatch_uid="tc-hold-gate")
    signals.worker_process_init.connect(state(IDLE), weak=False, dispatch_uid="tc-hold-proc")
    signals.task_prerun.connect(state(BUSY), weak=False, dispatch_uid="tc-hold-busy")
    signals.task_postrun.connect(state(IDLE), weak=False, dispatch_uid="tc-hold-idle")


def attempt_settled() -> None:
    """A dispatched attempt is settling in this process, which is about to be idle: say so now,
    before the settle's round trip (the run holding for this task checks for an idle process a
    round trip or two after the settle, which may come before this process runs again)."""
    if _gate is not None:
        _gate.mark(IDLE)


def attempt_continues() -> None:
    """This process goes on with more work after a settle (it continues the task's run in
    place, ``Executor._continue_in_place``): busy again, so no execution holds for it."""
    if _gate is not None:
        _gate.mark(BUSY)


def may_hold(x: RunExecution, *, short: bool = False) -> bool:
    """Whether execution ``x`` holds for the dispatched task it is about to send, decided before
    the send (an idle process that takes the task at once is busy by the time the message is
    out). True enters this worker's :class:`HoldGate`; :func:`send_and_hold` then leaves it.
    ``short``: the execution has reached at most :data:`HOLD_AFTER_TASKS` records and the
    task's worker can continue the run in place: no hold. Also False with the hold off
    (``dispatch_hold_s = 0``) or when no other process of the worker is free to take the task
    now; the caller then suspends the run with the task's record and sends the task after."""
    gate = _gate
    return x.settings.dispatch_hold_s > 0 and not short and (gate is None or gate.enter())


def send_and_hold(x: RunExecution, idem: str, write: Callable[[], object],
                  send: Callable[[], bool]) -> TaskRecord | None:
    """Dispatch task ``idem`` of execution ``x`` (``write()`` stores its record naming it
    ``held``, ``send()`` publishes attempt 1: False when the broker did not take it), then wait
    for it to settle, within the hold's bounds. Call only after :func:`may_hold` said True.

    Returns the task's record (a dict, status ``COMPLETED`` or ``ERRORED``) once it settled, or
    None: the message did not go out, the task did not start within ``dispatch_hold_start_s``
    or settle within ``dispatch_hold_s`` (seconds), settled into a retry, or the store erred.
    On None the caller suspends the run exactly as without a hold (waiting on the task: a
    settle just after the hold gave up makes that suspension due now; a message that did not
    go out is sent again by the run's check of the task).
    """
    try:
        write()
        if not send():
            return None
        return _hold(x, idem)
    finally:
        if _gate is not None:
            _gate.leave()


def _hold(x: RunExecution, idem: str) -> TaskRecord | None:
    settings = x.settings
    store = x.store
    now = time.monotonic()
    deadline = now + settings.dispatch_hold_s
    start_deadline = min(deadline, now + settings.dispatch_hold_start_s)
    started = False
    try:
        while True:
            left = (deadline if started else start_deadline) - time.monotonic()
            if left <= 0:
                if started or not store.task_started(x.run_id, idem, 1):
                    return None
                started = True  # a worker runs it: wait for it up to dispatch_hold_s
                continue
            got = store.hold_next(x.run_id, left)
            if got is None:
                continue
            key, sep, raw = got.partition("\n")
            if key != idem:
                continue  # left by an earlier execution's hold
            if not sep:
                return None  # a retry: the suspension (due now: wake_pending) handles it
            rec: TaskRecord = json.loads(raw)
            return rec
    except Exception as exc:
        if not is_transient(exc):
            raise
        logger.debug("run %s: hold for %s ended by a store error: %r", x.run_id, idem, exc)
        return None

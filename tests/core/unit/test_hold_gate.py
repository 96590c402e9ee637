"""The short hold's gate: at most ``processes - 1`` pool processes hold at once, and only while
another process of the worker is idle; a process killed mid-task counts as nothing (real forked
processes, as a prefork pool's)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any

from trigger_celery._hold import BUSY, IDLE, HoldGate


def _idle_then_wait(gate: HoldGate, ready: Any, asked: Any, answer: Any) -> None:
    gate.mark(IDLE)
    ready.set()
    asked.wait(10)
    answer.value = 1 if gate.enter() else 0  # the parent holds: a second holder is refused
    ready.set()
    signal.pause()  # until SIGKILLed


def test_hold_only_while_another_process_is_idle_and_not_by_all():
    ctx = multiprocessing.get_context("fork")
    gate = HoldGate(2, shared=True)
    gate.mark(BUSY)  # this process runs an execution
    assert not gate.enter()  # nobody else is there to take the task
    ready, asked, answer = ctx.Event(), ctx.Event(), ctx.Value("i", -1)
    child = ctx.Process(target=_idle_then_wait, args=(gate, ready, asked, answer))
    child.start()
    assert ready.wait(10)
    ready.clear()
    assert gate.enter()  # the child is idle: hold
    asked.set()
    assert ready.wait(10)
    assert answer.value == 0  # one process of two holds already
    gate.leave()
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert not gate.enter()  # the idle process is gone


def test_a_single_process_never_holds_and_threads_share_a_semaphore():
    assert not HoldGate(1, shared=True).enter()
    assert not HoldGate(1, shared=False).enter()
    gate = HoldGate(3, shared=False)
    assert gate.enter() and gate.enter() and not gate.enter()
    gate.leave()
    assert gate.enter()

"""The short hold's gate: at most ``slots`` pool processes hold at once; a process killed
mid-hold gives its slot back (real forked processes, as a prefork pool's)."""

from __future__ import annotations

import multiprocessing
import os
import signal

from trigger_celery._hold import HoldGate


def _take_and_sleep(gate: HoldGate, took: multiprocessing.synchronize.Event) -> None:
    assert gate.enter()
    took.set()
    signal.pause()  # held until SIGKILLed


def test_a_full_gate_refuses_until_the_holder_leaves_or_dies():
    ctx = multiprocessing.get_context("fork")
    gate = HoldGate(1, processes=True)
    took = ctx.Event()
    child = ctx.Process(target=_take_and_sleep, args=(gate, took))
    child.start()
    assert took.wait(10)
    assert not gate.enter()  # the one slot is the child's
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert gate.enter()  # the dead holder's slot is free again
    gate.leave()
    assert gate.enter()


def test_no_slot_never_holds_and_threads_share_a_semaphore():
    assert not HoldGate(0, processes=True).enter()
    assert not HoldGate(0, processes=False).enter()
    gate = HoldGate(2, processes=False)
    assert gate.enter() and gate.enter() and not gate.enter()
    gate.leave()
    assert gate.enter()

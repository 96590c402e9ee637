"""The process's one event loop for async callbacks (trigger_celery._loop)."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import threading
import time

import pytest

from trigger_celery._loop import process_loop, run_awaitable

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


async def _read() -> tuple[str, int]:
    await asyncio.sleep(0.01)
    return VAR.get(), id(asyncio.get_running_loop())


def test_every_thread_uses_one_loop_in_its_own_context() -> None:
    VAR.set("main")
    value, loop_id = run_awaitable(_read())
    assert (value, loop_id) == ("main", id(process_loop()))
    seen: list[tuple[str, int]] = []

    def worker(i: int) -> None:
        VAR.set(f"thread {i}")
        seen.append(run_awaitable(_read()))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == [(f"thread {i}", loop_id) for i in range(4)]


def test_errors_and_nesting() -> None:
    async def boom() -> None:
        raise ValueError("from the coroutine")

    with pytest.raises(ValueError, match="from the coroutine"):
        run_awaitable(boom())

    async def nested() -> object:
        return run_awaitable(_read())

    with pytest.raises(RuntimeError, match="await it directly"):
        run_awaitable(nested())


def test_an_interrupted_caller_cancels_the_coroutine() -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def limit(*_: object) -> None:
        raise TimeoutError("a time limit")

    old = signal.signal(signal.SIGALRM, limit)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            run_awaitable(slow())
    finally:
        signal.signal(signal.SIGALRM, old)
    assert time.monotonic() - started < 2
    assert cancelled.wait(2)

"""One long-lived event loop per process for ``async`` task callbacks and hooks.

A job's function is synchronous, but ``io.run_task`` callbacks and ``on_error`` hooks may be
``async``. Running each on a fresh loop (``asyncio.run``) breaks clients made once per process,
such as a module-level ``openai.AsyncOpenAI``: its connection pool is bound to the loop of its first
request, and the next callback on a new loop fails with "Event loop is closed". So every coroutine
of a process runs on one loop, served by a daemon thread made on first use and kept for the
process's life: a Celery prefork child, and every thread of a ``-P threads`` worker, share it. A
loop made before a ``fork`` is not reused in the child (its thread did not survive the fork).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import threading
from collections.abc import Awaitable
from typing import Any

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_pid = 0


def process_loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for callbacks, running in its own daemon thread (started on
    first use; started again after a ``fork`` or if it stopped)."""
    global _loop, _thread, _pid
    with _lock:
        if (_loop is None or _thread is None or _pid != os.getpid() or not _thread.is_alive()
                or _loop.is_closed()):
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="trigger-celery-async",
                                      daemon=True)
            thread.start()
            _loop, _thread, _pid = loop, thread, os.getpid()
        return _loop


def run_awaitable(value: Awaitable[Any]) -> Any:
    """Run ``value`` (a coroutine or any awaitable) on :func:`process_loop`, in a copy of the
    calling thread's ``contextvars`` context, and block the calling thread until it finishes;
    returns its result or raises its exception. If the caller is interrupted (a Celery time
    limit), the coroutine is cancelled.

    Raises:
        RuntimeError: called from a coroutine running on that loop (an ``async`` callback calling
            ``io.run_task`` with another ``async`` callback): it would wait on itself. Await the
            inner coroutine directly instead.
    """
    loop = process_loop()
    if threading.current_thread() is _thread:
        if asyncio.iscoroutine(value):
            value.close()  # never awaited: no "coroutine was never awaited" warning
        raise RuntimeError("an async callback cannot run another async callback through io; "
                           "await it directly")
    context = contextvars.copy_context()
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()
    tasks: list[asyncio.Task[Any]] = []

    def settle(task: asyncio.Task[Any]) -> None:
        if done.done():
            return
        if task.cancelled():
            done.cancel()
        elif task.exception() is not None:
            done.set_exception(task.exception())
        else:
            done.set_result(task.result())

    def start() -> None:
        coro = _await(value)
        if done.cancelled():
            coro.close()
            return
        task = loop.create_task(coro, context=context)
        tasks.append(task)
        task.add_done_callback(settle)

    loop.call_soon_threadsafe(start)
    try:
        return done.result()
    except BaseException:
        done.cancel()
        loop.call_soon_threadsafe(lambda: [t.cancel() for t in tasks])
        raise


async def _await(value: Awaitable[Any]) -> Any:
    return await value

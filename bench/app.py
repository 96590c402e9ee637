"""What the benchmark's worker processes import.

``celery -A bench.app:celery worker`` runs the trigger-celery side: two jobs, ``bench-inline``
(``n`` inline tasks running :func:`bench.config.work`) and ``bench-dispatch`` (``n`` dispatched
``bench.http.get`` tasks). The raw Celery baselines are in :mod:`bench.raw_app`, a module of its
own so that their worker runs Celery without the engine.

Both sides end a unit of work the same way (:func:`bench.config.done`): one ``RPUSH`` of its id to
``bench:done``, which the benchmark process waits on with ``BLPOP`` (no polling).

Resume instrumentation (no engine hook needed): a wrapper around the worker's
``Executor.execute`` brackets each run execution, whether a run message started it or a settled
task continued its run in place (``continue_in_place``); the ``bench-dispatch`` job notes when it
entered and when its last replayed task returned. Per execution we push ``[whole_us, load_us,
lookup_us, replayed, final, new]``: ``load`` is the start to job entry (lease + loading the
run's records + setup), ``lookup`` is
job entry to the return of the last replayed task, ``replayed`` the calls that returned a record
an earlier execution wrote (the execution's ``settled`` count: with the short hold an execution
goes on in place past them, and those later calls are new work, not replay), ``final`` is 1 for
the execution that finished the run, ``new`` the calls that returned a new result in place.
"""

from __future__ import annotations

import json
import time
from typing import Any

from celery.signals import worker_ready

from bench import config
from bench.integration import BenchHttp
from trigger_celery import TriggerClient, invoke_trigger

client = TriggerClient("bench", redis_url=config.STORE_URL, broker_url=config.BROKER_URL)
celery = client.celery
bench_http = BenchHttp(credential="unused")


# -- trigger-celery side ---------------------------------------------------------------------

_stat: dict[str, Any] = {}


@client.define_job(id="bench-inline", version="1.0.0", trigger=invoke_trigger())
def bench_inline(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
    out = None
    for i in range(int(payload.get("n", 1))):
        out = io.run_task(f"t{i}", config.work)
    config.done(ctx.run_id)
    return out


@client.define_job(id="bench-dispatch", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"bench": bench_http})
def bench_dispatch(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
    stat = _stat
    stat["entry"] = stat["replay_end"] = time.perf_counter()
    url, out = payload["url"], None
    settled = io._rt.settled  # records earlier executions wrote: the calls that replay
    for i in range(int(payload.get("n", 1))):
        out = io.bench.http.get(f"t{i}", url=url)  # may suspend the run at a new task
        if i < settled:
            stat["replay_end"] = time.perf_counter()
            stat["replayed"] = i + 1
        else:
            stat["new"] = stat.get("new", 0) + 1  # held: the result came in place
    stat["final"] = 1
    config.done(ctx.run_id)
    return out


_execute = client.executor.execute


def _timed_execute(run_id: str, seq: int) -> str:
    """``Executor.execute`` bracketed: every execution, from a message or in place."""
    _stat.clear()
    _stat["pre"] = time.perf_counter()
    try:
        return _execute(run_id, seq)
    finally:
        _after()


client.executor.execute = _timed_execute  # type: ignore[method-assign]


def _after() -> None:
    if "entry" not in _stat:
        return
    end = time.perf_counter()
    pre, entry, replay_end = _stat["pre"], _stat["entry"], _stat["replay_end"]
    config.side.rpush(config.RESUMES_KEY, json.dumps([
        round((end - pre) * 1e6), round((entry - pre) * 1e6), round((replay_end - entry) * 1e6),
        _stat.get("replayed", 0), _stat.get("final", 0), _stat.get("new", 0),
    ]))


@worker_ready.connect
def _ready(**_: Any) -> None:
    config.mark_ready()

"""Jobs whose code is not deterministic on replay, for ``tests/core/test_determinism.py``
(``celery -A tests.determinism_app worker``)."""

from __future__ import annotations

import time

from trigger_celery import TriggerClient, invoke_trigger

client = TriggerClient("tests-determinism", runs_queue="tests-determinism")
celery = client.celery


def drifting(payload, io, ctx):
    """Task ``a``'s params and task ``b``'s name change with each execution; a wait between
    the tasks and ``end`` makes a second execution replay them."""
    io.run_task("a", lambda: 1, params={"n": ctx.executions})
    io.run_task("b", lambda: 2, name=f"step-{ctx.executions}")
    io.run_task("same", lambda: 3, params={"fixed": [1, 2]})
    io.wait("w", seconds=0.3)
    if payload.get("swallow"):
        try:
            io.run_task("end", lambda: 4, params={"n": ctx.executions})
        except Exception:  # noqa: BLE001 - a job swallowing the strict error still fails
            pass
    return "done"


client.define_job(id="drifting", version="1.0.0", trigger=invoke_trigger())(drifting)
client.define_job(id="drifting-strict", version="1.0.0", trigger=invoke_trigger(),
                  strict_replay=True)(drifting)


@client.define_job(id="steady", version="1.0.0", trigger=invoke_trigger())
def steady(payload, io, ctx):
    total = 0
    for i in range(3):
        total += io.run_task(f"step-{i}", lambda i=i: i, params={"i": i})
        io.wait(f"pause-{i}", seconds=0.2)
    return total


@client.define_job(id="time-key", version="1.0.0", trigger=invoke_trigger())
def time_key(payload, io, ctx):
    io.wait(f"w-{time.time_ns()}", seconds=1)
    return "never"

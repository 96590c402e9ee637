"""The jobs our tests run on real ``celery worker`` processes (``celery -A tests.app worker``).

Side effects are counted in Redis under ``side:*`` keys, outside the run's own records, so a test
can tell how many times a callback really ran.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from tests.cluster import side_client
from trigger_celery import (
    OnErrorResult,
    RetryOptions,
    TriggerClient,
    event_trigger,
    invoke_trigger,
)

client = TriggerClient("tests")
celery = client.celery
side = side_client(client.settings.redis_url, client.settings.redis_cluster)


def bump(name: str) -> int:
    return int(side.incr(f"side:{name}"))


class Tagged(BaseModel):
    tag: str


class Order(BaseModel):
    order_id: int
    amount: float


@client.define_job(id="three-tasks", version="1.0.0", trigger=invoke_trigger(schema=Tagged))
def three_tasks(payload: Tagged, io, ctx):
    tag = payload.tag
    a = io.run_task("first", lambda: bump(f"{tag}:first") and "a")

    def flaky(task):
        n = bump(f"{tag}:second")
        if n <= 2:
            raise RuntimeError(f"flaky failure {n}")
        return {"b": n}

    b = io.run_task("second", flaky,
                    retry=RetryOptions(limit=3, factor=1, min_timeout_ms=200, randomize=False))
    c = io.run_task("third", lambda: bump(f"{tag}:third") and "c")
    return {"a": a, "b": b, "c": c}


@client.define_job(id="waiter", version="1.0.0", trigger=invoke_trigger())
def waiter(payload, io, ctx):
    tag = payload["tag"]
    io.run_task("before", lambda: bump(f"{tag}:before"))
    io.logger.info("waiting", seconds=payload["seconds"])
    io.wait("pause", seconds=payload["seconds"])
    bump(f"{tag}:after-wait-executions")
    io.run_task("after", lambda: bump(f"{tag}:after"))
    return {"done": tag}


@client.define_job(id="steps", version="1.0.0", trigger=invoke_trigger())
def steps(payload, io, ctx):
    tag, n, pause = payload["tag"], payload.get("n", 5), payload.get("pause", 0.2)
    out = []
    for i in range(n):
        def step(i=i):
            time.sleep(pause)
            return bump(f"{tag}:step{i}")
        out.append(io.run_task(f"step-{i}", step))
    return out


@client.define_job(id="retry-at", version="1.0.0", trigger=invoke_trigger())
def retry_at_job(payload, io, ctx):
    tag, delay = payload["tag"], payload["delay"]

    def call(task):
        side.rpush(f"side:{tag}:attempts", time.time())
        if task.attempts == 1:
            raise RuntimeError("rate limited")
        return task.attempts

    def on_error(error, task, io):
        return OnErrorResult(retry_at=datetime.now(UTC) + timedelta(seconds=delay))

    return io.run_task("call", call, on_error=on_error)


@client.define_job(id="quick", version="1.0.0", trigger=invoke_trigger())
def quick(payload, io, ctx):
    return io.run_task("only", lambda: {"t": time.time(), "tag": payload.get("tag")})


@client.define_job(id="order", version="2.1.0", trigger=event_trigger("order.placed", schema=Order))
def order(payload: Order, io, ctx):
    total = io.run_task("total", lambda: payload.amount * 2)
    return {"order_id": payload.order_id, "total": total, "event_id": ctx.event_id}


@client.define_job(id="bad-output", version="1.0.0", trigger=invoke_trigger())
def bad_output(payload, io, ctx):
    return io.run_task("makes-a-set", lambda: {1, 2, 3})


@client.define_job(id="duplicate-key", version="1.0.0", trigger=invoke_trigger())
def duplicate_key(payload, io, ctx):
    io.run_task("same", lambda: 1)
    io.run_task("same", lambda: 2)


@client.define_job(id="nested", version="1.0.0", trigger=invoke_trigger())
def nested(payload, io, ctx):
    tag = payload["tag"]

    def parent(task, io):
        first = io.run_task("child", lambda: bump(f"{tag}:child-ok"))
        if payload.get("fail_child"):
            io.run_task("bad-child", lambda: 1 / 0)
        return {"first": first}

    return io.run_task("parent", parent, retry=RetryOptions(limit=3, min_timeout_ms=100))


@client.define_job(id="cancel-me", version="1.0.0", trigger=invoke_trigger())
def cancel_me(payload, io, ctx):
    io.wait("long", seconds=600)
    return "never"


if os.environ.get("TESTS_EXTRA_EVENT_JOB"):
    @client.define_job(id="order-audit", version="1.0.0",
                       trigger=event_trigger("order.placed", filter={"amount": [10, 20]}))
    def order_audit(payload, io, ctx):
        return io.run_task("audit", lambda: payload["order_id"])


@client.define_job(id="io-tools", version="1.0.0", trigger=invoke_trigger())
def io_tools(payload, io, ctx):
    tag = payload["tag"]
    r1 = io.random("dice", min=1, max=6, round=True)
    caught = io.try_(lambda: io.run_task("fails", lambda: 1 / 0),
                     lambda err: f"caught {type(err).__name__}")
    sent = io.send_event("notify", "order.placed", {"order_id": 99, "amount": 1.0})
    for i in range(payload.get("log_lines", 0)):
        io.logger.debug("line", i=i)
    io.wait("pause", seconds=0.2)  # a replay follows: nothing above may happen twice
    bump(f"{tag}:replays")

    async def async_callback(task):
        return {"async": task.attempts}

    r2 = io.run_task("async", async_callback)
    return {"dice": r1, "caught": caught, "sent": sent, "async": r2}

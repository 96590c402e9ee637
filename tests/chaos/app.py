"""Jobs and integrations of the chaos suite (``celery -A tests.chaos.app worker``).

Every side effect is an HTTP request to the suite's effect server (``CHAOS_HTTP_URL``), which,
as providers do, deduplicates by the ``Idempotency-Key`` header: it counts raw requests per key
and effects per (run tag, task). Credentials reach the workers only through the environment
(``CHAOS_SIDEFX_TOKEN``, ``CHAOS_ORACLE_API_KEY``); the suite scans Redis, messages and logs for
them.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import requests
from celery.signals import before_task_publish
from pydantic import BaseModel

from trigger_celery import (
    RetryOptions,
    TriggerClient,
    cron_trigger,
    event_trigger,
    interval_trigger,
    invoke_trigger,
)
from trigger_celery._keys import idempotency_key
from trigger_celery.integration import Integration, Namespace, TaskInfo, operation


def http_url() -> str:
    return os.environ.get("CHAOS_HTTP_URL", "http://127.0.0.1:9")


def post_effect(key: str, tag: str, task: str, delay: float = 0.0,
                headers: dict[str, str] | None = None) -> Any:
    resp = requests.post(
        f"{http_url()}/effect",
        headers={"Idempotency-Key": key, **(headers or {})},
        json={"tag": tag, "task": task, "delay": delay}, timeout=30,
    )
    resp.raise_for_status()
    return resp.json()


# -- integrations -------------------------------------------------------------------------------


class EffectClient:
    """A provider's thin SDK: every call carries the credential in a header."""

    def __init__(self, header: str, credential: str):
        self.headers = {header: credential}

    def post(self, key: str, tag: str, task: str, delay: float = 0.0) -> Any:
        return post_effect(key, tag, task, delay, self.headers)


class EffectParams(BaseModel):
    tag: str
    task: str
    delay: float = 0.0


class ExplodeParams(BaseModel):
    kind: str
    size: int = 0


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be printed")


class HoldsSocket(Exception):
    def __init__(self) -> None:
        self.sock = socket.socket()
        super().__init__("an error holding a socket", self.sock)


def explode(kind: str, size: int = 0) -> Any:
    if kind == "unprintable":
        raise Unprintable()
    if kind == "socket":
        raise HoldsSocket()
    if kind == "not-json":
        return {"a set": {1, 2}}
    if kind == "big":
        return "x" * size
    return {"kind": kind}


class Effects(Namespace):
    name = "effects"

    @operation(params=EffectParams, display="effect {tag}/{task}",
               properties=lambda p: [{"label": "Tag", "text": p.tag}])
    def post(client: EffectClient, params: EffectParams, task: TaskInfo) -> Any:
        return client.post(task.idempotency_key, params.tag, params.task, params.delay)

    @operation(params=ExplodeParams, display="explode {kind}")
    def explode(client: EffectClient, params: ExplodeParams, task: TaskInfo) -> Any:
        return explode(params.kind, params.size)


class SideFx(Integration):
    id = "sidefx"
    icon = "bolt"
    retry = RetryOptions(limit=2, min_timeout_ms=100, factor=1, randomize=False)
    namespaces = (Effects,)
    credential_env = "CHAOS_SIDEFX_TOKEN"

    def create_client(self, credential: str) -> EffectClient:
        return EffectClient("Authorization", f"Bearer {credential}")


class Ask(Namespace):
    name = "answers"

    @operation(params=EffectParams, display="ask {tag}/{task}")
    def create(client: EffectClient, params: EffectParams, task: TaskInfo) -> Any:
        return client.post(task.idempotency_key, params.tag, params.task, params.delay)


class Oracle(Integration):
    id = "oracle"
    icon = "eye"
    namespaces = (Ask,)
    credential_env = "CHAOS_ORACLE_API_KEY"

    def create_client(self, credential: str) -> EffectClient:
        return EffectClient("X-Api-Key", credential)


# -- messages a process publishes (the security test reads them) ----------------------------


@before_task_publish.connect
def _capture(sender: Any = None, body: Any = None, headers: Any = None, properties: Any = None,
             routing_key: Any = None, **_: Any) -> None:
    path = os.environ.get("CHAOS_CAPTURE_FILE")
    if path:
        line = json.dumps({"task": sender, "routing_key": routing_key, "body": body,
                           "headers": headers, "properties": properties}, default=repr)
        with Path(path).open("a") as f:
            f.write(line + "\n")


# -- jobs ---------------------------------------------------------------------------------------


class Order(BaseModel):
    order_id: int
    amount: float


def build(*, sidefx_queue: str | None = None, **settings: Any) -> TriggerClient:
    """The suite's client with every job; workers build it from the environment."""
    client = TriggerClient("chaos", **settings)
    sidefx = SideFx(queue=sidefx_queue or os.environ.get("CHAOS_SIDEFX_QUEUE") or None)
    oracle = Oracle(queue=f"{sidefx.queue}-oracle")
    integrations = {"sidefx": sidefx, "oracle": oracle}

    def five_tasks(io: Any, payload: dict[str, Any], wait_s: float | None = None) -> list[Any]:
        """Three inline tasks (posting with the task's idempotency key) and two dispatched ones;
        with ``wait_s``, a wait of that many seconds after the second."""
        tag, delay = payload["tag"], payload.get("delay", 0.0)
        out = []
        for i in range(5):
            if i in (1, 3):
                out.append(io.sidefx.effects.post(f"t{i}", tag=tag, task=f"t{i}", delay=delay))
            else:
                out.append(io.run_task(
                    f"t{i}", lambda task, i=i: post_effect(task.idempotency_key, tag, f"t{i}",
                                                           delay)))
            if i == 1 and wait_s is not None:
                io.wait("pause", seconds=wait_s)
        return out

    @client.define_job(id="five", version="1.0.0", trigger=invoke_trigger(),
                       integrations=integrations)
    def five(payload: dict[str, Any], io: Any, ctx: Any) -> list[Any]:
        """Five tasks: three inline, two dispatched."""
        return five_tasks(io, payload)

    @client.define_job(id="five-wait", version="1.0.0", trigger=invoke_trigger(),
                       integrations=integrations)
    def five_wait(payload: dict[str, Any], io: Any, ctx: Any) -> list[Any]:
        """The five tasks of ``five`` with a short wait (``payload["wait"]`` s) after the
        second, so the run suspends and resumes twice more."""
        return five_tasks(io, payload, payload.get("wait", 0.5))

    @client.define_job(id="slow-inline", version="1.0.0", trigger=invoke_trigger())
    def slow_inline(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        tag, delay = payload["tag"], payload["delay"]
        return io.run_task("slow", lambda task: post_effect(task.idempotency_key, tag, "slow",
                                                            delay))

    @client.define_job(id="slow-op", version="1.0.0", trigger=invoke_trigger(),
                       integrations=integrations)
    def slow_op(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        tag, delay = payload["tag"], payload["delay"]
        return io.sidefx.effects.post("slow", tag=tag, task="slow", delay=delay)

    @client.define_job(id="quick", version="1.0.0", trigger=invoke_trigger())
    def quick(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        return io.run_task("only", lambda: {"tag": payload["tag"]})

    @client.define_job(id="order", version="1.0.0", trigger=invoke_trigger(schema=Order))
    def order(payload: Order, io: Any, ctx: Any) -> Any:
        return io.run_task("total", lambda: payload.amount * 2)

    @client.define_job(id="explode-inline", version="1.0.0", trigger=invoke_trigger())
    def explode_inline(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        return io.run_task("boom", lambda: explode(payload["kind"], payload.get("size", 0)))

    @client.define_job(id="explode-op", version="1.0.0", trigger=invoke_trigger(),
                       integrations=integrations)
    def explode_op(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        return io.sidefx.effects.explode("boom", kind=payload["kind"],
                                         size=payload.get("size", 0))

    @client.define_job(id="explode-run", version="1.0.0", trigger=invoke_trigger())
    def explode_run(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        return explode(payload["kind"], payload.get("size", 0))  # the run's own output

    @client.define_job(id="secrets", version="1.0.0", trigger=invoke_trigger(),
                       integrations=integrations)
    def secrets(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        tag = payload["tag"]
        a = io.sidefx.effects.post("token", tag=tag, task="token")
        b = io.oracle.answers.create("api-key", tag=tag, task="api-key")
        c = io.sidefx.run_task("inline-client", lambda client, task: client.post(
            task.idempotency_key, tag, "inline-client"))
        io.logger.info("done", a=a, b=b, c=c)
        return [a, b, c]

    @client.define_job(id="waiter", version="1.0.0", trigger=event_trigger("chaos.wait"))
    def waiter(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        """A side effect, a wait of ``payload["wait"]`` seconds, another side effect."""
        tag = payload["tag"]
        io.run_task("before", lambda task: post_effect(task.idempotency_key, tag, "before"))
        io.wait("pause", seconds=payload["wait"])
        return io.run_task("after", lambda task: post_effect(task.idempotency_key, tag, "after"))

    @client.define_job(id="settle-race", version="1.0.0", trigger=invoke_trigger(),
                       integrations=integrations)
    def settle_race(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        """A dispatched task whose attempt a worker settles while the run replays: in its
        second execution the job runs the queued attempt itself, as another worker would,
        just before it reaches the task."""
        if ctx.executions == 2:
            idem = idempotency_key(ctx.run_id, None, "op")
            client.executor.execute_operation(sidefx, "effects.post", ctx.run_id, idem, 1)
        return io.sidefx.effects.post("op", tag=payload["tag"], task="op")

    @client.define_job(id="nap", version="1.0.0", trigger=invoke_trigger())
    def nap(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        """A wait of ``payload["wait"]`` seconds, then a trivial inline task."""
        io.wait("nap", seconds=payload["wait"])
        return io.run_task("after", lambda: payload["tag"])

    @client.define_job(id="every-2-days", version="1.0.0", trigger=interval_trigger(2 * 86400))
    def every_2_days(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        return payload["ts"]

    @client.define_job(id="monthly", version="1.0.0", trigger=cron_trigger("7 13 10 * *"))
    def monthly(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        return payload["ts"]

    @client.define_job(id="guarded", version="1.0.0", trigger=invoke_trigger())
    def guarded(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        """A job that catches every ``Exception`` around its task, as users write: a store
        error must never reach it (it would return the fallback)."""
        tag = payload["tag"]
        try:
            out = io.run_task("effect", lambda task: post_effect(
                task.idempotency_key, tag, "effect", payload.get("delay", 0.0)))
            io.logger.info("effect done", out=out)
        except Exception as err:  # noqa: BLE001 - the point of the job
            return {"fallback": repr(err)}
        return out

    @client.define_job(id="long-inline", version="1.0.0", trigger=invoke_trigger())
    def long_inline(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
        """One inline task: a side effect, then ``payload["seconds"]`` seconds of work."""
        tag = payload["tag"]

        def work(task: Any) -> Any:
            out = post_effect(task.idempotency_key, tag, "long")
            time.sleep(payload["seconds"])
            return out

        return io.run_task("long", work)

    def probe(n: int) -> None:  # a plain Celery task: proves what a message made happen
        requests.post(f"{http_url()}/probe", json={"n": n}, timeout=10)

    client.celery.task(name="chaos.probe", ignore_result=True)(probe)
    return client


client = build()
celery = client.celery

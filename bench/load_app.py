"""What the load test's worker processes import (``celery -A bench.load_app:celery worker``).

Everything comes from the environment :mod:`bench.load` sets, so that each load test talks to its
own store and side Redis and to queues of its own on the shared RabbitMQ:

- ``LOAD_STORE_URL``: the store (a ``redis-server`` the load test started, AOF ``everysec``);
- ``LOAD_BROKER_URL``: the broker (RabbitMQ, ``amqp://...``);
- ``LOAD_SIDE_URL``: the load test's bookkeeping (done signals, readiness), another server, so
  that the store's counters hold the store's traffic alone;
- ``LOAD_TAG``: suffix of the queue names (``load-runs-<tag>``, ``load-http-<tag>``).

Two jobs. ``load-inline``: one inline task (``io.run_task`` running :func:`bench.config.work`).
``load-mixed``: ten tasks in order, eight inline and two dispatched (``io.bench.http.get`` on a
local HTTP server, its own Celery task on the ``load-http-<tag>`` queue: the run suspends and is
resumed when it settles). Each run ends with one ``RPUSH`` of its id to ``load:done`` on the side
server.
"""

from __future__ import annotations

import os
from typing import Any

import redis
from celery.signals import worker_ready

from bench import config
from bench.integration import BenchHttp
from trigger_celery import TriggerClient, invoke_trigger

TAG = os.environ.get("LOAD_TAG", "local")
RUNS_QUEUE = f"load-runs-{TAG}"
HTTP_QUEUE = f"load-http-{TAG}"
DONE_KEY = "load:done"
READY_KEY = "load:ready:"
MIXED_TASKS = 10
MIXED_DISPATCHED = (2, 7)  # which of the ten tasks are dispatched HTTP calls

client = TriggerClient(
    "load", redis_url=os.environ.get("LOAD_STORE_URL", "redis://127.0.0.1:6379/0"),
    broker_url=os.environ.get("LOAD_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    runs_queue=RUNS_QUEUE, key_prefix=f"load-{TAG}")
celery = client.celery
side = redis.Redis.from_url(os.environ.get("LOAD_SIDE_URL", "redis://127.0.0.1:6379/1"))
bench_http = BenchHttp(credential="unused", queue=HTTP_QUEUE)


@client.define_job(id="load-inline", version="1.0.0", trigger=invoke_trigger())
def load_inline(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
    out = io.run_task("t0", config.work)
    side.rpush(DONE_KEY, ctx.run_id)
    return out


@client.define_job(id="load-mixed", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"bench": bench_http})
def load_mixed(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
    out = None
    for i in range(MIXED_TASKS):
        if i in MIXED_DISPATCHED:
            out = io.bench.http.get(f"t{i}", url=payload["url"])
        else:
            out = io.run_task(f"t{i}", config.work)
    side.rpush(DONE_KEY, ctx.run_id)
    return out


@worker_ready.connect
def _ready(**_: Any) -> None:
    side.set(READY_KEY + os.environ.get("LOAD_WORKER_NAME", "worker"), os.getpid())

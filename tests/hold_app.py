"""A job of dispatched tasks in a row, for the short hold's tests (``celery -A tests.hold_app``).

``io.ctr.ops.bump(key, tag=..., i=..., sleep=...)`` is a dispatched task on the ``ctr`` queue: it
sleeps ``sleep`` seconds, counts its run in Redis (``side:<tag>:<i>``, outside the run's own
records) and returns ``i``. The job ``chain`` makes ``n`` such calls one after another; each of
its executions pushes the name of the Celery task it runs in to ``side:<tag>:exec``
(``trigger-celery.run`` from a run message, ``ctr.ops.bump`` when a settled task continued the
run in place).

With ``TESTS_HOLD_SUSPENSION_OPEN`` set in a worker's environment, each suspension of a run that
waits for a task is held open (a ``before_suspend`` hook) until that task has completed, and
``side:held:<run id>`` counts it: a task settling while its run suspends, made certain.
``TESTS_SOFT_TIME_LIMIT`` (seconds) sets Celery's app-wide ``task_soft_time_limit``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from celery import current_task
from pydantic import BaseModel

from tests.cluster import side_client
from trigger_celery import TaskInfo, TriggerClient, invoke_trigger
from trigger_celery.integration import Integration, Namespace, operation

client = TriggerClient("tests-hold")
celery = client.celery
side = side_client(client.settings.redis_url, client.settings.redis_cluster)


class BumpParams(BaseModel):
    tag: str
    i: int
    sleep: float = 0.0


class Ops(Namespace):
    name = "ops"

    @operation(params=BumpParams, display="bump {tag}/{i}")
    def bump(client: Any, params: BumpParams, task: TaskInfo) -> Any:
        if params.sleep:
            time.sleep(params.sleep)
        side.incr(f"side:{params.tag}:{params.i}")
        return params.i


class Counter(Integration):
    """Task names ``ctr.ops.bump`` on the ``ctr`` queue."""

    id = "ctr"
    icon = "hash"
    namespaces = (Ops,)

    def create_client(self, credential: str) -> Any:
        return object()


counter = Counter(credential="unused")


class Chain(BaseModel):
    tag: str
    n: int
    sleep: float = 0.0


@client.define_job(id="chain", version="1.0.0", trigger=invoke_trigger(schema=Chain),
                   integrations={"ctr": counter})
def chain(payload: Chain, io: Any, ctx: Any) -> dict[str, Any]:
    side.rpush(f"side:{payload.tag}:exec", current_task.name if current_task else "none")
    total = 0
    for i in range(payload.n):
        total += io.ctr.ops.bump(f"t{i}", tag=payload.tag, i=i, sleep=payload.sleep)
    io.logger.info("chain done", total=total)
    return {"total": total}


def _hold_suspension_open(execution: Any, suspend: Any) -> None:
    """Keep the run's suspension open until the task it waits on has completed."""
    if not suspend.waits_on:
        return
    deadline = time.time() + 20
    while time.time() < deadline:
        raw = side.hget(execution.keys[1], suspend.waits_on)
        if raw and json.loads(raw)["status"] == "COMPLETED":
            side.rpush(f"side:held:{execution.run_id}", time.time())
            return
        time.sleep(0.02)


if os.environ.get("TESTS_SOFT_TIME_LIMIT"):  # an app-wide Celery limit (seconds)
    celery.conf.task_soft_time_limit = float(os.environ["TESTS_SOFT_TIME_LIMIT"])

if os.environ.get("TESTS_HOLD_SUSPENSION_OPEN"):
    client.executor.before_suspend.append(_hold_suspension_open)

"""Jobs the metrics tests run (``celery -A tests.core.metrics.metrics_app worker``): a run with a
plain task retried once, a dispatched call rate limited once (an ``on_error`` ``retry_at``), a
wait, and a job that fails."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from trigger_celery import OnErrorResult, RetryOptions, TriggerClient, invoke_trigger
from trigger_celery.integration import Integration, Namespace, TaskInfo, operation

# Its own queue and key prefix, away from other test apps sharing the store.
client = TriggerClient("metrics-tests", runs_queue="metrics-tests", key_prefix="tcmetrics")
celery = client.celery


class RateLimited(Exception):
    """What the fake provider raises on a first attempt."""


class Ping(BaseModel):
    n: int


class Calls(Namespace):
    name = "calls"

    @operation(params=Ping, display="Ping {n}")
    def ping(client: str, params: Ping, task: TaskInfo) -> dict:
        if task.attempts == 1:
            raise RateLimited("429 slow down")
        return {"pong": params.n}


class Limited(Integration):
    id = "limited"
    icon = "limited"
    namespaces = (Calls,)
    credential_env = "LIMITED_TOKEN"

    def create_client(self, credential: str) -> str:
        return credential

    def on_error(self, error, task, io):
        if isinstance(error, RateLimited):
            return OnErrorResult(retry_at=datetime.now(UTC) + timedelta(seconds=0.5))
        return None


limited = Limited(credential="not-a-secret", queue=os.environ.get("METRICS_TESTS_QUEUE"))


@client.define_job(id="m-flow", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"limited": limited})
def flow(payload, io, ctx):
    def flaky(task):
        if task.attempts == 1:
            raise RuntimeError("first attempt fails")
        return "ok"

    io.run_task("flaky", flaky, retry=RetryOptions(limit=2, min_timeout_ms=100, randomize=False))
    pong = io.limited.calls.ping("ping", n=payload.get("n", 1))
    io.wait("pause", seconds=payload.get("seconds", 0.2))
    return pong


@client.define_job(id="m-quick", version="1.0.0", trigger=invoke_trigger())
def quick(payload, io, ctx):
    return io.run_task("only", lambda: payload.get("i"))


@client.define_job(id="m-fails", version="1.0.0", trigger=invoke_trigger())
def fails(payload, io, ctx):
    return io.run_task("boom", lambda: 1 / 0)

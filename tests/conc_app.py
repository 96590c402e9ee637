"""Jobs with concurrency limits for tests/concurrency (``celery -A tests.conc_app worker``).

Each run records its start in Redis (``side:conc:starts:<group>``, the payload's index) and the
number of runs of its group executing at that moment (``side:conc:peaks:<group>``).
"""

from __future__ import annotations

import time

from pydantic import BaseModel

from tests.cluster import side_client
from trigger_celery import Concurrency, TriggerClient, invoke_trigger

#: Short leases so a killed worker's slot frees within seconds.
client = TriggerClient("conc-tests", lease_s=4, poll_interval_s=0.5)
celery = client.celery
side = side_client(client.settings.redis_url, client.settings.redis_cluster)


class Item(BaseModel):
    group: str
    index: int
    hold_s: float = 0.3
    #: hold only in the run's first execution (a run recovered after a kill goes on at once)
    first_only: bool = False
    wait_s: float = 0.0


@client.define_job(id="limited", version="1.0.0", trigger=invoke_trigger(schema=Item),
                   concurrency=Concurrency(limit=2, key=lambda p: p.group))
def limited(payload: Item, io, ctx):
    if payload.wait_s:
        io.wait("pause", payload.wait_s)  # a waiting run holds no slot
    n = side.incr(f"side:conc:running:{payload.group}")
    side.rpush(f"side:conc:peaks:{payload.group}", n)
    side.rpush(f"side:conc:starts:{payload.group}", payload.index)
    side.rpush("side:conc:all", payload.group)
    try:
        if not payload.first_only or ctx.executions == 1:
            time.sleep(payload.hold_s)
    finally:
        side.decr(f"side:conc:running:{payload.group}")
    return payload.index


@client.define_job(id="single", version="1.0.0", trigger=invoke_trigger(),
                   concurrency=Concurrency(limit=1))
def single(payload, io, ctx):
    side.rpush("side:conc:single", payload["index"])
    time.sleep(float(payload.get("hold_s", 0.2)))
    return payload["index"]

"""Duplicate and redelivered messages (item 3), shared by the Redis and RabbitMQ variants."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from tests.chaos._harness import STATS, EffectServer, Workers, finish_all, wait_until


def received_counts(ws: Workers) -> Counter[str]:
    """How many times each Celery task id was received, over all workers' logs."""
    return Counter(re.findall(r"Task [\w.-]+\[([0-9a-f-]{36})\] received", ws.logs()))


def duplicates_run_once(client: Any, ws: Workers, effects: EffectServer, runs: int = 12) -> None:
    """Every run message published three times, every dispatched task's message twice more,
    to two single-process workers racing for them: one execution of each, one effect each."""
    ws.start(name="racer-a")
    ws.start(name="racer-b")
    inline = [client.trigger("slow-inline", {"tag": f"i{i}", "delay": 0.2}).id
              for i in range(runs)]
    for rid in inline:
        client.executor.send_run(rid, 0)
        client.executor.send_run(rid, 0)
    ops = [client.trigger("slow-op", {"tag": f"o{i}", "delay": 0.2}).id for i in range(runs)]
    integ = client.jobs["slow-op"].integrations["sidefx"]
    for rid in ops:
        def dispatched(rid: str = rid) -> bool:
            return bool(client.store.redis.hlen(client.store.run_keys(rid)[1]))
        wait_until(dispatched, 30, f"task record of {rid}", step=0.02)
        (idem, raw), = client.store.redis.hgetall(client.store.run_keys(rid)[1]).items()
        rec = json.loads(raw)
        client.executor.send_task(integ, "effects.post", rid, idem, 1, rec)
        client.executor.send_task(integ, "effects.post", rid, idem, 1, rec)
    STATS["runs"] += 2 * runs
    finish_all(client, inline + ops, timeout=60)
    for rid in inline:
        run = client.get_run(rid)
        assert run.status == "SUCCESS" and run.executions == 1, run
    for rid in ops:
        run = client.get_run(rid)
        # one execution to dispatch, one to resume; the task ran in one attempt
        assert run.status == "SUCCESS" and run.executions == 2, run
        assert run.tasks[0].attempts == 1
    assert len(effects.raw) == 2 * runs
    assert all(c == 1 for c in effects.raw.values()), effects.raw
    assert all(c == 1 for c in effects.effects.values())


def restore_unacked(broker_url: str, visibility_timeout_s: float) -> None:
    """What a worker on the Redis broker does from time to time (kombu's
    ``QoS.restore_visible``, here without its throttle): messages unacknowledged for longer than
    the visibility timeout go back on their queues, and workers receive them again."""
    from kombu import Connection

    with Connection(broker_url,
                    transport_options={"visibility_timeout": visibility_timeout_s}) as conn:
        conn.default_channel.qos.restore_visible(num=100, interval=1)


def redelivery_runs_once(client: Any, ws: Workers, effects: EffectServer, *,
                         force: Any = None, redeliver: Any = None,
                         delay: float = 12.0) -> Counter[str]:
    """A run execution and a dispatched task that each take ``delay`` seconds, while their
    messages are redelivered (by the broker, ``redeliver()`` making it happen while they run,
    or by ``force()``): one execution, one request."""
    ws.start(concurrency=2, name="slow-a")
    ws.start(concurrency=2, name="slow-b")
    a = client.trigger("slow-inline", {"tag": "vt-inline", "delay": delay}).id
    b = client.trigger("slow-op", {"tag": "vt-op", "delay": delay}).id
    STATS["runs"] += 2
    if force is not None or redeliver is not None:
        wait_until(lambda: len(effects.raw) == 2, 20, "both slow requests in flight")
        (force or redeliver)()
    finish_all(client, [a, b], timeout=60 + 2 * delay)
    assert sorted(effects.effects.values()) == [1, 1]  # deduplicated: once each, always
    if force is not None:
        # A closed connection loses the worker's unacknowledged messages: a task whose ack
        # could not be sent may run again once, like after a kill, and the run records it.
        runs = [client.get_run(a), client.get_run(b)]
        flagged = {t.idem for r in runs for t in r.tasks if t.rerun_after_loss}
        assert all(c <= 2 for c in effects.raw.values()), effects.raw
        assert {k for k, c in effects.raw.items() if c > 1} <= flagged
        STATS["raw_repeats"] += sum(c - 1 for c in effects.raw.values())
        return received_counts(ws)
    assert client.get_run(a).executions == 1
    run_b = client.get_run(b)
    # the run wakes every dispatch_check_s to check on its slow task, and never re-sends its
    # message while the attempt holds its lease: the task ran in one attempt
    assert run_b.tasks[0].attempts == 1 and not run_b.tasks[0].rerun_after_loss, run_b
    assert run_b.lost_executions == 0
    assert sorted(effects.raw.values()) == [1, 1], effects.raw
    return received_counts(ws)

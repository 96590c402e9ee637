"""Issue 11, items 4 and 5: backlogs stay bounded. A dispatched task whose queue has no consumer
is not re-sent while its message is known to be queued; held waits never stall new runs."""

from __future__ import annotations

import io
import re
import time
from collections import Counter
from typing import Any

import redis
from rich.console import Console

from tests.chaos._harness import STATS, finish_all, wait_until
from tests.chaos.conftest import make_client
from trigger_celery.cli._timeline import render


def _shown(client: Any, run_id: str) -> str:
    """``runs show RUN_ID`` as plain text."""
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(render(client.get_run(run_id)))
    return out.getvalue()


def _sample_peak(broker: redis.Redis, queue: str, seconds: float) -> int:
    """The largest length of the broker's list ``queue`` seen over ``seconds`` seconds."""
    peak = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, int(broker.llen(queue)))
        time.sleep(0.05)
    return peak


def test_no_consumer_queue_holds_one_message_per_waiting_task(clean, effects, workers_for):
    """10 runs dispatch to a queue no worker consumes: over 8 dispatch_check_s periods the queue
    holds their 10 messages and no more, and `runs show` says what each waits for; then a
    worker on that queue appears and every run completes, each side effect once."""
    store, broker_url = clean.url(0), clean.url(1)
    check = 1.0
    client = make_client(store, broker_url, dispatch_check_s=check)
    ws = workers_for(store, broker_url, effects.url, TRIGGER_CELERY_DISPATCH_CHECK_S=str(check))
    ws.start(name="runs-only", queues=client.settings.runs_queue)
    queue = client.jobs["slow-op"].integrations["sidefx"].queue
    broker = clean.client(1)
    n = 10
    ids = [client.trigger("slow-op", {"tag": f"nc{i}", "delay": 0}).id for i in range(n)]
    STATS["runs"] += n
    wait_until(lambda: broker.llen(queue) >= n, 30, "every run dispatched its task")
    peak = _sample_peak(broker, queue, 8 * check)
    STATS["peak_queue_no_consumer"] = max(STATS["peak_queue_no_consumer"], peak)
    assert peak <= n + 2, f"{peak} messages on {queue} for {n} waiting tasks"
    text = _shown(client, ids[0])
    assert re.search(rf"waiting for a worker on queue {queue} since \d\d:\d\d:\d\d", text), text
    assert all(t.resends == 0 for rid in ids for t in client.get_run(rid).tasks)

    ws.start(name="consumer", queues=queue)
    finish_all(client, ids, timeout=60)
    assert sorted(effects.effects) == sorted((f"nc{i}", "slow") for i in range(n))
    assert all(c == 1 for c in effects.effects.values()), effects.effects
    assert all(c == 1 for c in effects.raw.values()), effects.raw
    received = Counter(re.findall(r"Task sidefx\.effects\.post\[([0-9a-f-]{36})\] received",
                                  ws.logs()))
    assert len(received) == n and max(received.values()) == 1, received  # never re-sent
    assert broker.llen(queue) == 0

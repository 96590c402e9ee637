"""Issue 11, item 11: while the store's Redis is down, the wake-up poller logs one line when it
goes away and one when it is back (with the duration), not a traceback every round.

The store has its own ``redis-server``, which the test stops for a few seconds; the broker is the
suite's other server, so the worker's Celery consumer is unaffected and every line about the
outage in the worker's log is the poller's.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.chaos._harness import STATS, RedisServer, finish_all, wait_until
from tests.chaos.conftest import make_client

DOWN_S = 5.0


@pytest.fixture()
def store_server():
    server = RedisServer()
    yield server
    server.stop()


def test_poller_logs_one_line_when_the_store_goes_and_one_when_it_is_back(
        clean, store_server, effects, workers_for):
    store, broker = store_server.url(0), clean.url(1)
    client = make_client(store, broker)
    ws = workers_for(store, broker, effects.url)
    w = ws.start(name="outage")  # polls every 0.5 s (CHAOS_ENV)
    first = client.trigger("quick", {"tag": "before"}).id
    finish_all(client, [first], timeout=30)
    time.sleep(1.0)  # a few good rounds
    start = len(w.output())
    store_server.kill()
    down_at = time.monotonic()
    time.sleep(DOWN_S)  # about ten poller rounds fail
    store_server.start()
    STATS["redis_restarts"] += 1
    wait_until(lambda: "wake-up poller: working again" in w.output()[start:], 20,
               "the poller's recovery line")
    outage = time.monotonic() - down_at
    log = w.output()[start:]
    lines = [line for line in log.splitlines() if "wake-up poller" in line]
    assert len(lines) == 2, lines
    assert "the store (Redis) is unreachable (ConnectionError" in lines[0], lines
    took = re.search(r"working again after ([0-9.]+) s \(([0-9]+) failed rounds\)", lines[1])
    assert took, lines
    assert DOWN_S - 1 <= float(took.group(1)) <= outage + 1, (took.group(0), outage)
    assert int(took.group(2)) >= 5, took.group(0)
    assert "Traceback" not in log and "round failed" not in log, log[-3000:]
    # and the worker serves runs again
    after = client.trigger("quick", {"tag": "after"}).id
    STATS["runs"] += 2
    assert finish_all(client, [after], timeout=30)[after]["status"] == "SUCCESS"
    assert w.proc.poll() is None
    STATS["outage_lines"] += len(lines)

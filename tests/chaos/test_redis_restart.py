"""Item 2: the suite's own redis-server (store and broker on it, AOF on) restarted during 100
runs: once with ``SHUTDOWN``, once killed with SIGKILL under ``appendfsync always``."""

from __future__ import annotations

import time

import pytest

from tests.chaos._chaos_run import count_finished
from tests.chaos._harness import STATS, RedisServer, finish_all
from tests.chaos.conftest import make_client


@pytest.fixture()
def own_redis():
    server = RedisServer(fsync="always")
    yield server
    server.stop()


def test_runs_complete_after_redis_restarts(own_redis, effects, workers_for):
    effects.reset()
    store, broker = own_redis.url(0), own_redis.url(1)
    client = make_client(store, broker)
    ws = workers_for(store, broker, effects.url)
    ws.start(concurrency=2, name="rr-a")
    ws.start(concurrency=2, name="rr-b")
    ids = [client.trigger("five", {"tag": f"r{i}", "delay": 0.05}).id for i in range(100)]
    STATS["runs"] += 100
    for stop in (own_redis.shutdown, own_redis.kill):
        time.sleep(1.5)
        stop()
        time.sleep(1.0)  # down for a second: every connection breaks
        own_redis.start()
        STATS["redis_restarts"] += 1
        assert count_finished(client, ids) < 100, "the runs finished before the restart"
    done = finish_all(client, ids, timeout=120)
    failed = {rid: h.get("error") for rid, h in done.items() if h["status"] != "SUCCESS"}
    assert not failed, f"{len(failed)} runs failed, e.g. {list(failed.items())[:3]}"
    assert all(w.proc.poll() is None for w in ws.all), "a worker exited"
    expected = {(f"r{i}", f"t{t}") for i in range(100) for t in range(5)}
    assert set(effects.effects) == expected
    dup = {k: c for k, c in effects.effects.items() if c != 1}
    STATS["duplicate_effects"] += sum(c - 1 for c in dup.values())
    assert not dup
    STATS["raw_repeats"] += sum(c - 1 for c in effects.raw.values())

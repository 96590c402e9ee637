"""Issue 15, items 1 and 2: store and broker behind Redis Sentinel, the master SIGKILLed during
100 runs (waits, inline and dispatched tasks). Every run completes on the promoted replica, and
with ``min_replicas_ack=1`` no task whose checkpoint was written runs again: only a task in
flight at the kill may repeat, once, as after a worker's death.

Three ``redis-server`` (a master and two replicas, AOF on, ``noeviction``) and three sentinels
(quorum 2, master down after 1 s) run on loopback ports of their own. The lease (10 s) is longer
than a failover (about 3 s here), as README asks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.chaos._chaos_run import count_finished
from tests.chaos._harness import STATS, finish_all, wait_until
from tests.chaos._sentinel import MASTER_NAME, SentinelCluster
from tests.chaos.conftest import make_client

RUNS = 100
TASKS = [f"t{i}" for i in range(5)]
WORKERS, CONCURRENCY = 2, 2


@pytest.fixture()
def cluster() -> Iterator[SentinelCluster]:
    c = SentinelCluster()
    yield c
    c.stop()


def test_runs_complete_after_the_master_is_killed_and_no_completed_task_repeats(
        cluster, effects, workers_for) -> None:
    effects.reset()
    store, broker = cluster.url(0), cluster.url(1)
    settings = {"sentinel_master": MASTER_NAME, "min_replicas_ack": 1, "lease_s": 10}
    client = make_client(store, broker, **settings)
    ws = workers_for(store, broker, effects.url,
                     **{f"TRIGGER_CELERY_{k.upper()}": str(v) for k, v in settings.items()})
    for i in range(WORKERS):
        ws.start(concurrency=CONCURRENCY, name=f"sentinel-{i}")
    ids = [client.trigger("five-wait" if i % 2 else "five",
                          {"tag": f"s{i}", "delay": 0.05, "wait": 0.5}).id
           for i in range(RUNS)]
    STATS["runs"] += RUNS

    wait_until(lambda: count_finished(client, ids) >= RUNS // 5, 120, "a fifth of the runs")
    before = count_finished(client, ids)
    started_before_kill = set(effects.raw)
    old = cluster.kill_master()
    killed_at = time.monotonic()
    STATS["redis_restarts"] += 1
    new = cluster.wait_failover(old.port)
    failover_s = time.monotonic() - killed_at
    print(f"failover to :{new.port} took {failover_s:.1f} s; {before}/{RUNS} runs had finished")
    assert before < RUNS, "the runs finished before the kill"

    done = finish_all(client, ids, timeout=180)
    failed = {rid: h.get("error") for rid, h in done.items() if h["status"] != "SUCCESS"}
    assert not failed, f"{len(failed)} runs failed, e.g. {list(failed.items())[:3]}"
    assert all(w.proc.poll() is None for w in ws.all), "a worker exited"
    assert "Unrecoverable error" not in ws.logs()
    # the writes did wait for a replica, on the old master and on the new one
    assert int(new.client().info("commandstats")["cmdstat_wait"]["calls"]) > 0

    # every task's effect happened once (the provider deduplicates by idempotency key) ...
    expected = {(f"s{i}", t) for i in range(RUNS) for t in TASKS}
    assert set(effects.effects) == expected
    dup = {k: c for k, c in effects.effects.items() if c != 1}
    STATS["duplicate_effects"] += sum(c - 1 for c in dup.values())
    assert not dup, dup
    # ... and reached the provider more than once only if it was in flight at the kill: a
    # completed task's checkpoint was on a replica before the run went on, so it survived
    repeated = {k: c - 1 for k, c in effects.raw.items() if c > 1}
    STATS["raw_repeats"] += sum(repeated.values())
    assert set(repeated) <= started_before_kill, repeated
    assert sum(repeated.values()) <= WORKERS * CONCURRENCY, repeated
    for rid in ids:
        run = client.get_run(rid)
        tasks = {t.key: t for t in run.tasks}
        assert all(tasks[k].status == "COMPLETED" for k in TASKS), run
        assert run.output == [effects.answers[tasks[k].idem] for k in TASKS]

"""Store faults (items 1 and 2): an out-of-memory window or an outage of the store Redis never
reaches a job's code, never finishes a run, and never starts a second execution of a live one.

The store runs on a redis-server of the test's own (AOF on, ``noeviction``); the broker stays
on the suite's server, so only the store misbehaves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from tests.chaos._harness import STATS, RedisServer, wait_until
from tests.chaos.conftest import make_client


@pytest.fixture()
def store() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


def _oom(server: RedisServer, seconds: float) -> None:
    """Every write command answered with OOM for ``seconds`` (``maxmemory`` 1 byte,
    ``noeviction``)."""
    r = server.client()
    r.config_set("maxmemory", "1")
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        r.set("probe", "x")        # the window is real
    time.sleep(seconds)
    r.config_set("maxmemory", "0")


def _start(store: RedisServer, clean, effects, workers_for, **env: str):
    broker = clean.url(1)
    client = make_client(store.url(0), broker)
    ws = workers_for(store.url(0), broker, effects.url, **env)
    ws.start(concurrency=2, name="store-faults")
    return client


def test_a_short_oom_window_costs_no_repeat_and_never_reaches_the_job(
        store, clean, effects, workers_for) -> None:
    client = _start(store, clean, effects, workers_for, TRIGGER_CELERY_LEASE_S="10")
    handles = [client.trigger("guarded", {"tag": f"oom{i}", "delay": 1.5}) for i in range(3)]
    wait_until(lambda: len(effects.raw) == 3, 30, "the three callbacks to be in flight")
    _oom(store, 2.5)   # the callbacks return inside the window: their checkpoints meet OOM
    STATS["oom_windows"] += 1
    for i, h in enumerate(handles):
        out = h.result(timeout=60)
        assert "fallback" not in out, out          # the store error never reached the job
        assert out["tag"] == f"oom{i}"
        run = client.get_run(h.id)
        assert run.executions == 1 and run.tasks[0].attempts == 1
        assert [e.message for e in run.logs] == ["effect done"]
    assert all(n == 1 for n in effects.raw.values()), effects.raw   # no request repeated
    STATS["runs"] += 3
    STATS["store_repeats"] += sum(n - 1 for n in effects.raw.values())


def test_an_oom_longer_than_the_lease_costs_no_repeat_either(
        store, clean, effects, workers_for) -> None:
    """Lease renewals still pass under OOM (a script's PEXPIRE frees nothing but is allowed),
    so the execution keeps its output in memory and writes it when the window closes."""
    client = _start(store, clean, effects, workers_for, TRIGGER_CELERY_LEASE_S="3")
    h = client.trigger("guarded", {"tag": "long-oom", "delay": 1.0})
    wait_until(lambda: len(effects.raw) == 1, 30, "the callback to be in flight")
    _oom(store, 8.0)
    STATS["oom_windows"] += 1
    out = h.result(timeout=60)
    assert "fallback" not in out and out["tag"] == "long-oom"
    run = client.get_run(h.id)
    assert run.executions == 1 and not run.tasks[0].rerun_after_loss
    assert sum(effects.raw.values()) == 1
    STATS["runs"] += 1


def test_an_outage_past_the_lease_stops_the_execution_and_marks_the_rerun(
        store, clean, effects, workers_for) -> None:
    """The callback returns while the store is down for longer than the lease: its output
    cannot be written, the execution stops without finishing, the run resumes once the store
    is back and the task that ran again is marked ``rerun_after_loss``."""
    client = _start(store, clean, effects, workers_for, TRIGGER_CELERY_LEASE_S="3")
    h = client.trigger("guarded", {"tag": "lost", "delay": 1.0})
    wait_until(lambda: len(effects.raw) == 1, 30, "the callback to be in flight")
    store.shutdown()
    time.sleep(8)
    store.start()
    STATS["store_outages"] += 1
    STATS["redis_restarts"] += 1
    out = h.result(timeout=60)
    assert "fallback" not in out and out["tag"] == "lost"
    run = client.get_run(h.id)
    (task,) = run.tasks
    assert run.status == "SUCCESS" and run.executions == 2 and task.rerun_after_loss
    assert effects.effects[("lost", "effect")] == 1   # the provider deduplicated by key
    STATS["runs"] += 1


@pytest.mark.parametrize("outage_s", [5, 40, 120])
def test_an_outage_longer_than_the_lease_starts_no_second_execution(
        store, clean, effects, workers_for, outage_s: int) -> None:
    client = _start(store, clean, effects, workers_for, TRIGGER_CELERY_LEASE_S="3")
    h = client.trigger("long-inline", {"tag": f"out{outage_s}", "seconds": outage_s + 8})
    wait_until(lambda: len(effects.raw) == 1, 30, "the task to start")
    time.sleep(1.0)
    store.shutdown()           # AOF flushed; the lease (3 s) expires during the outage
    time.sleep(outage_s)
    store.start()
    STATS["store_outages"] += 1
    STATS["redis_restarts"] += 1
    out = h.result(timeout=60)
    assert out["tag"] == f"out{outage_s}"
    run = client.get_run(h.id)
    raw = sum(effects.raw.values())
    STATS["store_repeats"] += raw - 1
    assert raw == 1, effects.raw                      # the callback ran once
    assert run.executions == 1 and not run.lost_executions, run
    STATS["runs"] += 1

"""Concurrency keys on real workers: per-key limits, FIFO per key, no starvation across keys,
a killed worker's slot freed with its lease, and the waiting shown by ``runs show``."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.cluster import side_client
from tests.support import Worker
from trigger_celery import (
    Concurrency,
    ConfigurationError,
    TriggerClient,
    ValidationError,
    invoke_trigger,
)


@pytest.fixture()
def conc(store_redis: redis.Redis):
    from tests.conc_app import client

    return client


def _wait_done(handles, timeout: float) -> None:
    for h in handles:
        h.result(timeout=timeout)


def _fifo_window(starts: list[int], order: list[int], limit: int) -> None:
    """Runs start in creation order up to the runs admitted together: a run never starts
    before more than ``limit - 1`` runs of its key created earlier than it."""
    rank = {idx: r for r, idx in enumerate(order)}
    for pos, idx in enumerate(starts):
        later = [i for i in starts[pos + 1:] if rank[i] < rank[idx]]
        assert len(later) <= limit - 1, (idx, later, starts)


def test_definition_is_checked() -> None:
    c = TriggerClient("conc-def")
    with pytest.raises(ConfigurationError):
        Concurrency(limit=0)
    with pytest.raises(ConfigurationError):
        Concurrency(limit=2, key="group")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        c.define_job(id="x", version="1.0.0", trigger=invoke_trigger(), concurrency=2)(
            lambda p, io, ctx: None)
    c.define_job(id="y", version="1.0.0", trigger=invoke_trigger(),
                 concurrency=Concurrency(limit=1, key=lambda p: p["missing"]))(
        lambda p, io, ctx: None)
    with pytest.raises(ValidationError, match="concurrency key function raised KeyError"):
        c.trigger("y", {})


def test_a_canceled_waiting_run_leaves_the_line(conc, store_redis: redis.Redis,
                                                start_worker) -> None:
    start_worker("tests.conc_app", concurrency=3, name="w")
    first = conc.trigger("single", {"index": 0, "hold_s": 2})
    second = conc.trigger("single", {"index": 1})
    third = conc.trigger("single", {"index": 2})
    deadline = time.monotonic() + 20
    while conc.get_run(second.id).wait_reason != "concurrency":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    conc.cancel_run(second.id)
    _wait_done([first, third], timeout=30)
    assert [int(x) for x in store_redis.lrange("side:conc:single", 0, -1)] == [0, 2]
    assert store_redis.zcard(f"{conc.store.job_base('single')}:conc:single:line") == 0


def test_sixty_runs_three_keys_limit_two(conc, store_redis: redis.Redis,
                                         start_worker) -> None:
    for n in range(2):
        start_worker("tests.conc_app", concurrency=3, name=f"c{n}")
    groups = ["a", "b", "c"]
    base = conc.store.job_base("limited")
    holders = {g: f"{base}:conc:limited:{g}:holders" for g in groups}
    peak = dict.fromkeys(groups, 0)
    stop = threading.Event()

    def sample() -> None:
        r = side_client(conc.settings.redis_url, conc.settings.redis_cluster)
        while not stop.is_set():
            for g in groups:
                peak[g] = max(peak[g], int(r.zcard(holders[g])))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    handles = [conc.trigger("limited", {"group": groups[i % 3], "index": i})
               for i in range(60)]
    try:
        _wait_done(handles, timeout=120)
    finally:
        stop.set()
        sampler.join(5)
    side = store_redis
    for g in groups:
        order = [i for i in range(60) if groups[i % 3] == g]
        starts = [int(x) for x in side.lrange(f"side:conc:starts:{g}", 0, -1)]
        assert sorted(starts) == order  # all ran, once each
        assert max(int(x) for x in side.lrange(f"side:conc:peaks:{g}", 0, -1)) <= 2
        assert 1 <= peak[g] <= 2, peak
        _fifo_window(starts, order, 2)
    assert all(conc.get_run(h.id).status == "SUCCESS" for h in handles)
    assert store_redis.zcard(f"{base}:conc:active") == 0 or all(
        store_redis.zcard(f"{base}:conc:limited:{g}:line") == 0 for g in groups)


def test_keys_do_not_starve_each_other(conc, store_redis: redis.Redis, start_worker) -> None:
    """A run of key b created behind ten runs of key a starts at once: keys have their own
    lines and slots."""
    start_worker("tests.conc_app", concurrency=4, name="w")
    busy = [conc.trigger("limited", {"group": "a", "index": i, "hold_s": 0.5})
            for i in range(10)]
    other = conc.trigger("limited", {"group": "b", "index": 0, "hold_s": 0})
    other.result(timeout=30)
    assert store_redis.llen("side:conc:starts:a") <= 4
    _wait_done(busy, timeout=60)
    assert store_redis.lrange("side:conc:all", 0, -1).index("b") <= 4


def test_killed_workers_slots_free_with_their_lease(conc, store_redis: redis.Redis,
                                                    worker_env: dict[str, str],
                                                    start_worker) -> None:
    from trigger_celery.cli._timeline import render

    victim = Worker("tests.conc_app", worker_env, concurrency=4, name="victim").wait_ready()
    try:
        long = [conc.trigger("limited", {"group": "k", "index": i, "hold_s": 120,
                                         "first_only": True}) for i in range(2)]
        deadline = time.monotonic() + 30
        while store_redis.llen("side:conc:starts:k") < 2:
            assert time.monotonic() < deadline, victim.output()[-3000:]
            time.sleep(0.1)
        queued = [conc.trigger("limited", {"group": "k", "index": i}) for i in range(2, 5)]
        deadline = time.monotonic() + 20
        while any(conc.get_run(h.id).wait_reason != "concurrency" for h in queued):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        shown = render(conc.get_run(queued[0].id))
        from rich.console import Console

        console = Console(width=200, record=True)
        console.print(shown)
        assert "waiting for a concurrency slot of key 'k' (limit 2)" in console.export_text()
        victim.kill()
    finally:
        victim.stop()
    start_worker("tests.conc_app", concurrency=2, name="rescuer")
    _wait_done([*long, *queued], timeout=90)
    runs = [conc.get_run(h.id) for h in [*long, *queued]]
    assert all(r.status == "SUCCESS" for r in runs)
    assert all(r.lost_executions >= 1 for r in runs[:2])
    assert store_redis.zcard(f"{conc.store.job_base('limited')}:conc:limited:k:holders") == 0


def test_waiting_runs_hold_no_slot(conc, store_redis: redis.Redis, start_worker) -> None:
    """A run holds a slot only while it executes: two runs of a limit-2 key waiting in
    ``io.wait`` let two more runs of the key start and finish meanwhile. A job-wide limit of 1
    runs its runs one at a time, in creation order."""
    start_worker("tests.conc_app", concurrency=2, name="w")
    waiting = [conc.trigger("limited", {"group": "w", "index": i, "wait_s": 4, "hold_s": 0})
               for i in (0, 1)]
    time.sleep(1)
    others = [conc.trigger("limited", {"group": "w", "index": i, "hold_s": 0})
              for i in (2, 3)]
    _wait_done(others, timeout=30)
    _wait_done(waiting, timeout=30)
    done_others = max(conc.get_run(h.id).finished_at or 0 for h in others)
    assert done_others < min(conc.get_run(h.id).finished_at or 0 for h in waiting)
    singles = [conc.trigger("single", {"index": i, "hold_s": 0.2}) for i in range(5)]
    _wait_done(singles, timeout=60)
    assert [int(x) for x in store_redis.lrange("side:conc:single", 0, -1)] == list(range(5))
    assert all(conc.get_run(h.id).concurrency_key == "" for h in singles)


def test_enqueuer_without_the_job(conc, store_redis: redis.Redis, start_worker) -> None:
    """An app that does not import the job creates runs without a key; the worker that takes
    them computes it and enforces the limit."""
    start_worker("tests.conc_app", concurrency=4, name="w")
    app = TriggerClient("conc-enqueuer", redis_url=conc.settings.redis_url)
    assert "limited" not in app.jobs
    handles = [app.trigger("limited", {"group": "x", "index": i, "hold_s": 0.5})
               for i in range(6)]
    _wait_done(handles, timeout=60)
    assert max(int(x) for x in store_redis.lrange("side:conc:peaks:x", 0, -1)) <= 2
    runs = [conc.get_run(h.id) for h in handles]
    assert all(r.status == "SUCCESS" and r.concurrency_key == "x" for r in runs)
    assert all(r.executions == 1 for r in runs)

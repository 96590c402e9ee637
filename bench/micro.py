"""In-process costs, measured on the engine's own objects (no workers): a bare Redis round
trip, a completed task's replay lookup, and a new inline task's overhead over its callback.

A :class:`~trigger_celery._replay.RunExecution` is built the way ``Executor.execute`` builds
it: ``acquire.lua`` takes the lease and returns the run hash and its task records.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
import uuid
from typing import Any

from bench import config
from trigger_celery import TriggerClient
from trigger_celery._keys import idempotency_key, new_run_id
from trigger_celery._replay import RunExecution
from trigger_celery._store import dumps

ROUNDS = 7


def _us(ns: float) -> float:
    return round(ns / 1000, 2)


def redis_rtt(client: TriggerClient, n: int = 2000) -> dict[str, float]:
    """Median µs of PING and of GET on the store's connection."""
    r = client.store.redis
    out = {}
    for name, call in (("ping", r.ping), ("get", lambda: r.get("bench:none"))):
        samples = []
        for _ in range(n):
            t = time.perf_counter_ns()
            call()
            samples.append(time.perf_counter_ns() - t)
        out[f"{name}_us"] = _us(statistics.median(samples))
    return out


def new_execution(client: TriggerClient, job_id: str) -> RunExecution:
    """A run created in the store and an execution holding its lease, as a worker would."""
    store = client.store
    run_id = new_run_id()
    now = time.time()
    store.create_run(run_id, {"id": run_id, "job_id": job_id, "job_version": "1.0.0",
                              "payload": "{}", "status": "QUEUED", "seq": 0, "executions": 0,
                              "created_at": now, "updated_at": now})
    return load_execution(client, run_id, job_id)


def load_execution(client: TriggerClient, run_id: str, job_id: str) -> RunExecution:
    store = client.store
    run, _, _, lease = store.run_keys(run_id)
    store.redis.delete(lease)  # a fresh execution of the same run
    store.redis.hset(run, "status", "QUEUED")
    seq = store.redis.hget(run, "seq")
    token = uuid.uuid4().hex
    got = store.acquire(run_id, token, int(seq or 0), 60_000)
    assert got.outcome == "ok", got
    return RunExecution(client.executor, run_id, token, got.run, got.tasks,
                        client.jobs[job_id].integrations)


def _timed(fn: Any) -> int:
    t = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - t


def inline_costs(client: TriggerClient, n: int = 1000) -> dict[str, float]:
    """New inline task overhead over its callback, and a completed task's replay lookup (µs)."""
    work = config.work
    callback_ns = min(_timed(lambda: [work() for _ in range(n)]) for _ in range(ROUNDS)) / n
    new_ns, lookup_ns, load_ns = [], [], []
    for _ in range(ROUNDS):
        x = new_execution(client, "bench-inline")
        new_ns.append(_timed(lambda x=x: [x.io.run_task(f"t{i}", work) for i in range(n)]) / n)
    run_id = x.run_id
    for _ in range(ROUNDS):
        t = time.perf_counter_ns()
        x = load_execution(client, run_id, "bench-inline")
        load_ns.append((time.perf_counter_ns() - t) / n)
        lookup_ns.append(_timed(lambda x=x: [x.io.run_task(f"t{i}", work)
                                              for i in range(n)]) / n)
    assert x.replayed == n
    return {
        "callback_us": _us(callback_ns),
        "new_task_us": _us(statistics.median(new_ns)),
        "new_task_overhead_us": _us(statistics.median(new_ns) - callback_ns),
        "lookup_us": _us(statistics.median(lookup_ns)),
        "load_per_task_us": _us(statistics.median(load_ns)),
    }


def dispatched_lookup(client: TriggerClient, url: str, n: int = 1000) -> dict[str, float]:
    """Replay lookup of a completed dispatched task (``io.bench.http.get``), records written as
    the engine writes them when the task completes."""
    x = new_execution(client, "bench-dispatch")
    records = {}
    for i in range(n):
        idem = idempotency_key(x.run_id, None, f"t{i}")
        records[idem] = dumps({
            "key": f"t{i}", "idem": idem, "parent": None, "kind": "dispatched",
            "name": "bench.http.get", "display": f"GET {url}", "icon": "gauge",
            "status": "COMPLETED", "attempts": 1, "params": {"url": url}, "properties": [],
            "connection": "bench", "queue": "bench", "created_at": time.time(),
            "completed_at": time.time(), "duration_ms": 1.0,
            "output": {"id": 1, "ok": True, "items": list(range(10))},
        })
    client.store.redis.hset(x.keys[1], mapping=records)
    lookup_ns = []
    for _ in range(ROUNDS):
        x = load_execution(client, x.run_id, "bench-dispatch")
        lookup_ns.append(_timed(lambda x=x: [x.io.bench.http.get(f"t{i}", url=url)
                                             for i in range(n)]) / n)
    assert x.replayed == n
    return {"dispatched_lookup_us": _us(statistics.median(lookup_ns))}


def inline_memory(client: TriggerClient, sizes: tuple[int, ...]) -> dict[int, float]:
    """Peak Python memory (tracemalloc, KiB) of one execution running ``n`` new inline tasks."""
    out = {}
    for n in sizes:
        x = new_execution(client, "bench-inline")
        tracemalloc.start()
        for i in range(n):
            x.io.run_task(f"t{i}", config.work)
        out[n] = round(tracemalloc.get_traced_memory()[1] / 1024, 1)
        tracemalloc.stop()
    return out

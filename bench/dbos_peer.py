"""A peer side by side: DBOS Transact on PostgreSQL doing the same work as trigger-celery's inline
runs.

DBOS: a workflow ``bench_wf(n, token)`` of ``n`` steps, each calling :func:`bench.config.work`,
enqueued by this process with a ``DBOSClient`` on a DBOS queue and executed by separate worker
processes (``bench.dbos_worker``: launch DBOS, listen to that queue, dequeue). Configurations:
the queue's default polling (``polling_interval_sec`` 1.0) and tuned to 10 ms, each with one
worker process and with two. trigger-celery: runs of ``n`` inline tasks (``io.run_task``) on one
``celery worker`` (prefork ``-c 2``, the benchmark's, and ``-c 8``, sized for I/O-bound work),
with the store's Redis on AOF ``appendfsync everysec`` and on ``always`` (``CONFIG SET`` between
measurements, restored after).

Every side ends the same way: one ``RPUSH`` that the benchmark ``BLPOP``s, then a check that the
unit finished (``SUCCESS``: run hash in Redis, ``dbos.workflow_status`` in PostgreSQL).

The DBOS system database is a fresh ``bench_dbos`` (``BENCH_DBOS_DB``) on the server at
``BENCH_PG`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``), created at start and
dropped at the end; no other database is touched.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import redis

from bench import app, scenarios
from bench.infra import Worker, progress

ADMIN_URL = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = os.environ.get("BENCH_DBOS_DB", "bench_dbos")
QUEUE_POLL = {"default": 1.0, "10ms": 0.01}  # the Queue's polling_interval_sec


def db_url(name: str = DB_NAME) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def pg_unavailable() -> str | None:
    """Why the peer cannot run (``None`` when PostgreSQL answers and dbos imports)."""
    try:
        import dbos  # noqa: F401
    except ImportError as e:
        return f"dbos not installed ({e}); `uv sync --group bench`"
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as c:
            c.execute("select 1")
    except psycopg.Error as e:
        why = " ".join(str(e).split())[:160]
        return (f"PostgreSQL at {ADMIN_URL} not answering ({why}); set BENCH_PG, "
                "or install and start Debian's `postgresql` package")
    return None


@contextmanager
def fresh_database() -> Iterator[str]:
    """``bench_dbos`` created empty for this run (dropped first if a previous run left it) and
    dropped after; yields its URL."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{DB_NAME}"')
    try:
        yield db_url()
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


class Dbos:
    """The client side: enqueue with ``DBOSClient``, confirm ``SUCCESS`` with one query."""

    def __init__(self, url: str):
        from dbos import DBOSClient

        self.url = url
        self.client = DBOSClient(system_database_url=url)
        self.pg = psycopg.connect(url, autocommit=True)

    def close(self) -> None:
        self.client.destroy()
        self.pg.close()

    def side(self, queue: str, n: int) -> scenarios.Side:
        def submit() -> str:
            wid = uuid.uuid4().hex
            self.client.enqueue({"workflow_name": "bench_wf", "queue_name": queue,
                                 "workflow_id": wid}, n, wid)
            return wid
        return scenarios.Side(f"DBOS workflow ({n}) on {queue}", submit, self.confirm)

    def confirm(self, ids: list[str], timeout_s: float = 60) -> None:
        """Wait until every workflow is SUCCESS (the done signal comes just before DBOS records
        the workflow's output)."""
        deadline = time.monotonic() + timeout_s
        while True:
            row = self.pg.execute(
                "select count(*) filter (where status = 'SUCCESS'), "
                "count(*) filter (where status in ('ERROR', 'CANCELLED')) "
                "from dbos.workflow_status where workflow_uuid = any(%s)", (ids,)).fetchone()
            assert row is not None
            if row[0] == len(ids):
                return
            if row[1]:
                raise RuntimeError("a DBOS benchmark workflow ended in ERROR or CANCELLED")
            if time.monotonic() > deadline:
                raise TimeoutError(f"DBOS workflows not finished: {row[0]}/{len(ids)}")
            time.sleep(0.0005)


def start_workers(url: str, queue: str, poll: float, count: int) -> list[Worker]:
    ws = [Worker("", f"dbos-{queue}-{i}",
                 cmd=[sys.executable, "-m", "bench.dbos_worker", url, queue, str(poll)])
          for i in range(count)]
    try:
        for w in ws:
            w.wait_ready()
    except BaseException:
        for w in ws:
            w.stop()
        raise
    return ws


def measure_side(s: scenarios.Side, *, in_flight: int, total: int, samples: int,
                 acc: dict[str, Any] | None = None) -> dict[str, Any]:
    """One throughput measurement (``total`` units, ``in_flight`` at a time, after a short
    warm-up) and ``samples`` latencies one at a time, added to ``acc`` (see :func:`summary`)."""
    acc = acc or {"rounds": [], "latency_ms": [], "total": total}
    scenarios.throughput(s, in_flight=min(4, in_flight), total=min(8, total))  # warm-up
    acc["rounds"].append(round(scenarios.throughput(s, in_flight=in_flight, total=total), 1))
    acc["latency_ms"] += scenarios.latency(s, samples=samples)
    return acc


def summary(acc: dict[str, Any]) -> dict[str, Any]:
    """Median throughput over the measurements, p50/p95 over every latency sample."""
    lat = acc["latency_ms"]
    return {"throughput_rps": round(statistics.median(acc["rounds"]), 1),
            "throughput_rounds": acc["rounds"], "p50_ms": round(statistics.median(lat), 3),
            "p95_ms": round(statistics.quantiles(lat, n=20)[18], 3) if len(lat) > 1 else None,
            "total": acc["total"], "samples": len(lat)}


def figures(s: scenarios.Side, *, in_flight: int, total: int, samples: int) -> dict[str, Any]:
    return summary(measure_side(s, in_flight=in_flight, total=total, samples=samples))


def _fsync(r: redis.Redis, mode: str) -> None:
    r.config_set("appendfsync", mode)


def ours(*, in_flight: int, total: int, samples: int, sizes: tuple[int, ...],
         acc: dict[str, Any] | None = None,
         config: str = "celery -c 2") -> tuple[dict[str, Any], list[str]]:
    """trigger-celery runs of ``n`` inline tasks under ``appendfsync`` everysec and always,
    added to ``acc`` under ``"<config>|<mode>/<n>"`` (called before and after DBOS, per worker
    configuration; :func:`summary` each entry after). Needs that trigger worker running, alone.
    Switching fsync needs the store's server on AOF and ``CONFIG SET`` allowed; otherwise the
    mode is measured as found and noted."""
    r = app.client.store.redis
    notes: list[str] = []
    out: dict[str, Any] = acc if acc is not None else {}
    try:
        cfg = r.config_get("append*")
    except redis.ResponseError as e:
        cfg = {}
        notes.append(f"CONFIG GET refused ({e}): measured the store as configured")
    aof, original = cfg.get("appendonly"), cfg.get("appendfsync")
    modes = ["everysec", "always"] if aof == "yes" else []
    if aof is not None and aof != "yes":
        notes.append("the store's Redis has AOF off (appendonly no): trigger-celery measured "
                     "without fsync; start the bench Redis with --appendonly yes")
    try:
        for mode in modes or ["as found"]:
            if mode != "as found":
                _fsync(r, mode)
            for n in sizes:
                key = f"{config}|{mode}/{n}"
                out[key] = measure_side(scenarios.inline_run(n), in_flight=in_flight,
                                        total=total, samples=samples, acc=out.get(key))
    finally:
        if modes and original:
            _fsync(r, original)
    out["appendonly"], out["appendfsync_original"] = aof, original
    return out, notes


def peer(url: str, *, in_flight: int, total: int, samples: int, sizes: tuple[int, ...],
         scale: tuple[int, ...]) -> dict[str, Any]:
    """DBOS at each queue polling and worker count: figures per workflow size, and (10 ms
    polling, one worker) one workflow of each size in ``scale`` for the plot. At 1 s polling
    throughput and latency are bounded by the poll, so fewer units are measured there."""
    out: dict[str, Any] = {"configs": {}, "scale": []}
    d = None
    try:
        for poll_name, poll in QUEUE_POLL.items():
            queue = f"bench_{poll_name}"
            for workers in (1, 2):
                progress(f"  DBOS, queue polling {poll} s, {workers} worker process(es)")
                ws = start_workers(url, queue, poll, workers)
                try:
                    d = d or Dbos(url)
                    slow = poll >= 0.5
                    cfg = {}
                    for n in sizes:
                        cfg[str(n)] = figures(
                            d.side(queue, n), in_flight=in_flight,
                            total=min(total, 2 * in_flight) if slow else total,
                            samples=min(samples, 5) if slow else samples)
                    out["configs"][f"poll {poll_name}, {workers} worker"
                                   + ("s" if workers > 1 else "")] = {
                        "poll_s": poll, "workers": workers, "sizes": cfg}
                    if not slow and workers == 1:
                        for n in scale:
                            lat = scenarios.latency(d.side(queue, n), samples=1)[0]
                            out["scale"].append({"n": n, "time_s": round(lat / 1000, 4),
                                                 "per_task_ms": round(lat / n, 4)})
                finally:
                    for w in ws:
                        w.stop()
    finally:
        if d is not None:
            d.close()
    return out


def ours_best(trigger: dict[str, Any], mode: str, n: int) -> dict[str, Any]:
    """trigger-celery's best throughput and best p50 at size ``n`` under fsync ``mode`` over its
    worker configurations (``trigger``: the summaries by ``"<config>|<mode>/<n>"``)."""
    cfgs = [(k.split("|")[0], v) for k, v in trigger.items() if k.endswith(f"|{mode}/{n}")]
    tk, tb = max(cfgs, key=lambda x: x[1]["throughput_rps"])
    lk, lb = min(cfgs, key=lambda x: x[1]["p50_ms"])
    return {"throughput_rps": tb["throughput_rps"], "throughput_config": tk,
            "p50_ms": lb["p50_ms"], "p50_config": lk}


def best(p: dict[str, Any], n: int) -> dict[str, Any]:
    """DBOS's best throughput and best p50 at size ``n`` over every configuration."""
    cfgs = [(k, c["sizes"][str(n)]) for k, c in p["configs"].items()]
    tk, tb = max(cfgs, key=lambda x: x[1]["throughput_rps"])
    lk, lb = min(cfgs, key=lambda x: x[1]["p50_ms"])
    return {"throughput_rps": tb["throughput_rps"], "throughput_config": tk,
            "p50_ms": lb["p50_ms"], "p50_config": lk}

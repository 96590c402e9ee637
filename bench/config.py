"""Where the benchmark runs and the work both sides do.

The store, the broker and the benchmark's own bookkeeping each get a dedicated Redis database
(flushed with ``FLUSHDB`` at start, never ``FLUSHALL``). Environment variables override them.
"""

from __future__ import annotations

import os

import redis

REDIS_BASE = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
STORE_DB = int(os.environ.get("BENCH_STORE_DB", "12"))
BROKER_DB = int(os.environ.get("BENCH_BROKER_DB", "13"))
SIDE_DB = int(os.environ.get("BENCH_SIDE_DB", "14"))  # done signals, resume stats, readiness

STORE_URL = f"{REDIS_BASE}/{STORE_DB}"
BROKER_URL = f"{REDIS_BASE}/{BROKER_DB}"
SIDE_URL = f"{REDIS_BASE}/{SIDE_DB}"

DONE_KEY = "bench:done"        # list: one entry per finished unit of work (run or raw task)
RESUMES_KEY = "bench:resumes"  # list: one JSON stat per run execution (see app.py)
READY_KEY = "bench:ready:"     # + worker name: set when a worker process is ready


def work() -> dict[str, int]:
    """The callback both sides run: a little CPU work (about 20 µs) returning JSON."""
    return {"sum": sum(i * i for i in range(400))}


side = redis.Redis.from_url(SIDE_URL)


def done(token: str) -> None:
    """How both sides end a unit of work (a run, a raw task, a DBOS workflow): one ``RPUSH``
    of its id to :data:`DONE_KEY`, which the benchmark waits on with ``BLPOP``."""
    side.rpush(DONE_KEY, token)


def mark_ready(default_name: str = "worker") -> None:
    """A benchmark worker process says it is ready: ``READY_KEY`` + its name
    (``BENCH_WORKER_NAME``, else ``default_name``) set to its pid (``bench.infra.Worker``)."""
    side.set(READY_KEY + os.environ.get("BENCH_WORKER_NAME", default_name), os.getpid())

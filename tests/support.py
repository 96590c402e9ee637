"""Shared fixtures: a real Redis (the one on 127.0.0.1:6379, or one we start), dedicated
databases for the store and the broker, and real ``celery worker`` processes.

The store database is flushed before each test; workers start once per module (a start costs
seconds on two cores) unless a test needs its own to kill.

``TESTS_REDIS_CLUSTER=1`` puts the store on a Redis Cluster of three masters this session starts
on loopback (:mod:`tests.cluster`; the broker stays the single Redis): clients and workers get
``redis_cluster=true`` and the cluster's seed URL, and :func:`store_redis` is a cluster client.
``TESTS_STORE_SHARDS=N`` sets ``store_shards`` for them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from trigger_celery.testing.worker import WorkerProcess

ROOT = Path(__file__).resolve().parents[1]
STORE_DB = int(os.environ.get("TESTS_STORE_DB", "11"))
BROKER_DB = int(os.environ.get("TESTS_BROKER_DB", "10"))
#: Recorded and published API data (../shared/fixtures); tests that use it skip when absent.
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def redis_base() -> Iterator[str]:
    """``redis://HOST:PORT``: ``TESTS_REDIS_URL`` when set (two suites on one machine each take
    their own server), else 6379 when something answers there, else a server we start."""
    if os.environ.get("TESTS_REDIS_URL"):
        yield os.environ["TESTS_REDIS_URL"].rstrip("/")
        return
    if _port_open(6379):
        yield "redis://127.0.0.1:6379"
        return
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.exit("no Redis on 127.0.0.1:6379 and no redis-server to start", 2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL)
    for _ in range(100):
        if _port_open(port):
            break
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


CLUSTER = os.environ.get("TESTS_REDIS_CLUSTER", "") not in ("", "0")


@pytest.fixture(scope="session")
def store_cluster() -> Iterator[str | None]:
    """The seed URL of the session's Redis Cluster (``TESTS_REDIS_CLUSTER=1``), else None."""
    if not CLUSTER:
        yield None
        return
    from tests.cluster import RedisCluster

    cluster = RedisCluster()
    yield cluster.url
    cluster.stop()


def store_settings_env() -> dict[str, str]:
    """``TRIGGER_CELERY_*`` variables of the store's mode this session (cluster, shards)."""
    env = {}
    if CLUSTER:
        env["TRIGGER_CELERY_REDIS_CLUSTER"] = "true"
    if os.environ.get("TESTS_STORE_SHARDS"):
        env["TRIGGER_CELERY_STORE_SHARDS"] = os.environ["TESTS_STORE_SHARDS"]
    return env


def store_client(url: str, *, decode: bool = True) -> redis.Redis:
    """A client of the store at ``url`` (a cluster client in cluster mode)."""
    if CLUSTER:
        from redis.cluster import RedisCluster

        node: Any = RedisCluster.from_url(url, decode_responses=decode)
        return node  # type: ignore[no-any-return]
    return redis.Redis.from_url(url, decode_responses=decode)


@pytest.fixture(scope="session")
def urls(redis_base: str, store_cluster: str | None) -> dict[str, str]:
    return {"store": store_cluster or f"{redis_base}/{STORE_DB}",
            "broker": f"{redis_base}/{BROKER_DB}"}


@pytest.fixture(scope="session", autouse=True)
def _test_env(urls: dict[str, str]) -> Iterator[None]:
    """The client in tests/app.py (and any TriggerClient a test makes) reads these."""
    mode = store_settings_env()
    old = {k: os.environ.get(k) for k in ("TRIGGER_CELERY_REDIS_URL", "TRIGGER_CELERY_BROKER_URL",
                                          *mode)}
    os.environ["TRIGGER_CELERY_REDIS_URL"] = urls["store"]
    os.environ["TRIGGER_CELERY_BROKER_URL"] = urls["broker"]
    os.environ.update(mode)
    r = redis.Redis.from_url(urls["broker"])
    r.flushdb()  # stale messages of an earlier session
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture()
def store_redis(urls: dict[str, str]) -> Iterator[redis.Redis]:
    """The store database, flushed before the test."""
    r = store_client(urls["store"])
    r.flushdb()
    yield r
    r.close()


class Worker(WorkerProcess):
    """A worker on this repository's test apps (cwd: the repository root)."""

    def __init__(self, app: str, env: dict[str, str], **options):
        super().__init__(app, env, cwd=ROOT, **options)


@pytest.fixture(scope="session")
def worker_env(urls: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGER_CELERY_")}
    env.update(TRIGGER_CELERY_REDIS_URL=urls["store"], TRIGGER_CELERY_BROKER_URL=urls["broker"],
               PYTHONPATH=str(ROOT), **store_settings_env())
    return env


@pytest.fixture()
def start_worker(worker_env: dict[str, str]) -> Iterator:
    """Factory: ``start_worker(app="tests.app", **env)`` -> a ready :class:`Worker`."""
    started: list[Worker] = []

    def start(app: str = "tests.app", *, queues: str | None = None, concurrency: int = 2,
              pool: str = "prefork", name: str = "w", **env: str) -> Worker:
        w = Worker(app, {**worker_env, **env}, queues=queues, concurrency=concurrency, pool=pool,
                   name=name)
        started.append(w)
        return w.wait_ready()

    yield start
    for w in started:
        w.stop()


@pytest.fixture(scope="module")
def module_worker(worker_env: dict[str, str]) -> Iterator[Worker]:
    """One worker for a whole module, on tests/app.py."""
    w = Worker("tests.app", worker_env, name="module").wait_ready()
    yield w
    w.stop()


@pytest.fixture()
def client(store_redis: redis.Redis, module_worker: Worker):
    """The tests' TriggerClient with a clean store and a running worker."""
    from tests.app import client

    return client

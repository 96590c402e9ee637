"""Fixtures of the chaos suite: our own redis-server (AOF on), the effect server, workers on
``tests.chaos.app`` with short leases, and the summary printed at the end of the session.

With ``TESTS_REDIS_CLUSTER=1`` the :func:`clean` server's store (``url(0)``, ``client(0)``) is the
session's Redis Cluster; its broker (``url(1)``) stays on our own redis-server. Tests that start
their own server (restarts, eviction, Sentinel, replicas) keep it for the store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chaos._harness import (
    CHAOS_ENV,
    STAT_NAMES,
    STATS,
    EffectServer,
    RedisServer,
    Workers,
    base_env,
)
from tests.support import CLUSTER, store_client, store_settings_env

SECRET_TOKEN = "ghp_chaosTOKEN0123456789abcdefSECRET"
SECRET_API_KEY = "sk-chaosAPIKEY9876543210zyxwvuSECRET"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.chaos)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not STATS:
        return
    terminalreporter.section("chaos summary")
    for key, label in STAT_NAMES:
        terminalreporter.write_line(f"{label:<46} {STATS.get(key, 0)}")


@pytest.fixture(scope="session")
def effects() -> Iterator[EffectServer]:
    server = EffectServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chaos_redis() -> Iterator[RedisServer]:
    """The suite's own redis-server: store in DB 0, broker in DB 1 (no other test touches it)."""
    server = RedisServer()
    yield server
    server.stop()


class ClusterStore:
    """``chaos_redis`` with its store database replaced by the session's Redis Cluster."""

    def __init__(self, server: RedisServer, cluster_url: str):
        self.server, self.cluster_url = server, cluster_url

    def url(self, db: int) -> str:
        return self.cluster_url if db == 0 else self.server.url(db)

    def client(self, db: int = 0, *, decode: bool = True) -> Any:
        if db == 0:
            return store_client(self.cluster_url, decode=decode)
        return self.server.client(db, decode=decode)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)


@pytest.fixture(autouse=True)
def _store_mode_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chaos tests name their store's URL; the cluster settings go with the cluster's URL only
    (:func:`cluster_settings`), never to a test's own server through the environment."""
    monkeypatch.delenv("TRIGGER_CELERY_REDIS_CLUSTER", raising=False)
    monkeypatch.delenv("TRIGGER_CELERY_STORE_SHARDS", raising=False)


@pytest.fixture()
def clean(chaos_redis: RedisServer, effects: EffectServer,
          store_cluster: str | None) -> RedisServer:
    server: Any = ClusterStore(chaos_redis, store_cluster) if store_cluster else chaos_redis
    for db in (0, 1):
        server.client(db).flushdb()
    effects.reset()
    return server  # type: ignore[no-any-return]


def cluster_settings(store_url: str) -> dict[str, str]:
    """``TRIGGER_CELERY_*`` of the store's mode when ``store_url`` is the session's cluster."""
    return store_settings_env() if CLUSTER and store_url == os.environ.get(
        "TRIGGER_CELERY_REDIS_URL") else {}


def store_settings(store_url: str) -> dict[str, str]:
    """:func:`cluster_settings` as ``TriggerClient`` keywords."""
    return {k.removeprefix("TRIGGER_CELERY_").lower(): v
            for k, v in cluster_settings(store_url).items()}


def make_client(store_url: str, broker_url: str, **settings: Any) -> Any:
    from tests.chaos.app import build

    env = {**CHAOS_ENV, **cluster_settings(store_url)}
    defaults = {k.removeprefix("TRIGGER_CELERY_").lower(): v for k, v in env.items()}
    return build(redis_url=store_url, broker_url=broker_url, **{**defaults, **settings})


@pytest.fixture()
def workers_for() -> Iterator[Any]:
    """Factory: ``workers_for(store_url, broker_url, **env)`` -> :class:`Workers`."""
    made: list[Workers] = []

    def make(store_url: str, broker_url: str, http_url: str, **env: str) -> Workers:
        w = Workers(base_env(
            TRIGGER_CELERY_REDIS_URL=store_url, TRIGGER_CELERY_BROKER_URL=broker_url,
            CHAOS_HTTP_URL=http_url, CHAOS_SIDEFX_TOKEN=SECRET_TOKEN,
            CHAOS_ORACLE_API_KEY=SECRET_API_KEY, **{**cluster_settings(store_url), **env}))
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop_all()

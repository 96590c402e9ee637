"""Fixtures of the chaos suite: our own redis-server (AOF on), the effect server, workers on
``tests.chaos.app`` with short leases, and the summary printed at the end of the session."""

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


@pytest.fixture()
def clean(chaos_redis: RedisServer, effects: EffectServer) -> RedisServer:
    for db in (0, 1):
        chaos_redis.client(db).flushdb()
    effects.reset()
    return chaos_redis


def make_client(store_url: str, broker_url: str, **settings: Any) -> Any:
    from tests.chaos.app import build

    chaos = {k.removeprefix("TRIGGER_CELERY_").lower(): v for k, v in CHAOS_ENV.items()}
    return build(redis_url=store_url, broker_url=broker_url, **{**chaos, **settings})


@pytest.fixture()
def workers_for() -> Iterator[Any]:
    """Factory: ``workers_for(store_url, broker_url, **env)`` -> :class:`Workers`."""
    made: list[Workers] = []

    def make(store_url: str, broker_url: str, http_url: str, **env: str) -> Workers:
        w = Workers(base_env(
            TRIGGER_CELERY_REDIS_URL=store_url, TRIGGER_CELERY_BROKER_URL=broker_url,
            CHAOS_HTTP_URL=http_url, CHAOS_SIDEFX_TOKEN=SECRET_TOKEN,
            CHAOS_ORACLE_API_KEY=SECRET_API_KEY, **env))
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop_all()

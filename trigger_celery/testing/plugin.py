"""pytest plugin for users' own tests (loaded automatically once trigger-celery is installed).

Fixtures:
    trigger_redis_url: a Redis database URL for this test, flushed before it
        (``TRIGGER_CELERY_TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/14``).
    trigger_replay_server: a started :class:`~trigger_celery.testing.ReplayServer`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture()
def trigger_redis_url() -> Iterator[str]:
    """A clean Redis database for one test; never ``FLUSHALL``."""
    import redis

    url = os.environ.get("TRIGGER_CELERY_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    r = redis.Redis.from_url(url)
    r.flushdb()
    yield url
    r.close()


@pytest.fixture()
def trigger_replay_server() -> Iterator[Any]:
    """A replay server on 127.0.0.1 (free port), stopped after the test."""
    from trigger_celery.testing.replay import ReplayServer

    server = ReplayServer()
    server.start()
    yield server
    server.stop()

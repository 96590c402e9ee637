"""pytest plugin for users' own tests (loaded automatically once trigger-celery is installed).

Fixtures:
    trigger_redis_url: a Redis database URL for this test, flushed before it
        (``TRIGGER_CELERY_TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/15``); never
        ``FLUSHALL``.
    trigger_replay_server: a started :class:`~trigger_celery.testing.ReplayServer`.
    trigger_worker: a factory ``trigger_worker("myapp.jobs", **env)`` starting a real
        ``celery worker`` on that app against ``trigger_redis_url`` (store and broker), stopped
        after the test. Extra keyword arguments become environment variables of the worker.
        In a test that also uses ``trigger_clock``, its workers run with the test clock.
    trigger_clock: a :class:`~trigger_celery.testing.TestClock` on ``trigger_redis_url`` (key
        prefix ``TRIGGER_CELERY_KEY_PREFIX``, default ``tc``) that the test advances to skip
        time; it sets ``TRIGGER_CELERY_TEST_CLOCK=1`` for the test (clients made in it) and
        for the workers ``trigger_worker`` starts.

Example::

    def test_triage(trigger_redis_url, trigger_replay_server, trigger_worker, monkeypatch):
        trigger_replay_server.load("tests/recordings/triage.json")
        monkeypatch.setenv("TRIGGER_CELERY_REDIS_URL", trigger_redis_url)
        trigger_worker("myapp.jobs", GITHUB_TOKEN="test",
                       MYAPP_GITHUB_URL=trigger_replay_server.base_url)
        from myapp.jobs import client
        assert client.trigger("triage", {...}).result(timeout=30) == {...}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: The ``test_clock`` setting's environment variable.
CLOCK_ENV = "TRIGGER_CELERY_TEST_CLOCK"


@pytest.fixture()
def trigger_redis_url() -> Iterator[str]:
    """A clean Redis database for one test."""
    import redis

    url = os.environ.get("TRIGGER_CELERY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    r = redis.Redis.from_url(url)
    r.flushdb()
    yield url
    r.close()


@pytest.fixture()
def trigger_replay_server() -> Iterator[Any]:
    """A replay server on 127.0.0.1 (free port), stopped after the test."""
    from trigger_celery.testing.replay import ReplayServer

    with ReplayServer() as server:
        yield server


@pytest.fixture()
def trigger_clock(trigger_redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The test clock of the app on ``trigger_redis_url``, at offset 0 (see the module
    docstring)."""
    from trigger_celery.testing.clock import TestClock

    monkeypatch.setenv(CLOCK_ENV, "1")
    clock = TestClock(trigger_redis_url,
                      key_prefix=os.environ.get("TRIGGER_CELERY_KEY_PREFIX") or "tc")
    yield clock
    clock.close()


@pytest.fixture()
def trigger_worker(trigger_redis_url: str,
                   request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Factory of real worker processes on ``trigger_redis_url``; all stopped after the test."""
    from trigger_celery.testing.worker import WorkerProcess

    started: list[WorkerProcess] = []
    clock = "trigger_clock" in request.fixturenames

    def start(app: str, *, queues: str | None = None, concurrency: int = 2,
              **env: str) -> WorkerProcess:
        environ = {**os.environ, "TRIGGER_CELERY_REDIS_URL": trigger_redis_url,
                   "TRIGGER_CELERY_BROKER_URL": trigger_redis_url,
                   "TRIGGER_CELERY_REDIS_CLUSTER": "false",  # one Redis database
                   **({CLOCK_ENV: "1"} if clock else {}), **env}
        environ.setdefault("PYTHONPATH", os.getcwd())
        worker = WorkerProcess(app, environ, queues=queues, concurrency=concurrency)
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()

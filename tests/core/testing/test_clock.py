"""The test clock (``test_clock`` setting, ``trigger_celery.testing.TestClock``): what it reads
and moves, and that with the setting off nothing reads its offset."""

from __future__ import annotations

import time

import pytest
import redis

from trigger_celery._settings import load_settings
from trigger_celery._store import Store
from trigger_celery.testing import TestClock

DAY_S = 24 * 3600


def test_moves_forward_only(trigger_redis_url):
    clock = TestClock(trigger_redis_url)
    assert clock.offset_s == 0
    assert abs(clock.now() - time.time()) < 5
    assert clock.advance(days=1, hours=1, minutes=1, seconds=1) - time.time() > DAY_S + 3600
    assert clock.offset_s == DAY_S + 3661
    assert clock.skip_to(0) - time.time() > DAY_S  # the past changes nothing
    target = time.time() + 3 * DAY_S
    assert clock.skip_to(target) >= target
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(seconds=-1)
    clock.close()


def test_the_engine_reads_the_offset_only_with_the_setting(trigger_redis_url, monkeypatch):
    monkeypatch.setenv("TRIGGER_CELERY_REDIS_CLUSTER", "false")  # one database, cluster pass too
    redis.Redis.from_url(trigger_redis_url).set("tc:testclock", 10 * DAY_S)
    off = Store(load_settings(redis_url=trigger_redis_url))
    assert off.now is time.time
    on = Store(load_settings(redis_url=trigger_redis_url, test_clock=True))
    assert on.now() - time.time() > 10 * DAY_S - 5
    other = Store(load_settings(redis_url=trigger_redis_url, test_clock=True, key_prefix="x"))
    assert abs(other.now() - time.time()) < 5  # the offset is per key prefix


def test_a_worker_without_the_setting_ignores_the_offset(trigger_redis_url, trigger_worker,
                                                          monkeypatch):
    monkeypatch.setenv("TRIGGER_CELERY_REDIS_URL", trigger_redis_url)
    monkeypatch.setenv("TRIGGER_CELERY_BROKER_URL", trigger_redis_url)
    monkeypatch.delenv("TRIGGER_CELERY_TEST_CLOCK", raising=False)
    monkeypatch.setenv("TRIGGER_CELERY_REDIS_CLUSTER", "false")  # one database, cluster pass too
    redis.Redis.from_url(trigger_redis_url).set("tc:testclock", 2 * DAY_S)  # would end the wait
    trigger_worker("tests.kit.user_app")
    from trigger_celery import TriggerClient

    handle = TriggerClient("kit-user", runs_queue="kit-user").trigger("reminder", {"user": "x"})
    deadline = time.monotonic() + 30
    while (run := handle.get()).status != "WAITING" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run.status == "WAITING", run
    wait = run.task("a-day-later")
    assert abs(wait.created_at - time.time()) < 30 and wait.retry_at == wait.created_at + DAY_S
    time.sleep(1)  # the poller's rounds (50 ms under a test clock) find nothing due
    assert handle.get().status == "WAITING" and handle.get().executions == 1


def test_run_until_done_refuses_a_run_of_another_key_prefix(trigger_redis_url, monkeypatch):
    """The clock moves one prefix's offset; a run of another would wait on real time."""
    monkeypatch.setenv("TRIGGER_CELERY_REDIS_CLUSTER", "false")  # one database, cluster pass too
    from trigger_celery import TriggerClient
    from trigger_celery._runs import RunHandle

    clock = TestClock(trigger_redis_url)
    client = TriggerClient("other", redis_url=trigger_redis_url, key_prefix="myapp")
    with pytest.raises(ValueError, match=r"key_prefix 'myapp'.*TestClock\(url, key_prefix="):
        clock.run_until_done(RunHandle(client, "run_x"), timeout=1)
    clock.close()

"""The rate limiter's Lua against a real Redis, with explicit clocks (no workers): a sliding
window that never lets more than ``limit`` calls into any ``period_s``, hints that spread
waiting calls over free slots, and the provider's reset closing a connection."""

from __future__ import annotations

import hashlib

import pytest

from trigger_celery import ConfigurationError, RateLimit, TriggerClient
from trigger_celery._ratelimit import acquire, connection_id
from trigger_celery.integration import Integration


class Dummy(Integration):
    id = "dummy"


@pytest.fixture()
def store(store_redis, urls):
    return TriggerClient("tests-ratelimit", redis_url=urls["store"]).store


def test_rate_limit_validates_its_fields():
    for bad in ({"limit": 0, "period_s": 1}, {"limit": 1, "period_s": 0},
                {"limit": 1.5, "period_s": 1}, {"limit": 1, "period_s": 1, "scope": "A B"}):
        with pytest.raises(ConfigurationError):
            RateLimit(**bad)
    limit = RateLimit(limit=2, period_s=1, operations=["a.b"])
    assert limit.operations == frozenset({"a.b"}) and limit.describe() == "2 per 1 s (all)"
    with pytest.raises(ConfigurationError):
        Dummy(credential="x", rate_limits=[(2, 1)])  # type: ignore[list-item]


def test_sliding_window_never_holds_more_than_the_limit(store):
    integ = Dummy(credential="secret-token", rate_limits=[RateLimit(limit=3, period_s=10)])
    assert [acquire(store, integ, "x.y", f"m{i}", now=100.0 + i) for i in range(3)] == [None] * 3
    # full until the first call leaves the window (100 + 10): the hint says so
    assert acquire(store, integ, "x.y", "m3", now=105.0) == 110.0
    assert acquire(store, integ, "x.y", "m4", now=105.1) == 111.0  # the next free slot
    assert acquire(store, integ, "x.y", "m3", now=109.9) == 110.0  # early: hint kept
    assert acquire(store, integ, "x.y", "m3", now=110.0) is None
    assert acquire(store, integ, "x.y", "m5", now=110.5) == 112.0  # after m4's hint at 111
    assert acquire(store, integ, "x.y", "m4", now=111.0) is None
    keys = list(store.redis.scan_iter("*ratelimit*"))
    digest = hashlib.sha256(b"secret-token").hexdigest()[:16]
    assert connection_id(integ) == f"dummy:{digest}"
    assert keys and all("secret-token" not in k and digest in k for k in keys)


def test_operations_outside_the_limit_pass_and_closed_connection_holds_all(store):
    integ = Dummy(credential="t2", rate_limits=[RateLimit(limit=1, period_s=60,
                                                          operations={"w.write"})])
    assert acquire(store, integ, "w.write", "a", now=1000.0) is None
    assert acquire(store, integ, "w.write", "b", now=1001.0) == 1060.0
    assert acquire(store, integ, "r.read", "c", now=1001.0) is None  # not limited
    store.redis.set(f"{store.prefix}:ratelimit:{{{connection_id(integ)}}}:closed", "1005.5")
    assert acquire(store, integ, "r.read", "c", now=1002.0) == 1005.5
    assert acquire(store, integ, "r.read", "c", now=1005.5) is None

"""Sentinel and replica-acknowledgement settings: validated at start-up, and handed to kombu and
redis-py in the form each takes (the failover itself: tests/chaos/test_sentinel.py)."""

from __future__ import annotations

import pytest
from redis.sentinel import SentinelConnectionPool

from trigger_celery import TriggerClient
from trigger_celery._celery import make_celery
from trigger_celery._connection import describe_url, parse_sentinel_url
from trigger_celery._errors import ConfigurationError
from trigger_celery._settings import load_settings

SENTINELS = "sentinel://:s3cret@10.0.0.1:26379/3;sentinel://10.0.0.2:26380/3;sentinel://h3/3"


def test_a_sentinel_url_without_a_master_name_names_both_settings(monkeypatch) -> None:
    monkeypatch.delenv("TRIGGER_CELERY_SENTINEL_MASTER", raising=False)
    monkeypatch.delenv("TRIGGER_CELERY_BROKER_URL", raising=False)  # the broker is redis_url
    with pytest.raises(ConfigurationError, match="redis_url and broker_url is a sentinel:// URL "
                                                 "but sentinel_master is not set"):
        load_settings(redis_url=SENTINELS)
    with pytest.raises(ConfigurationError, match="broker_url is a sentinel:// .*"
                                                 "TRIGGER_CELERY_SENTINEL_MASTER"):
        load_settings(redis_url="redis://127.0.0.1:6379/0", broker_url=SENTINELS)
    with pytest.raises(ConfigurationError, match="not a sentinel://host:port/db entry"):
        load_settings(redis_url="sentinel://a:1/0;redis://b:2/0", sentinel_master="m")


@pytest.fixture(autouse=True)
def _single_store(monkeypatch) -> None:
    """A Sentinel store is never a cluster: the cluster pass's store settings do not apply."""
    monkeypatch.delenv("TRIGGER_CELERY_REDIS_CLUSTER", raising=False)
    monkeypatch.delenv("TRIGGER_CELERY_STORE_SHARDS", raising=False)


def test_the_master_name_comes_from_the_environment_too(monkeypatch) -> None:
    monkeypatch.setenv("TRIGGER_CELERY_SENTINEL_MASTER", "mymaster")
    monkeypatch.setenv("TRIGGER_CELERY_MIN_REPLICAS_ACK", "1")
    s = load_settings(redis_url=SENTINELS)
    assert s.sentinel_master == "mymaster" and s.min_replicas_ack == 1
    assert s.replica_ack_timeout_ms == 1000
    with pytest.raises(ConfigurationError, match="replica_ack_timeout_ms"):
        load_settings(redis_url=SENTINELS, replica_ack_timeout_ms=0)
    with pytest.raises(ConfigurationError, match="min_replicas_ack"):
        load_settings(redis_url=SENTINELS, min_replicas_ack=-1)


def test_sentinel_urls_parse_as_celery_writes_them() -> None:
    parsed = parse_sentinel_url(SENTINELS)
    assert parsed.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("h3", 26379)]
    assert (parsed.db, parsed.username, parsed.password) == (3, None, "s3cret")
    assert "s3cret" not in describe_url(SENTINELS)
    assert describe_url(SENTINELS) == "10.0.0.1:26379/3;10.0.0.2:26380/3;h3/3"


def test_broker_and_store_both_go_through_the_named_master() -> None:
    settings = load_settings(redis_url=SENTINELS, broker_url=SENTINELS,
                             sentinel_master="mymaster")
    app = make_celery("t", settings)
    assert app.conf.broker_url == SENTINELS
    opts = app.conf.broker_transport_options
    assert opts["master_name"] == "mymaster" and opts["visibility_timeout"] == 3600
    assert app.conf.result_backend_transport_options == {"master_name": "mymaster"}
    client = TriggerClient("t", redis_url=SENTINELS, sentinel_master="mymaster")
    pool = client.store.redis.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "mymaster"
    kwargs = pool.connection_kwargs
    assert kwargs["db"] == 3 and kwargs["password"] == "s3cret"
    # the store's own timeouts and keepalive, as with a plain URL
    assert kwargs["socket_timeout"] == 15 and kwargs["socket_keepalive"] is True
    assert kwargs["health_check_interval"] == 10 and kwargs["decode_responses"] is True


def test_a_plain_broker_gets_no_master_name() -> None:
    settings = load_settings(redis_url="redis://127.0.0.1:6379/0")
    app = make_celery("t", settings)
    assert "master_name" not in app.conf.broker_transport_options
    assert app.conf.result_backend_transport_options == {}

"""The Celery app's settings and our hardening of kombu's Redis transport."""

from __future__ import annotations

import pytest
from kombu import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from trigger_celery import TriggerClient


def test_worker_settings_that_durability_depends_on():
    conf = TriggerClient("settings", visibility_timeout_s=120, eta_window_s=60).celery.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1 and conf.worker_eta_task_limit == 1000
    assert conf.broker_transport_options["visibility_timeout"] == 120
    assert conf.visibility_timeout == 120
    assert conf.broker_connection_max_retries is None
    assert "pickle" not in conf.accept_content + conf.result_accept_content
    queue = conf.task_queues[0]
    assert queue.routing_key == queue.name == queue.exchange.name  # its own binding


def test_a_released_broker_connection_raises_a_connection_error(urls):
    TriggerClient("harden")  # applies the hardening
    with Connection(urls["broker"]) as conn:
        channel = conn.channel()
        channel.connection.client = None  # what a torn-down connection looks like to kombu
        with pytest.raises(RedisConnectionError, match="already released"):
            channel._connparams()


def test_kombu_redis_channel_keeps_one_client_per_pool(urls):
    """kombu built a new ``redis.Redis`` (its table of response callbacks) for every command
    outside its consumer connection; the engine's channels keep one per connection pool, and a
    pool kombu replaces (after a connection error) gets a client of its own that works."""
    TriggerClient("reuse")  # applies it
    with Connection(urls["broker"]) as conn:
        channel = conn.channel()
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second and first.connection_pool is channel.pool
        queue = conn.SimpleQueue("tc-test-reuse", channel=channel)
        for i in range(3):
            queue.put({"n": i})  # each publish is an LPUSH through that one client
        with channel.conn_or_acquire() as client:
            assert client is first and client.llen("tc-test-reuse") == 3
        channel._disconnect_pools()  # what kombu does after a connection error
        with channel.conn_or_acquire() as renewed:
            assert renewed is not first and renewed.connection_pool is channel.pool
        queue.put({"n": 3})
        assert [queue.get(timeout=5).payload["n"] for _ in range(4)] == [0, 1, 2, 3]
        with channel.conn_or_acquire() as client:
            client.delete("tc-test-reuse")
        queue.close()

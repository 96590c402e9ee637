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

"""Issue 15, item 2: with ``min_replicas_ack``, a checkpoint counts as done only once a replica
has it. A master and one replica of our own (``--replicaof``); the replica is frozen with
SIGSTOP, so it stays connected but acknowledges nothing."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.chaos._harness import RedisServer
from tests.chaos._sentinel import SentinelCluster
from trigger_celery import TriggerClient
from trigger_celery._replicas import NotEnoughReplicasError, check_replicas
from trigger_celery._store import is_transient


@pytest.fixture()
def pair() -> Iterator[tuple[RedisServer, RedisServer]]:
    master = RedisServer()
    replica = RedisServer(extra=["--replicaof", "127.0.0.1", str(master.port)])
    SentinelCluster.wait_replicas(master, 1)
    yield master, replica
    for server in (replica, master):
        assert server.proc is not None
        server.proc.send_signal(signal.SIGCONT)
        server.stop()


def _freeze(server: RedisServer, seconds: float | None = None) -> None:
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    if seconds is not None:
        threading.Timer(seconds, server.proc.send_signal, [signal.SIGCONT]).start()


def test_a_write_no_replica_acknowledges_is_a_transient_error(pair) -> None:
    master, replica = pair
    client = TriggerClient("ack", redis_url=master.url(0), broker_url=master.url(1),
                           min_replicas_ack=1, replica_ack_timeout_ms=100, lease_s=1.5)
    ok, _ = client.store.create_run("r-ok", {"id": "r-ok", "status": "QUEUED"}, due_s=1e12)
    assert ok and replica.client().hget(client.store.run_key("r-ok"), "status") == "QUEUED"
    evalsha = lambda: int(master.client().info("commandstats")["cmdstat_evalsha"]["calls"])  # noqa: E731
    before = evalsha()
    _freeze(replica)
    started = time.monotonic()
    with pytest.raises(NotEnoughReplicasError, match="0 of 1 replica") as caught:
        client.store.create_run("r-frozen", {"id": "r-frozen", "status": "QUEUED"}, due_s=1e12)
    waited = time.monotonic() - started
    assert is_transient(caught.value)
    assert 0.5 <= waited < 3, waited  # patience: a third of the lease, WAIT by WAIT
    # the write is on the master, sent once; it is just not known to be anywhere else
    assert master.client().hget(client.store.run_key("r-frozen"), "status") == "QUEUED"
    assert evalsha() == before + 1


def test_a_checkpoint_waits_for_the_replica_and_is_retried_in_place(pair) -> None:
    master, replica = pair
    client = TriggerClient("ack", redis_url=master.url(0), broker_url=master.url(1),
                           min_replicas_ack=1, replica_ack_timeout_ms=100, lease_s=3)
    store, executor = client.store, client.executor
    run, tasks, _, lease = store.run_keys("r1")
    token = uuid.uuid4().hex
    master.client().set(lease, token, px=3000)
    executor.leases.hold(lease, token, "", 0)  # renewed while the write waits
    try:
        _freeze(replica, seconds=4.0)  # longer than the lease: renewals keep it
        started = time.monotonic()
        res = executor.write(lease, lambda: store.checkpoint("r1", token, "idem-1", '{"k":"v"}'))
        waited = time.monotonic() - started
    finally:
        executor.leases.release(lease)
    assert res == "stored"
    assert 3.5 <= waited < 8, waited   # done only once the replica answered again
    # returned only once the replica had it
    assert replica.client().hget(tasks, "idem-1") == '{"k":"v"}'


def test_a_master_with_too_few_replicas_is_reported(pair, caplog) -> None:
    master, _ = pair
    client = TriggerClient("ack", redis_url=master.url(0), broker_url=master.url(1),
                           min_replicas_ack=2)
    with caplog.at_level("WARNING", logger="trigger_celery"):
        assert check_replicas(client.store.redis, 1) == 1
        assert not caplog.records
        assert check_replicas(client.store.redis, 2) == 1
    (record,) = caplog.records
    assert "min_replicas_ack is 2 but the store's master has 1 connected replica" in \
        record.getMessage()


"""The store on a Redis Cluster of three masters (``redis-cli --cluster create`` on loopback):
runs execute end to end, idempotent triggers find their run, and the structures that span runs
are spread over the shards and the masters.

The cluster is the session's (``TESTS_REDIS_CLUSTER=1``), else one this module starts; the broker
stays the single Redis of the other tests (kombu has no Redis Cluster transport).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from tests.cluster import RedisCluster
from trigger_celery import TriggerClient

PREFIX = "tcclu"
QUEUE = "cluster-tests"


@pytest.fixture(scope="module")
def cluster_url(store_cluster: str | None) -> Iterator[str]:
    if store_cluster:
        yield store_cluster
        return
    own = RedisCluster()
    yield own.url
    own.stop()


@pytest.fixture()
def enqueuer(cluster_url: str, urls: dict[str, str]) -> Iterator[TriggerClient]:
    """A client of the cluster that does not import the jobs (it triggers through the registry
    the worker publishes), its store emptied first."""
    client = TriggerClient("cluster-enqueuer", redis_url=cluster_url, redis_cluster=True,
                           broker_url=urls["broker"], key_prefix=PREFIX, runs_queue=QUEUE)
    client.store.redis.flushdb()
    yield client
    client.celery.connection_for_write().default_channel.queue_purge(QUEUE)


def _masters(cluster_url: str) -> list[redis.Redis]:
    seed = redis.Redis.from_url(cluster_url, decode_responses=True)
    nodes = [line.split() for line in str(seed.execute_command("CLUSTER", "NODES")).splitlines()]
    addrs = [n[1].split("@")[0] for n in nodes if "master" in n[2]]
    return [redis.Redis(host=a.rsplit(":", 1)[0], port=int(a.rsplit(":", 1)[1]),
                        decode_responses=True) for a in addrs]


def test_runs_execute_on_the_cluster(enqueuer: TriggerClient, cluster_url: str,
                                     start_worker) -> None:
    start_worker("tests.app", name="cluster", queues=QUEUE, TRIGGER_CELERY_REDIS_URL=cluster_url,
                 TRIGGER_CELERY_REDIS_CLUSTER="true", TRIGGER_CELERY_KEY_PREFIX=PREFIX,
                 TRIGGER_CELERY_RUNS_QUEUE=QUEUE)
    deadline = time.monotonic() + 30
    while "three-tasks" not in enqueuer.store.registered_jobs():
        assert time.monotonic() < deadline, "the worker never published its jobs"
        time.sleep(0.1)
    handles = [enqueuer.trigger("three-tasks", {"tag": f"clu{i}"}) for i in range(8)]
    waiter = enqueuer.trigger("waiter", {"tag": "clu-wait", "seconds": 1})
    for h in handles:
        assert h.result(timeout=60) is not None
    assert waiter.result(timeout=60) == {"done": "clu-wait"}
    assert {enqueuer.store.shard_of(h.id) for h in handles} != {0}  # not all in one shard
    again = enqueuer.trigger("quick", {"tag": "clu-idem"}, idempotency_key="k1")
    same = enqueuer.trigger("quick", {"tag": "clu-idem"}, idempotency_key="k1")
    assert same.id == again.id and again.created and not same.created
    assert again.result(timeout=30) is not None
    listed = {r.id for r in enqueuer.list_runs(limit=20)}
    assert {h.id for h in [*handles, waiter, again]} <= listed


def test_cross_run_structures_spread_over_shards_and_masters(enqueuer: TriggerClient,
                                                            cluster_url: str) -> None:
    """200 runs: their schedule and runs-index entries sit in at least 2 of the 3 masters, and
    no shard holds more than 3 times its fair share."""
    enqueuer.store.publish_jobs({"spread": {"id": "spread", "version": "1", "queue": QUEUE,
                                            "trigger": {"type": "invoke"}, "schema": None,
                                            "concurrency": None}})
    ids = [enqueuer.trigger("spread", {"i": i}).id for i in range(200)]
    shards = enqueuer.store.shards
    per_shard = Counter(enqueuer.store.shard_of(rid) for rid in ids)
    store = enqueuer.store.redis
    for k, key in enumerate(enqueuer.store.schedule_keys):
        assert store.zcard(key) == per_shard.get(k, 0)
        assert store.zcard(enqueuer.store.runs_keys[k]) == per_shard.get(k, 0)
    assert max(per_shard.values()) <= 3 * 200 / shards, per_shard
    holding = [m for m in _masters(cluster_url)
               if any(key.endswith((":schedule", ":runs")) for key in m.scan_iter(f"*{PREFIX}*"))]
    assert len(holding) >= 2


def test_limits_of_two_owners_taken_one_after_the_other(enqueuer: TriggerClient) -> None:
    """A call under a connection's limit (2 per 60 s) and its job's (1 per 60 s): on a cluster
    each owner's keys have their own slot. A call the job's limit refuses must not keep the
    connection's slot it took first."""
    from trigger_celery import RateLimit
    from trigger_celery._ratelimit import acquire
    from trigger_celery.integration import Integration

    class Dummy(Integration):
        id = "dummy"

    store = enqueuer.store
    integ = Dummy(credential="cluster-token", rate_limits=[RateLimit(limit=2, period_s=60)])
    per_job = (RateLimit(limit=1, period_s=60),)
    assert acquire(store, integ, "x.y", "a", now=1000.0, job_id="j", job_limits=per_job) is None
    # the connection has room, the job does not: refused, and the connection's entry given back
    assert acquire(store, integ, "x.y", "b", now=1001.0, job_id="j", job_limits=per_job) == 1060.0
    assert acquire(store, integ, "x.y", "c", now=1002.0, job_id="k", job_limits=per_job) is None
    # now the connection is full (a and c): another job's call waits for a to leave the window
    assert acquire(store, integ, "x.y", "d", now=1003.0, job_id="m", job_limits=per_job) == 1060.0


def test_an_evicting_master_anywhere_in_the_cluster_is_refused(enqueuer: TriggerClient,
                                                              cluster_url: str) -> None:
    from trigger_celery._eviction import EvictionPolicyError, check_eviction_policy

    assert check_eviction_policy(enqueuer.store.redis, "the cluster", allow=False) == "noeviction"
    last = _masters(cluster_url)[-1]
    last.config_set("maxmemory-policy", "allkeys-lru")
    try:
        where = f"{last.connection_pool.connection_kwargs['host']}:" \
                f"{last.connection_pool.connection_kwargs['port']}"
        with pytest.raises(EvictionPolicyError, match=f"at {where} has maxmemory-policy "
                                                      "allkeys-lru"):
            check_eviction_policy(enqueuer.store.redis, "the cluster", allow=False)
    finally:
        last.config_set("maxmemory-policy", "noeviction")


def test_a_store_of_the_wrong_mode_is_refused_naming_the_setting(
        cluster_url: str, urls: dict[str, str], redis_base: str) -> None:
    """A cluster node used without ``redis_cluster`` answers MOVED/CROSSSLOT on most commands,
    and ``redis_cluster`` on a plain Redis can never work: both are settings to fix, refused
    where a worker starts, not retried as an outage."""
    from trigger_celery import ConfigurationError
    from trigger_celery._connection import check_store_mode

    node = TriggerClient("mode", redis_url=cluster_url, redis_cluster=False,
                         broker_url=urls["broker"], key_prefix=PREFIX)
    with pytest.raises(ConfigurationError, match="is a Redis Cluster node: set "
                                                 "TRIGGER_CELERY_REDIS_CLUSTER=true"):
        check_store_mode(node.store.redis, "the node")
    plain = TriggerClient("mode", redis_url=f"{redis_base}/0", redis_cluster=True,
                          broker_url=urls["broker"], key_prefix=PREFIX)
    with pytest.raises(ConfigurationError, match="is not a Redis Cluster node .* unset "
                                                 "TRIGGER_CELERY_REDIS_CLUSTER"):
        check_store_mode(plain.store.redis, "the store")
    cluster = TriggerClient("mode", redis_url=cluster_url, redis_cluster=True,
                            broker_url=urls["broker"], key_prefix=PREFIX)
    check_store_mode(cluster.store.redis, "the cluster")  # the right mode passes

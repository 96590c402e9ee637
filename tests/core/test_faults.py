"""Runs survive worker kills, duplicate messages and waits past the redelivery window."""

from __future__ import annotations

import time

from trigger_celery._store import Store


def side(r, name: str) -> int:
    return int(r.get(f"side:{name}") or 0)


def wait_status(client, run_id: str, status: str, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while client.get_run(run_id).status != status:
        assert time.time() < deadline, f"run {run_id} never reached {status}"
        time.sleep(0.05)


def test_sigkill_during_waits_and_between_tasks_loses_no_run(start_worker, store_redis):
    """Default visibility_timeout (an hour): recovery comes from our lease expiry, not Redis.
    A 10 s lease keeps the recovery (a lease, then the poller's look) well inside the bound on
    a loaded machine; the default 30 s lease made it about a minute."""
    from tests.app import client

    lease = {"TRIGGER_CELERY_LEASE_S": "10"}
    w1 = start_worker(name="doomed", **lease)
    waiting = [client.trigger("waiter", {"tag": f"k{i}", "seconds": 3}) for i in range(4)]
    for h in waiting:
        wait_status(client, h.id, "WAITING")
    w1.kill()  # the waits' ETA messages die with it (unacked, back only after an hour)

    w2 = start_worker(name="doomed-2", **lease)
    stepping = [client.trigger("steps", {"tag": f"s{i}", "n": 4, "pause": 0.3}) for i in range(2)]
    deadline = time.time() + 20
    while not all(side(store_redis, f"s{i}:step1") for i in range(2)):
        assert time.time() < deadline
        time.sleep(0.02)
    killed_at = time.time()
    w2.kill()  # between two tasks (or inside one)

    start_worker(name="rescuer", **lease)
    for h in waiting:
        assert h.result(timeout=60) == {"done": h.get().payload["tag"]}
    for h in stepping:
        assert len(h.result(timeout=60)) == 4
    assert time.time() - killed_at < 60
    for i in range(4):
        assert side(store_redis, f"k{i}:before") == 1  # completed before the kill: never again
        assert side(store_redis, f"k{i}:after") == 1
    for i in range(2):
        run = client.get_run(stepping[i].id)
        for step in range(4):
            effects = side(store_redis, f"s{i}:step{step}")
            # a completed task never runs again; one in flight at the kill may run once more
            assert effects == 1 or (effects == 2 and step <= 2), (i, step, effects)
        assert [t.attempts for t in run.tasks] == [1, 1, 1, 1]


def test_one_run_message_delivered_twice_to_two_workers_runs_once(start_worker, store_redis):
    from tests.app import client

    start_worker(concurrency=1, name="racer-a")
    start_worker(concurrency=1, name="racer-b")
    handles = []
    for i in range(10):
        run_id = f"run_dup{i}"
        client.store.create_run(run_id, {
            "id": run_id, "job_id": "steps", "job_version": "1.0.0", "status": "QUEUED",
            "seq": 0, "executions": 0, "created_at": time.time(),
            "payload": f'{{"tag": "d{i}", "n": 2, "pause": 0.2}}',
        })
        client.executor.send_run(run_id, 0)
        client.executor.send_run(run_id, 0)
        handles.append(run_id)
    for i, run_id in enumerate(handles):
        run = client.get_run(run_id)
        deadline = time.time() + 30
        while run.status != "SUCCESS":
            assert time.time() < deadline
            time.sleep(0.05)
            run = client.get_run(run_id)
        assert run.executions == 1
        assert side(store_redis, f"d{i}:step0") == 1 and side(store_redis, f"d{i}:step1") == 1


def test_wait_longer_than_visibility_timeout_resumes_once(start_worker, store_redis):
    from tests.app import client

    start_worker(name="short-vt", TRIGGER_CELERY_VISIBILITY_TIMEOUT_S="3",
                 TRIGGER_CELERY_ETA_WINDOW_S="1")
    handle = client.trigger("waiter", {"tag": "vt", "seconds": 7})
    assert handle.result(timeout=40) == {"done": "vt"}
    time.sleep(4)  # past another visibility timeout: nothing may come back
    assert side(store_redis, "vt:after-wait-executions") == 1
    assert client.get_run(handle.id).executions == 2


def test_store_keys_share_the_run_hash_tag():
    from trigger_celery._settings import Settings

    store = Store(Settings(store_shards=4))
    keys = [*store.run_keys("run_abc"), store.schedule_key("run_abc"),
            store.task_lease_key("run_abc", "i"), store.notify_key("run_abc")]
    tag = f"{{tc:s{store.shard_of('run_abc')}}}"
    assert all(k.startswith(tag) for k in keys)


def test_retry_at_from_on_error_waits_and_frees_the_worker(start_worker, store_redis):
    from tests.app import client

    start_worker(concurrency=1, name="retry-at")
    slow = client.trigger("retry-at", {"tag": "ra", "delay": 2.0})
    time.sleep(0.5)
    other = client.trigger("quick", {"tag": "meanwhile"})
    served_at = other.result(timeout=10)["t"]
    assert slow.result(timeout=30) == 2
    first, second = (float(x) for x in store_redis.lrange("side:ra:attempts", 0, -1))
    assert second - first >= 2.0  # the next attempt started no earlier than retry_at
    assert first < served_at < second  # the only worker process served another run meanwhile
    task = client.get_run(slow.id).task("call")
    assert task.attempts == 2 and task.deferrals == 1

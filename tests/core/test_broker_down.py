"""A broker that does not take a message never fails a run, nor an enqueue that already took
effect: the record is in the store, and the message is sent again from it once a worker's broker
answers (the poller for a run, the run's check for a dispatched task). Real Redis store, real
``celery worker``; the dead broker is a loopback port nothing listens on."""

from __future__ import annotations

import json
import logging
import socket

from tests.hold_app import Chain, Counter, chain
from trigger_celery import TriggerClient, invoke_trigger
from trigger_celery._keys import idempotency_key


def dead_broker_url() -> str:
    with socket.socket() as s:  # a port just free: connections to it are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_runs_and_dispatched_tasks_survive_a_broker_that_does_not_answer(
        start_worker, store_redis, urls, caplog):
    # the job of tests/hold_app.py on a client whose broker refuses every connection; a 5 s
    # lease makes the run's safety net (the poller's grace) 5 s, a 1 s check the task's
    dead = TriggerClient("tests-hold", redis_url=urls["store"], broker_url=dead_broker_url(),
                         lease_s=5, dispatch_check_s=1, continue_in_place=False)
    dead.define_job(id="chain", version="1.0.0", trigger=invoke_trigger(schema=Chain),
                    integrations={"ctr": Counter(credential="unused")})(chain.run)
    caplog.set_level(logging.WARNING, logger="trigger_celery")

    h = dead.trigger("chain", {"tag": "nobroker", "n": 2})  # created; its message not sent
    run_key, tasks_key = dead.store.run_keys(h.id)[:2]
    assert store_redis.hget(run_key, "status") == "QUEUED"
    assert f"run {h.id}: could not send its message" in caplog.text

    # executed here, as the poller's message would have it: the first call holds (no
    # continuing in place) and its task's message does not go out either; the run waits on
    # the task instead of failing
    assert dead.executor.execute(h.id, int(store_redis.hget(run_key, "seq"))) == "ok"
    assert store_redis.hget(run_key, "status") == "WAITING"
    assert not store_redis.hget(run_key, "error")
    rec = json.loads(store_redis.hget(tasks_key, idempotency_key(h.id, None, "t0")))
    assert (rec["status"], rec["attempts"]) == ("PENDING", 0)
    assert "task 't0' attempt 1: could not send its message" in caplog.text
    assert not store_redis.get("side:nobroker:0")

    # a worker whose broker answers (its checks 1 s too): its poller sends the run at the
    # task's check, which sends the task again; the run completes, each task having run once
    start_worker("tests.hold_app", name="broker-back", TRIGGER_CELERY_DISPATCH_CHECK_S="1")
    assert h.result(timeout=60) == {"total": 1}
    assert [store_redis.get(f"side:nobroker:{i}") for i in range(2)] == ["1", "1"]

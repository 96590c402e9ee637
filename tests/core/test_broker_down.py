"""A broker that does not take a message never fails a run, nor an enqueue that already took
effect: the record is in the store, and the message is sent again from it once a worker's broker
answers (the poller for a run, the run's check for a dispatched task). Real Redis store, real
``celery worker``; the dead broker is a loopback port nothing listens on."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from trigger_celery import RetryOptions, TaskInfo, TriggerClient, invoke_trigger
from trigger_celery._keys import idempotency_key
from trigger_celery.integration import Integration, Namespace, operation


@pytest.fixture()
def dead_broker_url() -> Iterator[str]:
    """A loopback port bound but not listening for the whole test: connections are refused,
    and no other process can take the port meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"redis://127.0.0.1:{s.getsockname()[1]}/0"


def test_runs_and_dispatched_tasks_survive_a_broker_that_does_not_answer(
        start_worker, store_redis, urls, caplog, dead_broker_url, monkeypatch):
    from tests.hold_app import Chain, Counter, chain  # imported once the tests' env is set
    from trigger_celery import _replay

    # the job of tests/hold_app.py on a client whose broker refuses every connection; a 5 s
    # lease makes the run's safety net (the poller's grace) 5 s, a 1 s check the task's
    dead = TriggerClient("tests-hold", redis_url=urls["store"], broker_url=dead_broker_url,
                         lease_s=5, dispatch_check_s=1, continue_in_place=False)
    held = []
    real_hold = _replay.send_and_hold
    monkeypatch.setattr(_replay, "send_and_hold",
                        lambda x, idem, *a: held.append(idem) or real_hold(x, idem, *a))
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
    assert held == [idempotency_key(h.id, None, "t0")]  # the held path, not the suspension's
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


class NoParams(BaseModel):
    pass


class Failing(Namespace):
    name = "ops"

    @operation(params=NoParams, display="fail")
    def fail(client: Any, params: NoParams, task: TaskInfo) -> Any:
        raise RuntimeError("the provider answered 500")


class Flaky(Integration):
    """``flaky.ops.fail``: always fails, retried at once (10 ms)."""

    id = "flaky"
    icon = "x"
    namespaces = (Failing,)
    retry = RetryOptions(limit=3, min_timeout_ms=10, max_timeout_ms=10)

    def create_client(self, credential: str) -> Any:
        return object()


def test_a_retry_the_broker_does_not_take_is_left_to_the_runs_check(store_redis, urls, caplog,
                                                                    dead_broker_url):
    """A failed attempt whose retry lies in the ETA window sends the next attempt's message
    itself: when the broker does not take it, the attempt still ends as a retry (the record
    waits at retry_at, for the run's check), instead of raising out of the task."""
    dead = TriggerClient("tests-broker-down", redis_url=urls["store"],
                         broker_url=dead_broker_url, eta_window_s=60)
    flaky = Flaky(credential="unused")

    @dead.define_job(id="flaky", version="1.0.0", trigger=invoke_trigger(),
                     integrations={"flaky": flaky})
    def job(payload: Any, io: Any, ctx: Any) -> Any:
        return io.flaky.ops.fail("f")

    caplog.set_level(logging.WARNING, logger="trigger_celery")
    h = dead.trigger("flaky", {})
    run_key, tasks_key = dead.store.run_keys(h.id)[:2]
    assert dead.executor.execute(h.id, int(store_redis.hget(run_key, "seq"))) == "ok"
    idem = idempotency_key(h.id, None, "f")
    assert dead.executor.execute_operation(flaky, "ops.fail", h.id, idem, 1) == "retry"
    rec = json.loads(store_redis.hget(tasks_key, idem))
    assert (rec["status"], rec["attempts"]) == ("WAITING", 1)
    assert rec["retry_at"] > rec["created_at"]
    assert "task 'f' attempt 2: could not send its message" in caplog.text
    assert store_redis.hget(run_key, "status") in ("QUEUED", "WAITING")  # not failed

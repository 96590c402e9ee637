"""Durable runs on a real Redis and real celery workers: memoized tasks, retries, waits."""

from __future__ import annotations

import json
import time

import pytest

from trigger_celery import RunFailedError


def side(r, name: str) -> int:
    return int(r.get(f"side:{name}") or 0)


def test_three_task_job_retries_only_the_failing_task(client, store_redis):
    handle = client.trigger("three-tasks", {"tag": "t3"})
    assert handle.result(timeout=30) == {"a": "a", "b": {"b": 3}, "c": "c"}
    run = client.get_run(handle.id)
    assert run.status == "SUCCESS"
    assert [(t.key, t.attempts, t.status) for t in run.tasks] == [
        ("first", 1, "COMPLETED"), ("second", 3, "COMPLETED"), ("third", 1, "COMPLETED"),
    ]
    assert [e["message"] for e in run.task("second").errors] == [
        "flaky failure 1", "flaky failure 2",
    ]
    # side effects counted outside the worker: the first task ran once over three executions
    assert side(store_redis, "t3:first") == 1
    assert side(store_redis, "t3:second") == 3
    assert side(store_redis, "t3:third") == 1
    assert run.executions == 3


def test_wait_suspends_and_resumes_with_one_log_line(client, store_redis):
    handle = client.trigger("waiter", {"tag": "w", "seconds": 1})
    assert handle.result(timeout=30) == {"done": "w"}
    run = client.get_run(handle.id)
    assert [t.key for t in run.tasks] == ["before", "pause", "after"]
    assert [log.message for log in run.logs] == ["waiting"]  # not repeated by the replay
    assert side(store_redis, "w:before") == 1
    assert side(store_redis, "w:after-wait-executions") == 1


def test_nested_tasks_and_a_child_failing_for_good_fails_its_parent_without_retry(
        client, store_redis):
    ok = client.trigger("nested", {"tag": "n1"})
    assert ok.result(timeout=30) == {"first": 1}
    run = client.get_run(ok.id)
    child = run.task("child")
    assert child.parent == run.task("parent").idem

    bad = client.trigger("nested", {"tag": "n2", "fail_child": True})
    with pytest.raises(RunFailedError):
        bad.result(timeout=30)
    run = client.get_run(bad.id)
    assert run.task("bad-child").status == "ERRORED"
    assert run.task("bad-child").error["type"] == "ZeroDivisionError"
    parent = run.task("parent")
    assert parent.status == "ERRORED" and parent.attempts == 1  # no retry despite limit=3
    assert side(store_redis, "n2:child-ok") == 1


def test_trigger_idempotency_key_and_event_id_start_one_run_each(client):
    a = client.trigger("quick", {"tag": "i"}, idempotency_key="order-17")
    b = client.trigger("quick", {"tag": "i"}, idempotency_key="order-17")
    assert a.id == b.id and a.created and not b.created
    first = client.send_event("order.placed", {"order_id": 7, "amount": 10}, id="evt-1")
    again = client.send_event("order.placed", {"order_id": 7, "amount": 10}, id="evt-1")
    assert [h.id for h in first] == [h.id for h in again]
    assert first[0].created and not again[0].created
    assert first[0].result(timeout=30) == {"order_id": 7, "total": 20.0, "event_id": "evt-1"}
    assert a.result(timeout=30)["tag"] == "i"
    assert len(client.list_runs(job_id="order")) == 1
    assert len(client.list_runs(job_id="quick")) == 1


def test_cancel_run_stops_a_waiting_run(client):
    handle = client.trigger("cancel-me", {})
    deadline = time.time() + 10
    while client.get_run(handle.id).status != "WAITING" and time.time() < deadline:
        time.sleep(0.05)
    assert client.cancel_run(handle.id) == "CANCELED"
    with pytest.raises(RunFailedError) as info:
        handle.result(timeout=5)
    run = info.value.run
    assert run.status == "CANCELED" and run.wake_at is None
    assert run.task("long").status == "CANCELED"  # not shown as still waiting


def test_run_records_expire_after_retention_only_when_finished(client, store_redis):
    done = client.trigger("quick", {"tag": "ttl"})
    done.result(timeout=30)
    waiting = client.trigger("cancel-me", {})
    deadline = time.time() + 10
    while client.get_run(waiting.id).status != "WAITING" and time.time() < deadline:
        time.sleep(0.05)
    ttl = store_redis.ttl(client.store.run_key(done.id))
    assert 0 < ttl <= client.settings.run_retention_s
    assert store_redis.ttl(client.store.run_keys(done.id)[1]) > 0
    assert store_redis.ttl(client.store.run_key(waiting.id)) == -1  # not finished: never expires
    client.cancel_run(waiting.id)


def test_tokens_and_messages_are_json(client, store_redis):
    handle = client.trigger("quick", {"tag": "json"})
    handle.result(timeout=30)
    raw = store_redis.hgetall(client.store.run_key(handle.id))
    assert json.loads(raw["payload"]) == {"tag": "json"}
    conf = client.celery.conf
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.result_accept_content == ["json"]


def test_reset_task_reruns_a_failed_run_from_its_failed_task(client, store_redis):
    handle = client.trigger("nested", {"tag": "reset", "fail_child": True})
    with pytest.raises(RunFailedError):
        handle.result(timeout=30)
    cleared = client.reset_task(handle.id, "bad-child")
    assert sorted(cleared) == ["bad-child", "parent"]
    with pytest.raises(RunFailedError):  # the code is still broken: it fails again, once more
        handle.result(timeout=30)
    run = client.get_run(handle.id)
    assert run.executions == 2
    assert side(store_redis, "reset:child-ok") == 1  # the completed child did not run again


def test_random_try_send_event_and_async_callbacks_are_memoized(client, store_redis):
    handle = client.trigger("io-tools", {"tag": "tools", "log_lines": 3})
    out = handle.result(timeout=30)
    assert 1 <= out["dice"] <= 6
    assert out["caught"].startswith("caught TaskFailedError")
    assert out["async"] == {"async": 1}
    run = client.get_run(handle.id)
    assert run.task("dice").output == out["dice"]  # the same on the replay
    (order_run,) = out["sent"]
    # the event id derives from the task's idempotency key: one order run despite the replay
    order = client.get_run(order_run)
    assert order.event_id == run.task("notify").idem
    assert len(client.list_runs(job_id="order")) == 1
    assert len(run.logs) == 3  # logged once, not again on the replay
    assert run.executions == 2


def test_logs_are_capped_and_the_drop_counted(store_redis):
    """Executed in this process (the cap is the executing client's setting)."""
    from trigger_celery import TriggerClient, invoke_trigger

    c = TriggerClient("logcap", max_log_entries=5, runs_queue="logcap-unconsumed")

    @c.define_job(id="chatty", version="1.0.0", trigger=invoke_trigger())
    def chatty(payload, io, ctx):
        for i in range(8):
            io.logger.info("line", i=i)
        return "ok"

    handle = c.trigger("chatty", {})
    assert c.executor.execute(handle.id, 0) == "ok"
    run = c.get_run(handle.id)
    assert run.status == "SUCCESS"
    assert [entry.data["i"] for entry in run.logs] == [0, 1, 2, 3, 4]  # oldest kept
    assert run.logs_dropped == 3


def test_reset_task_refuses_a_task_that_did_not_fail(client):
    from trigger_celery import ConfigurationError

    handle = client.trigger("quick", {"tag": "no-reset"})
    handle.result(timeout=30)
    with pytest.raises(ConfigurationError, match="is COMPLETED: only a failed"):
        client.reset_task(handle.id, "only")
    assert client.get_run(handle.id).task("only").status == "COMPLETED"

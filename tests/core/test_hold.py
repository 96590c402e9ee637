"""The short hold (``_hold.py``): a run of dispatched tasks continues in place while workers are
free, and still completes correctly when the hold times out, when no process is free to run the
task, and when its worker is SIGKILLed mid-hold. Real Redis, real ``celery worker`` processes."""

from __future__ import annotations

import time

APP = "tests.hold_app"


def side(r, tag: str, i: int) -> int:
    return int(r.get(f"side:{tag}:{i}") or 0)


def test_fifty_dispatched_tasks_run_in_one_execution_when_workers_are_free(
        start_worker, store_redis):
    from tests.hold_app import client

    # generous windows: on a loaded test machine a free process may take a while
    start_worker(APP, name="hold", TRIGGER_CELERY_DISPATCH_HOLD_START_S="5",
                 TRIGGER_CELERY_DISPATCH_HOLD_S="30")
    h = client.trigger("chain", {"tag": "c50", "n": 50})
    assert h.result(timeout=60) == {"total": sum(range(50))}
    run = client.get_run(h.id)
    # no suspension, no wake message, no replay: 1 execution (51 without the hold). Once in a
    # full-suite run on the loaded 2-core machine one hold gave way (2 executions): the gate
    # found the other process busy; tolerated here, see the report of issue 12.
    assert run.executions <= 2
    assert [t.status for t in run.tasks] == ["COMPLETED"] * 50
    assert [side(store_redis, "c50", i) for i in range(50)] == [1] * 50
    assert [log.message for log in run.logs] == ["chain done"]
    # the hold left no wake_pending behind: the run finished without a spurious execution
    assert not store_redis.hget(client.store.run_key(h.id), "wake_pending")


def test_hold_that_times_out_suspends_as_before(start_worker, store_redis):
    from tests.hold_app import client

    start_worker(APP, name="hold-short", TRIGGER_CELERY_DISPATCH_HOLD_S="0.1")
    h = client.trigger("chain", {"tag": "slow", "n": 4, "sleep": 0.6})
    assert h.result(timeout=60) == {"total": 6}
    run = client.get_run(h.id)
    assert run.executions == 5  # each task outlived the hold: suspended, woken, replayed
    assert [side(store_redis, "slow", i) for i in range(4)] == [1] * 4
    assert [log.message for log in run.logs] == ["chain done"]


def test_hold_off_suspends_on_every_dispatched_task(start_worker, store_redis):
    from tests.hold_app import client

    start_worker(APP, name="hold-off", TRIGGER_CELERY_DISPATCH_HOLD_S="0")
    h = client.trigger("chain", {"tag": "off", "n": 3})
    assert h.result(timeout=60) == {"total": 3}
    assert client.get_run(h.id).executions == 4
    assert store_redis.exists(client.store.notify_key(h.id)) == 0  # nothing pushed


def test_no_free_process_the_hold_gives_way_within_the_start_window(start_worker, store_redis):
    """One pool process: while it holds the run, nobody can run the task. The hold (30 s) must
    not wait it out: the task has not started within dispatch_hold_start_s, so the run
    suspends and the process runs the task."""
    from tests.hold_app import client

    start_worker(APP, concurrency=1, name="hold-alone", TRIGGER_CELERY_DISPATCH_HOLD_S="30")
    started = time.time()
    h = client.trigger("chain", {"tag": "alone", "n": 3})
    assert h.result(timeout=60) == {"total": 3}
    assert time.time() - started < 15
    assert client.get_run(h.id).executions == 4
    assert [side(store_redis, "alone", i) for i in range(3)] == [1] * 3


def test_sigkill_mid_hold_the_run_completes_elsewhere(start_worker, store_redis):
    from tests.hold_app import client

    env = {"TRIGGER_CELERY_LEASE_S": "2", "TRIGGER_CELERY_DISPATCH_CHECK_S": "2",
           "TRIGGER_CELERY_DISPATCH_HOLD_S": "10", "TRIGGER_CELERY_DISPATCH_HOLD_START_S": "10"}
    doomed = start_worker(APP, name="hold-doomed", **env)
    h = client.trigger("chain", {"tag": "kill", "n": 6, "sleep": 0.4})
    deadline = time.time() + 30
    while not side(store_redis, "kill", 2):
        assert time.time() < deadline
        time.sleep(0.01)
    time.sleep(0.1)  # the run holds for task 3, which sleeps in the other process
    assert client.get_run(h.id).status == "EXECUTING"
    doomed.kill()

    start_worker(APP, name="hold-rescuer", **env)
    assert h.result(timeout=60) == {"total": 15}
    run = client.get_run(h.id)
    assert run.lost_executions >= 1
    assert [side(store_redis, "kill", i) for i in range(3)] == [1, 1, 1]  # done: never again
    # the task in flight at the kill may run once more; the rest once
    assert all(side(store_redis, "kill", i) in (1, 2) for i in range(3, 6))
    assert [t.status for t in run.tasks] == ["COMPLETED"] * 6

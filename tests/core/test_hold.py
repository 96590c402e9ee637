"""The short hold (``_hold.py``): a run of dispatched tasks continues in place while workers are
free, and still completes correctly when the hold times out, when no process is free to run the
task, and when its worker is SIGKILLed mid-hold. Real Redis, real ``celery worker`` processes."""

from __future__ import annotations

import time

from trigger_celery._hold import HOLD_AFTER_TASKS

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
    # the first HOLD_AFTER_TASKS + 1 calls suspend (each resume replays at most that many
    # records, in the settling process: continue_in_place); from then on the run goes on in
    # place: no suspension, no wake message, no replay (51 executions without the hold). Once in
    # a full-suite run on the loaded 2-core machine one hold gave way (one more execution): the
    # gate found the other process busy; tolerated here, see the report of issue 12.
    assert run.executions <= HOLD_AFTER_TASKS + 3
    assert [t.status for t in run.tasks] == ["COMPLETED"] * 50
    assert [side(store_redis, "c50", i) for i in range(50)] == [1] * 50
    assert [log.message for log in run.logs] == ["chain done"]
    # the hold left no wake_pending behind: the run finished without a spurious execution
    assert not store_redis.hget(client.store.run_key(h.id), "wake_pending")


def test_hold_that_times_out_suspends_as_before(start_worker, store_redis):
    from tests.hold_app import client

    # no continuing in place: every call holds (else a run this short would never hold)
    start_worker(APP, name="hold-short", TRIGGER_CELERY_DISPATCH_HOLD_S="0.1",
                 TRIGGER_CELERY_CONTINUE_IN_PLACE="0")
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


def test_a_settled_task_continues_its_run_in_place(start_worker, store_redis):
    """With the hold off every call suspends the run; the task's worker process then continues
    the run itself (continue_in_place): one run message in all, the rest run in the tasks'."""
    from tests.hold_app import client

    start_worker(APP, name="cip", TRIGGER_CELERY_DISPATCH_HOLD_S="0")
    h = client.trigger("chain", {"tag": "cip", "n": 3, "sleep": 0.2})
    assert h.result(timeout=60) == {"total": 3}
    assert client.get_run(h.id).executions == 4
    assert store_redis.lrange("side:cip:exec", 0, -1) == [
        "trigger-celery.run", "ctr.ops.bump", "ctr.ops.bump", "ctr.ops.bump"]
    assert [side(store_redis, "cip", i) for i in range(3)] == [1, 1, 1]


def test_no_continuing_in_place_when_off_or_where_the_runs_queue_is_not_consumed(
        start_worker, store_redis):
    from tests.hold_app import client

    off = start_worker(APP, name="cip-off", TRIGGER_CELERY_DISPATCH_HOLD_S="0",
                       TRIGGER_CELERY_CONTINUE_IN_PLACE="0")
    h = client.trigger("chain", {"tag": "cip-off", "n": 2})
    assert h.result(timeout=60) == {"total": 1}
    assert store_redis.lrange("side:cip-off:exec", 0, -1) == ["trigger-celery.run"] * 3
    off.stop()

    # tasks on a worker of the ctr queue alone, runs on another: every resume is a message
    start_worker(APP, name="cip-ctr", queues="ctr", TRIGGER_CELERY_DISPATCH_HOLD_S="0")
    start_worker(APP, name="cip-runs", queues=client.settings.runs_queue,
                 TRIGGER_CELERY_DISPATCH_HOLD_S="0")
    h = client.trigger("chain", {"tag": "cip-split", "n": 2})
    assert h.result(timeout=60) == {"total": 1}
    assert store_redis.lrange("side:cip-split:exec", 0, -1) == ["trigger-celery.run"] * 3


def test_a_task_settling_while_its_run_suspends_still_wakes_it(start_worker, store_redis):
    """The run's suspension is held open (a before_suspend hook) until the task it waits on
    has completed and tried to wake the run; the run must still resume. A call that does not
    hold sends its task only once the suspension is stored, so the race needs a task sent
    before: a hold that gives up at once (``dispatch_hold_s`` 1 ms; no continuing in place, so
    that the one-call run holds), the run's hash still naming the task ``held`` when it
    settles (its settle then hands the record to the hold and marks nothing on the run). A
    threads pool: its hold gate admits one holder without looking for an idle process, so the
    run holds whatever the other thread is doing."""
    from tests.hold_app import client

    start_worker(APP, name="hold-race", pool="threads", TRIGGER_CELERY_DISPATCH_HOLD_S="0.001",
                 TRIGGER_CELERY_CONTINUE_IN_PLACE="0", TESTS_HOLD_SUSPENSION_OPEN="1")
    h = client.trigger("chain", {"tag": "race", "n": 1, "sleep": 0.2})  # outlives the hold
    assert h.result(timeout=20) == {"total": 0}  # well before dispatch_check_s would re-check
    assert store_redis.llen(f"side:held:{h.id}") == 1  # the task completed first
    assert client.get_run(h.id).executions == 2
    assert side(store_redis, "race", 0) == 1


def test_where_a_time_limit_keeps_a_run_from_continuing_in_place_a_short_run_holds(
        start_worker, store_redis):
    """An app-wide Celery time limit keeps a settled task from continuing its run in place
    (it would run inside the limit); a short run then holds for its calls from the first,
    instead of suspending at each and resuming through a run message (four executions). A
    threads pool, whose hold gate admits one holder whatever the other thread does."""
    from tests.hold_app import client

    start_worker(APP, name="hold-limited", pool="threads", TESTS_SOFT_TIME_LIMIT="60",
                 TRIGGER_CELERY_DISPATCH_HOLD_START_S="5", TRIGGER_CELERY_DISPATCH_HOLD_S="30")
    h = client.trigger("chain", {"tag": "limited", "n": 3})
    assert h.result(timeout=60) == {"total": 3}
    assert client.get_run(h.id).executions == 1
    assert set(store_redis.lrange("side:limited:exec", 0, -1)) == {"trigger-celery.run"}


def test_no_free_process_the_hold_gives_way_within_the_start_window(start_worker, store_redis):
    """One pool process: while it holds the run, nobody can run the task. The hold (30 s) must
    not wait it out: the task has not started within dispatch_hold_start_s, so the run
    suspends and the process runs the task."""
    from tests.hold_app import client

    start_worker(APP, concurrency=1, name="hold-alone", TRIGGER_CELERY_DISPATCH_HOLD_S="30",
                 TRIGGER_CELERY_CONTINUE_IN_PLACE="0")
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
    n, done = 9, HOLD_AFTER_TASKS + 2  # the run holds from its task HOLD_AFTER_TASKS on
    h = client.trigger("chain", {"tag": "kill", "n": n, "sleep": 0.4})
    deadline = time.time() + 30
    while not side(store_redis, "kill", done - 1):
        assert time.time() < deadline
        time.sleep(0.01)
    time.sleep(0.1)  # the run holds for the next task, which sleeps in the other process
    assert client.get_run(h.id).status == "EXECUTING"
    doomed.kill()

    start_worker(APP, name="hold-rescuer", **env)
    assert h.result(timeout=60) == {"total": sum(range(n))}
    run = client.get_run(h.id)
    assert run.lost_executions >= 1
    assert [side(store_redis, "kill", i) for i in range(done)] == [1] * done  # never again
    # the task in flight at the kill may run once more; the rest once
    assert all(side(store_redis, "kill", i) in (1, 2) for i in range(done, n))
    assert [t.status for t in run.tasks] == ["COMPLETED"] * n


def test_an_unheld_dispatch_stores_its_record_with_the_suspension_then_sends_it(
        store_redis, urls):
    """Without a hold (here a short run that the task's worker can continue in place) the
    task's record is written by the run's suspension itself, and the task's message goes out
    only once that is stored: the run is WAITING before the task can settle, so the settle
    always wakes it (continuing it in place on a worker) rather than leaving wake_pending."""
    import json

    import redis

    from tests.hold_app import client, counter
    from trigger_celery._keys import idempotency_key

    broker = redis.Redis.from_url(urls["broker"])
    h = client.trigger("chain", {"tag": "order", "n": 1})
    run_key, tasks_key = client.store.run_keys(h.id)[:2]
    idem = idempotency_key(h.id, None, "t0")
    seen = []

    def before(x, s) -> None:  # the suspension is about to be stored
        seen.append((s.idem, s.rec["status"], store_redis.hexists(tasks_key, idem),
                     broker.llen("ctr")))

    client.executor.before_suspend.append(before)
    try:
        assert client.executor.execute(h.id, int(store_redis.hget(run_key, "seq"))) == "ok"
    finally:
        client.executor.before_suspend.remove(before)
    assert seen == [(idem, "PENDING", False, 0)]  # nothing stored nor sent before it
    assert store_redis.hget(run_key, "status") == "WAITING"
    assert json.loads(store_redis.hget(tasks_key, idem))["status"] == "PENDING"
    assert broker.llen("ctr") == 1  # the task's message, after the suspension
    assert client.executor.execute_operation(counter, "ops.bump", h.id, idem, 1) == "ok"
    assert store_redis.hget(run_key, "status") == "QUEUED"  # woken by the settle
    assert not store_redis.hget(run_key, "wake_pending")
    broker.delete("ctr")


def test_an_unheld_dispatch_is_sent_when_its_suspension_reply_was_lost(
        store_redis, urls, monkeypatch):
    """The suspension that stores the task's record ran, but its reply was lost: the retried
    write finds the lease gone ('lost'); the record is stored, so the task is sent all the
    same, not left to the run's check 30 s later."""
    import redis

    from tests.hold_app import client
    from trigger_celery._keys import idempotency_key

    broker = redis.Redis.from_url(urls["broker"])
    broker.delete("ctr")
    h = client.trigger("chain", {"tag": "lost-reply", "n": 1})
    run_key = client.store.run_key(h.id)
    real, outcomes = client.store.suspend, []

    def suspend_reply_lost(*args, **kwargs):
        got = real(*args, **kwargs)
        outcomes.append(got.outcome)
        if len(outcomes) == 1:
            raise redis.ConnectionError("reply lost")
        return got

    monkeypatch.setattr(client.store, "suspend", suspend_reply_lost)
    assert client.executor.execute(h.id, int(store_redis.hget(run_key, "seq"))) == "ok"
    assert outcomes == ["waiting", "lost"]
    assert store_redis.hget(run_key, "status") == "WAITING"
    assert store_redis.hexists(client.store.run_keys(h.id)[1], idempotency_key(h.id, None, "t0"))
    assert broker.llen("ctr") == 1
    broker.delete("ctr")


def test_a_suspension_of_a_canceled_run_stores_no_record(store_redis):
    """As a checkpoint of a canceled run writes nothing, neither does its suspension: no task
    shown PENDING that was never sent."""
    from tests.hold_app import client
    from trigger_celery._store import dumps

    store = client.store
    run_id, token = _executing_run(client, store_redis, "canceled")
    assert store.cancel(run_id) == "CANCELED"
    suspended = store.suspend(run_id, token, wake_at=None, reason="waiting for t0",
                              due_s=time.time() + 60, idem="i0",
                              record_json=dumps(_record("canceled")), waits_on="i0")
    assert suspended.outcome == "canceled"
    assert not store_redis.hexists(store.run_keys(run_id)[1], "i0")


def test_a_lease_released_by_an_earlier_holder_stays_with_the_new_one(store_redis):
    """In a threads or gevent pool a run can be continued in place in the process whose
    execution of it just suspended: that execution's release must not stop the renewals of
    the new execution's lease (same key, another token)."""
    from tests.hold_app import client
    from trigger_celery._execution import LeaseKeeper

    leases = LeaseKeeper(client.store)
    key = client.store.run_keys("run_release")[3]
    leases.hold(key, "first", "run_release", 1)
    leases.hold(key, "second", "run_release", 2)  # continued in place, the same process
    leases.release(key, "first")  # the suspended execution's finally
    assert leases.expires_at(key) > 0
    leases.release(key, "second")
    assert leases.expires_at(key) == 0


def test_a_resent_record_with_a_lone_surrogate_is_compared_not_refused(store_redis):
    """A dispatched task's re-send compares the stored record's attempts (checkpoint.lua with
    expect_attempts); a record holding a lone surrogate (escaped as JSON allows, which Lua's
    cjson refuses) is compared like any other instead of failing the script."""
    from tests.hold_app import client

    store = client.store
    run_id, token = _executing_run(client, store_redis, "surrogate")
    stored = '{"key":"t0","status":"PENDING","attempts":0,"params":{"tag":"\\ud800"}}'
    store_redis.hset(store.run_keys(run_id)[1], "i0", stored)
    resent = stored.replace('"attempts":0', '"attempts":0,"resends":1')
    assert store.checkpoint(run_id, token, "i0", resent, expect_attempts=0) == "stored"
    assert store.checkpoint(run_id, token, "i0", resent, expect_attempts=1) == "moved"


def _executing_run(client, store_redis, tag: str) -> tuple[str, str]:
    """A run of ``chain`` taken by this process as an execution would (no worker runs it)."""
    h = client.trigger("chain", {"tag": tag, "n": 1})
    seq = int(store_redis.hget(client.store.run_key(h.id), "seq"))
    assert client.store.acquire(h.id, "exec-token", seq, 30_000).outcome == "ok"
    return h.id, "exec-token"


def _record(tag: str) -> dict:
    from tests.hold_app import counter

    call = {"tag": tag, "i": 3}
    return {"key": "t0", "idem": "i0", "kind": "dispatched", "name": "ctr.ops.bump",
            "status": "PENDING", "attempts": 0, "params": call, "call": call, "properties": [],
            "connection": counter.connection_key, "queue": "ctr", "created_at": time.time()}


def test_a_settle_after_the_hold_gave_up_makes_its_suspension_due_now(store_redis):
    """The held task's settle hands its record to the hold and marks nothing on the run; if the
    hold gave up just before, the suspension must find the settled record and be due now."""
    from tests.hold_app import client
    from trigger_celery._store import dumps

    store = client.store
    run_id, token = _executing_run(client, store_redis, "race")
    assert store.checkpoint(run_id, token, "i0", dumps(_record("race")), held=True) == "stored"
    assert store_redis.hget(store.run_key(run_id), "held") == "i0"
    assert store.task_start(run_id, "i0", 1, "w", 30_000).outcome == "ok"
    done = {**_record("race"), "status": "COMPLETED", "attempts": 1, "output": 3}
    store.task_settle(run_id, "i0", "w", dumps(done), completed=True, settled=True)
    # handed to the hold, which would go on in place: no wake_pending, nothing else to wake it
    assert store_redis.lrange(store.notify_key(run_id), 0, -1) == ["i0\n" + dumps(done)]
    assert not store_redis.hget(store.run_key(run_id), "wake_pending")
    assert not store_redis.hexists(store.run_key(run_id), "held")
    # ...but the hold gave up first: its suspension names the task and is due now
    suspended = store.suspend(run_id, token, wake_at=None, reason="waiting for t0",
                              due_s=time.time() + 60, waits_on="i0")
    assert suspended.outcome == "now"


def test_a_settle_after_the_suspension_wakes_the_run(store_redis):
    from tests.hold_app import client
    from trigger_celery._store import dumps

    store = client.store
    run_id, token = _executing_run(client, store_redis, "late-settle")
    assert store.checkpoint(run_id, token, "i0", dumps(_record("x")), held=True) == "stored"
    suspended = store.suspend(run_id, token, wake_at=None, reason="waiting for t0",
                              due_s=time.time() + 60, waits_on="i0")
    assert suspended.outcome == "waiting"  # not settled yet: the settle will wake it
    assert not store_redis.hexists(store.run_key(run_id), "held")
    assert store.task_start(run_id, "i0", 1, "w", 30_000).outcome == "ok"
    done = {**_record("x"), "status": "COMPLETED", "attempts": 1, "output": 3}
    settled = store.task_settle(run_id, "i0", "w", dumps(done), completed=True, settled=True)
    assert settled.outcome == "wake"
    assert store_redis.llen(store.notify_key(run_id)) == 0


def test_a_held_task_that_settles_into_a_retry_ends_the_hold_and_the_run_is_due_now(store_redis):
    from tests.hold_app import client
    from trigger_celery._store import dumps

    store = client.store
    run_id, token = _executing_run(client, store_redis, "retry")
    assert store.checkpoint(run_id, token, "i0", dumps(_record("retry")), held=True) == "stored"
    assert store.task_start(run_id, "i0", 1, "w", 30_000).outcome == "ok"
    waiting = {**_record("retry"), "status": "WAITING", "attempts": 1,
               "retry_at": time.time() + 60}
    store.task_settle(run_id, "i0", "w", dumps(waiting))
    assert store.hold_next(run_id, 1) == "i0"  # no record: the hold gives up
    assert store_redis.hget(store.run_key(run_id), "wake_pending") == "2"
    suspended = store.suspend(run_id, token, wake_at=None, reason="waiting for t0",
                              due_s=time.time() + 60, waits_on="i0")
    assert suspended.outcome == "now"


def test_a_task_lease_is_taken_back_only_while_its_attempt_is_unsettled(store_redis):
    """A task attempt's lease that expired while the store was away is taken back by its
    worker's renewal; once the attempt settled (its settle deleted the lease), a renewal that
    comes just after does not bring the lease back, so the next attempt can start."""
    from tests.hold_app import client
    from trigger_celery._store import dumps

    store = client.store
    run_id, token = _executing_run(client, store_redis, "renew")
    assert store.checkpoint(run_id, token, "i0", dumps(_record("renew"))) == "stored"
    assert store.task_start(run_id, "i0", 1, "w1", 30_000).outcome == "ok"
    tlease, task = store.task_lease_key(run_id, "i0"), (run_id, "i0", 1)
    assert store.renew(tlease, "w1", 30_000, task=task) == 1
    store_redis.delete(tlease)  # expired while the store was away
    assert store.renew(tlease, "w1", 30_000, task=task) == 2
    assert store_redis.get(tlease) == "w1"
    retry = {**_record("renew"), "status": "WAITING", "attempts": 1, "retry_at": time.time()}
    assert store.task_settle(run_id, "i0", "w1", dumps(retry)).outcome == "pending"
    assert store.renew(tlease, "w1", 30_000, task=task) == 0  # a renewal just after the settle
    assert not store_redis.exists(tlease)
    assert store.task_start(run_id, "i0", 2, "w2", 30_000).outcome == "ok"
    # a rate-limit deferral settles the attempt and leaves its record's attempts unchanged
    # (the same attempt is sent again at its slot): no take-back after it either
    assert store.renew(tlease, "w2", 30_000, task=(run_id, "i0", 2)) == 1
    deferred = {**retry, "rate_limited_until": time.time() + 1}
    assert store.task_settle(run_id, "i0", "w2", dumps(deferred)).outcome == "pending"
    assert store.renew(tlease, "w2", 30_000, task=(run_id, "i0", 2)) == 0
    assert store.task_start(run_id, "i0", 2, "w3", 30_000).outcome == "ok"


def test_an_attempt_with_no_record_runs_nothing(store_redis):
    """A message whose record never came (its execution died between the two): dropped."""
    from tests.hold_app import client, counter

    run_id, _ = _executing_run(client, store_redis, "none")
    assert client.executor.execute_operation(counter, "ops.bump", run_id, "nope", 1) == "missing"
    assert side(store_redis, "none", 3) == 0


def test_a_task_under_a_celery_time_limit_does_not_continue_its_run_in_place():
    """A run continued in place would run inside the task's time limit and be cut short."""
    from celery import Celery

    from trigger_celery._execution import _time_limited

    app = Celery("limits", set_as_current=False)

    @app.task(shared=False)
    def call() -> None: ...

    @app.task(shared=False, soft_time_limit=30)
    def limited() -> None: ...

    assert not _time_limited(call) and _time_limited(limited)
    app.conf.task_time_limit = 60
    assert _time_limited(call)

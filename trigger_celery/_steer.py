"""Steering a waiting run by hand: ``retry_now`` moves a task's backoff wake-up to now."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import redis

from trigger_celery._errors import ConfigurationError, RunNotFoundError
from trigger_celery._states import WAITING
from trigger_celery._store import dumps

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient


def retry_now(client: TriggerClient, run_id: str, key: str) -> float:
    """Run the next attempt of task ``key`` now instead of at the end of its backoff.

    The task must be WAITING to retry (after a failed attempt, or deferred by ``on_error``) and
    its run WAITING (no execution in progress). Its ``retry_at`` becomes now, the run's wake-up
    moves to now (its sequence number grows, so the old delayed message does nothing) and a run
    message is sent; a dispatched task's attempt is sent by the run when it resumes (an older
    delayed attempt message then finds the attempt taken and does nothing).

    Returns the ``retry_at`` it replaced (epoch seconds).

    Raises:
        RunNotFoundError: no such run.
        ConfigurationError: no task ``key``, the task is not waiting to retry, or the run is
            not WAITING (executing, finished, queued), named in the message.
    """
    store = client.store
    run_key, tasks_key, _, _ = store.run_keys(run_id)
    h: dict[str, str] = {}
    seq = 0
    with store.redis.pipeline(transaction=True) as p:
        for _ in range(5):
            try:
                p.watch(run_key, tasks_key)  # type: ignore[no-untyped-call]
                h = {str(k): str(v) for k, v in p.hgetall(run_key).items()}
                if not h:
                    raise RunNotFoundError(f"no run {run_id!r}")
                recs = [json.loads(v) for v in p.hvals(tasks_key)]
                named = [r for r in recs if r.get("key") == key]
                if not named:
                    raise ConfigurationError(f"run {run_id} has no task with key {key!r}")
                rec = next((r for r in named if r.get("status") == WAITING
                            and r.get("retry_at") and r.get("kind") != "wait"), None)
                if rec is None:
                    raise ConfigurationError(
                        f"task {key!r} of run {run_id} is {named[0].get('status')}, not waiting "
                        "to retry: only a task waiting on backoff can be retried now")
                if h.get("status") != WAITING:
                    raise ConfigurationError(
                        f"run {run_id} is {h.get('status')}: retry-now needs a WAITING run; "
                        "try again when it waits")
                before = float(rec["retry_at"])
                now = store.now()
                rec["retry_at"] = now
                if rec.get("kind") == "dispatched":
                    rec["resend_by_run"] = True  # the run sends the attempt when it resumes
                p.multi()
                p.hset(tasks_key, rec["idem"], dumps(rec))
                p.hincrby(run_key, "seq", 1)
                p.hset(run_key, mapping={"wake_at": now, "updated_at": now})
                p.zadd(store.schedule_key(run_id), {run_id: now + store.grace_s})
                seq = int(p.execute()[1])
                break
            except redis.WatchError:
                continue
        else:
            raise ConfigurationError(f"run {run_id} kept changing; try again")
    client.executor.publish_run(run_id, seq, job_id=h.get("job_id", ""),
                                queue=h.get("queue", ""))
    return before

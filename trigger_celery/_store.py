"""The Redis data model: every key, every TTL, and the Lua scripts that change several at once.

Keys (``P`` is ``Settings.key_prefix``; ``{run_id}`` is a Redis Cluster hash tag, so a run's keys
live in one slot)::

    P:run:{run_id}                hash    id, job_id, job_version, status, payload, output, error,
                                          created_at, started_at, finished_at, updated_at, seq,
                                          executions, wake_at, wait_reason, logs_dropped, claims
                                          (poller sends since the last execution began),
                                          backlog_since (its message waits behind others), ...
    P:run:{run_id}:tasks          hash    idempotency key -> task record (JSON)
    P:run:{run_id}:logs           list    log entries (JSON), at most ``max_log_entries``
    P:run:{run_id}:lease          string  token of the execution holding the run (PX lease_s)
    P:run:{run_id}:tlease:<idem>  string  token of the worker running a dispatched task attempt
    P:run:{run_id}:tstarts        hash    "<idem>:<attempt>" -> starts of that dispatched attempt
                                          (2+: a worker died in it; TTL run_retention_s)
    P:schedule                    zset    run_id -> epoch seconds when the poller must look at it
                                          (wake-up of a wait or retry, safety net of a message,
                                          lease expiry of an execution)
    P:runs                        zset    run_id -> created_at (listing)
    P:trigger:<job_id>:<key>      string  run id of a trigger idempotency key (TTL idempotency)
    P:event:<event_id>            string  JSON list of run ids an event started (TTL idempotency)
    P:jobs                        hash    job_id -> JSON description published by workers
    P:consumers                   hash    queue name -> epoch seconds a live worker last said it
                                          consumes that queue (every poller round)
    P:consumers:since             hash    queue name -> epoch seconds its current unbroken spell
                                          of consumption began

TTLs: finished runs keep ``run_retention_s`` (7 days); trigger keys and event ids
``idempotency_retention_s`` (7 days); runs that have not finished never expire. Creating a run
never overwrites an existing run's record.

The schedule and the poller's script (``claim_due.lua``) span runs, so they are the one part that
needs a single Redis node; each run's own scripts touch its slot and the schedule.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from importlib import resources
from typing import Any, NamedTuple, cast

import redis

from trigger_celery._settings import Settings

RUN_STATUSES = ("QUEUED", "EXECUTING", "WAITING", "SUCCESS", "FAILURE", "CANCELED")
FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
TASK_STATUSES = ("PENDING", "RUNNING", "WAITING", "COMPLETED", "ERRORED", "CANCELED")

_SCRIPTS = (
    "acquire", "checkpoint", "renew", "suspend", "finish", "cancel", "create_run",
    "task_start", "task_settle", "claim_due", "log", "reset_task",
)


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def dumps(value: Any) -> str:
    """Compact JSON, the one encoding we store and send. Raises TypeError/ValueError if not JSON."""
    return _encode(value)  # one encoder, built once: json.dumps(**options) builds one per call


class DispatchState(NamedTuple):
    """What a run knows of a dispatched attempt's message when it checks on it.

    Attributes:
        starts: how many times a worker started this attempt (``task_start.lua``; 0: its
            message was never received).
        running: a worker holds the attempt's task lease now.
        consumer_seen_s: epoch seconds a live worker last reported consuming the task's
            queue (``None``: never).
        consumer_since_s: epoch seconds the queue's current spell of consumption began.
    """

    starts: int
    running: bool
    consumer_seen_s: float | None
    consumer_since_s: float | None


class Store:
    """Redis access for runs, tasks, leases, the schedule and idempotency records.

    Parameters:
        settings: the client's settings (``redis_url``, ``key_prefix``, TTLs).
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.prefix = settings.key_prefix
        self.redis: redis.Redis = redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            health_check_interval=10,
            socket_keepalive=True,
            retry_on_timeout=True,
        )
        self.schedule_key = f"{self.prefix}:schedule"
        self.runs_key = f"{self.prefix}:runs"
        self.jobs_key = f"{self.prefix}:jobs"
        self.consumers_key = f"{self.prefix}:consumers"
        self.consumers_since_key = f"{self.prefix}:consumers:since"
        lua = resources.files("trigger_celery") / "lua"
        self._scripts = {
            name: self.redis.register_script((lua / f"{name}.lua").read_text())
            for name in _SCRIPTS
        }

    # -- keys --------------------------------------------------------------------------------

    def run_key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{{{run_id}}}"

    def run_keys(self, run_id: str) -> tuple[str, str, str, str]:
        """(run, tasks, logs, lease) keys of a run."""
        base = self.run_key(run_id)
        return base, f"{base}:tasks", f"{base}:logs", f"{base}:lease"

    def task_lease_key(self, run_id: str, idem: str) -> str:
        return f"{self.run_key(run_id)}:tlease:{idem}"

    def task_starts_key(self, run_id: str) -> str:
        return f"{self.run_key(run_id)}:tstarts"

    def trigger_key(self, job_id: str, key: str) -> str:
        return f"{self.prefix}:trigger:{job_id}:{key}"

    def event_key(self, event_id: str) -> str:
        return f"{self.prefix}:event:{event_id}"

    def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return self._scripts[name](keys=keys, args=args)

    # -- runs --------------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        fields: dict[str, Any],
        *,
        idem_key: str | None = None,
        due_s: float | None = None,
        final: bool = False,
        idem_ttl_s: int | None = None,
    ) -> tuple[bool, str]:
        """Create a run hash (atomically with its idempotency key, when given); an existing run
        is never overwritten.

        Parameters:
            idem_ttl_s: how long ``idem_key`` lives, in seconds (default
                ``idempotency_retention_s``).

        Returns ``(created, run_id)``; ``created`` is False when ``idem_key`` already named a
        run, whose id is returned instead, or when a run with ``run_id`` exists.
        """
        now = time.time()
        run, _, _, _ = self.run_keys(run_id)
        status, rid = self.script(
            "create_run",
            [run, self.schedule_key, self.runs_key, idem_key or f"{self.prefix}:unused"],
            [
                run_id, dumps(fields), "1" if idem_key else "",
                idem_ttl_s or self.settings.idempotency_retention_s, now,
                due_s if due_s is not None else now + self.grace_s, "1" if final else "",
                self.settings.run_retention_s,
            ],
        )
        return status == "created", rid

    @property
    def grace_s(self) -> float:
        """Seconds after which the poller re-sends a message that should have arrived."""
        return max(self.settings.lease_s, 2 * self.settings.poll_interval_s)

    def get_run_hash(self, run_id: str) -> dict[str, str]:
        return self.redis.hgetall(self.run_key(run_id))  # type: ignore[return-value]

    def load_run(
        self, run_id: str
    ) -> tuple[dict[str, str], dict[str, str], list[str], dict[str, str]]:
        """(run hash, tasks hash, log entries, dispatched attempt starts) in one round trip;
        the starts map ``"<idem>:<attempt>"`` to how many times a worker started it."""
        run, tasks, logs, _ = self.run_keys(run_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(run)
        pipe.hgetall(tasks)
        pipe.lrange(logs, 0, -1)
        pipe.hgetall(self.task_starts_key(run_id))
        r, t, lg, st = pipe.execute()
        return r, t, lg, st

    def cancel(self, run_id: str) -> str:
        run, tasks, logs, _ = self.run_keys(run_id)
        return str(self.script(
            "cancel", [run, tasks, logs, self.schedule_key],
            [run_id, time.time(), self.settings.run_retention_s],
        ))

    def reset_tasks(self, run_id: str, idems: list[str]) -> tuple[str, int]:
        """Delete task records; a FAILURE run goes back to QUEUED (its TTL removed).

        Returns ``(outcome, seq)``: ``requeued`` (send a run message with ``seq``), ``cleared``,
        ``busy`` (an execution holds the run) or ``missing``.
        """
        run, tasks, logs, _ = self.run_keys(run_id)
        res = self.script("reset_task", [run, tasks, logs, self.schedule_key],
                          [run_id, time.time(), time.time() + self.grace_s, *idems])
        return str(res[0]), int(res[1]) if len(res) > 1 and res[1] is not None else 0

    def list_runs(self, limit: int = 50) -> list[dict[str, str]]:
        """The newest runs' hashes, newest first; expired runs are dropped from the index."""
        self.redis.zremrangebyscore(
            self.runs_key, "-inf", time.time() - self.settings.run_retention_s - 3600
        )
        ids = cast("list[str]", self.redis.zrevrange(self.runs_key, 0, limit * 4))
        pipe = self.redis.pipeline(transaction=False)
        for rid in ids:
            pipe.hgetall(self.run_key(rid))
        return [h for h in pipe.execute() if h][:limit]

    # -- jobs registry -----------------------------------------------------------------------

    def publish_jobs(self, jobs: dict[str, dict[str, Any]]) -> None:
        if jobs:
            self.redis.hset(self.jobs_key, mapping={k: dumps(v) for k, v in jobs.items()})

    def registered_jobs(self) -> dict[str, dict[str, Any]]:
        raw: dict[str, str] = self.redis.hgetall(self.jobs_key)  # type: ignore[assignment]
        return {k: json.loads(v) for k, v in raw.items()}

    # -- dispatched messages -----------------------------------------------------------------

    def mark_consuming(self, queues: Iterable[str], now_s: float, gap_s: float) -> None:
        """Record that a live worker consumes ``queues`` (at epoch seconds ``now_s``), so a run
        can tell a message nobody could have taken (known queued) from one a worker may
        have lost. A queue nobody reported for ``gap_s`` seconds starts a new spell of
        consumption (``P:consumers:since``)."""
        names = sorted(set(queues))
        if not names:
            return
        last = cast("list[str | None]", self.redis.hmget(self.consumers_key, names))
        fresh = [n for n, seen in zip(names, last, strict=True)
                 if seen is None or now_s - float(seen) > gap_s]
        pipe = self.redis.pipeline(transaction=False)
        if fresh:
            pipe.hset(self.consumers_since_key, mapping=dict.fromkeys(fresh, now_s))
        pipe.hset(self.consumers_key, mapping=dict.fromkeys(names, now_s))
        pipe.execute()

    def dispatch_state(self, run_id: str, idem: str, attempt: int, queue: str) -> DispatchState:
        """Whether dispatched attempt ``attempt`` of task ``idem`` started or runs now, and when
        a worker last consumed ``queue``; one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(self.task_starts_key(run_id), f"{idem}:{attempt}")
        pipe.exists(self.task_lease_key(run_id, idem))
        pipe.hget(self.consumers_key, queue)
        pipe.hget(self.consumers_since_key, queue)
        starts, running, seen, since = pipe.execute()
        return DispatchState(int(starts or 0), bool(running), float(seen) if seen else None,
                             float(since) if since else None)

    # -- poller ------------------------------------------------------------------------------

    def claim_due(self, limit: int = 200,
                  backlogged: Iterable[str] = ()) -> list[tuple[str, int, str, str]]:
        """Runs due for a message now: ``[(run_id, seq, job_id, runs_queue), ...]`` (at most
        ``limit``). Each claimed entry is pushed back so a lost message is sent again: by
        ``grace_s * 2 ** (n - 1)`` seconds for the n-th claim since the run's last execution
        began, capped at ``resend_max_s``. A run whose message is already out on one of the
        ``backlogged`` queues (not empty: it waits behind others there) is not claimed but
        looked at again as long after as it has been behind (from ``poll_interval_s`` up to
        ``grace_s``), for at most ``resend_max_s`` in a row."""
        flat = self.script(
            "claim_due", [self.schedule_key],
            [time.time(), self.grace_s, limit, self.prefix, self.settings.resend_max_s,
             self.settings.poll_interval_s, *sorted(set(backlogged))],
        )
        return [(flat[i], int(flat[i + 1]), flat[i + 2], flat[i + 3])
                for i in range(0, len(flat), 4)]

    def next_due_s(self) -> float | None:
        """Epoch seconds of the earliest schedule entry (``None``: the schedule is empty)."""
        first = cast("list[tuple[str, float]]",
                     self.redis.zrange(self.schedule_key, 0, 0, withscores=True))
        return float(first[0][1]) if first else None

    def renew(self, lease_key: str, token: str, lease_ms: int, run_id: str = "") -> bool:
        due = time.time() + lease_ms / 1000
        return bool(self.script(
            "renew", [lease_key, self.schedule_key], [token, lease_ms, run_id, due]
        ))

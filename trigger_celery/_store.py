"""The Redis data model: every key, every TTL, and the Lua scripts that change several at once.

Keys (``P`` is ``Settings.key_prefix`` on a single Redis with one shard; with ``store_shards``
above 1 or ``redis_cluster`` it is the shard's base ``{P:s<k>}``, a Redis Cluster hash tag, so a
run's keys and its shard's cross-run structures live in one slot and every script stays atomic
on one node; see :meth:`Store.shard_of`)::

    P:run:{run_id}                hash    id, job_id, job_version, status, payload, output, error,
                                          created_at, started_at, finished_at, updated_at, seq,
                                          executions, wake_at, wait_reason, logs_dropped, claims
                                          (poller sends since the last execution began),
                                          backlog_since (its message waits behind others), ...
    P:run:{run_id}:tasks          hash    idempotency key -> task record (JSON)
    P:run:{run_id}:logs           list    log entries (JSON), at most ``max_log_entries``
    P:run:{run_id}:lease          string  token of the execution holding the run (PX lease_s)
    P:run:{run_id}:tlease:<idem>  string  token of the worker running a dispatched task attempt
    P:run:{run_id}:tstarts        hash    "<idem>:<attempt>" -> starts of that dispatched attempt;
                                          "<idem>:settled_by" -> token of its last settle
                                          (2+: a worker died in it; TTL run_retention_s)
    P:run:{run_id}:notify         list    for an execution holding for a dispatched task
                                          (``_hold.py``, the run hash's ``held`` field names
                                          it): "<idem>\n<record JSON>" when it settles for
                                          good, "<idem>" when it settles into a retry
                                          (TTL dispatch_hold_s + 5 s)
    P:run:{run_id}:waitfor        set     idempotency keys of an ``io.parallel`` batch's
                                          dispatched tasks the waiting run still waits for
                                          (the last to complete wakes it; TTL run_retention_s,
                                          deleted when the run executes or finishes)
    P:schedule                    zset    run_id -> epoch seconds when the poller must look at it
                                          (wake-up of a wait or retry, safety net of a message,
                                          lease expiry of an execution)
    P:runs                        zset    run_id -> created_at (listing)
    P:trigger:<job_id>:<key>      string  run id of a trigger idempotency key (TTL idempotency)
    P:event:<event_id>            string  JSON list of run ids an event started (TTL idempotency)
    (the keys below are not sharded: ``P`` is always ``Settings.key_prefix``)
    P:jobs                        hash    job_id -> JSON description published by workers
    P:ratelimit:{owner}:closed    string  epoch s until which the provider said no requests are
                                          left on a connection (PXAT that time)
    P:ratelimit:{owner}:<scope>:<limit>/<period>:log    zset  call -> epoch s (sliding window)
    P:ratelimit:{owner}:<scope>:<limit>/<period>:queue  zset  waiting call -> hint (epoch s)
    P:testclock                   string  the test clock's offset in seconds (``test_clock``
                                          setting only; see ``_time.OffsetClock``)
    P:consumers                   hash    queue name -> epoch seconds a live worker last said it
                                          consumes that queue (every poller round)
    P:consumers:since             hash    queue name -> epoch seconds its current unbroken spell
                                          of consumption began
    P:conc:...                    zsets   concurrency keys' slot holders and lines of waiting
                                          runs (see ``_concurrency``; run fields ``conc_key``,
                                          ``conc_name``, ``conc_limit``)

TTLs: finished runs keep ``run_retention_s`` (7 days); trigger keys and event ids
``idempotency_retention_s`` (7 days); runs that have not finished never expire. Creating a run
never overwrites an existing run's record.

Each Lua script under ``lua/`` has one typed method here (``acquire``, ``checkpoint``, ``suspend``,
``finish``, ``log``, ``cancel``, ``create_run``, ``reset_tasks``, ``task_start``, ``task_settle``,
``claim_due``, ``renew``) returning a small result type (:class:`Acquired`,
:class:`Suspended`, ...); no caller builds KEYS or ARGV. Statuses and record shapes are in
``_states``.

Shards: a run belongs to shard ``crc32(run_id) % store_shards``, and its keys, the schedule and
runs index of its shard, its trigger key and its concurrency key's line live there. Run ids are
drawn so that a run lands in the shard it must: a run with a trigger idempotency key or of a job
with a concurrency limit in its job's shard (``crc32(job_id) % store_shards``, so the key can be
looked up before a run id exists, and all runs of a concurrency key share the key's line); other
runs anywhere. The poller claims from every shard; listings merge them.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any, Literal, NamedTuple, cast

import redis

from trigger_celery._concurrency import Slots, lua_source
from trigger_celery._connection import connect
from trigger_celery._keys import new_run_id
from trigger_celery._replicas import ACKED_SCRIPTS, acked_call
from trigger_celery._settings import Settings
from trigger_celery._text import json_encoder
from trigger_celery._time import OffsetClock, clock_key

_SCRIPTS = (
    "acquire", "checkpoint", "renew", "suspend", "finish", "cancel", "create_run",
    "task_start", "task_settle", "claim_due", "log", "reset_task", "replay_warning",
    "ratelimit_acquire",
)
#: Scripts with a library of shared Lua functions before them (``lua_source``).
_SCRIPT_LIBS = {"acquire": "conc_lib", "checkpoint": "record_lib", "renew": "record_lib",
                "suspend": "record_lib", "task_start": "record_lib"}


class Created(NamedTuple):
    """:meth:`Store.create_run`: ``created`` is False when the idempotency key already named a
    run; ``run_id`` is then that run's id."""

    created: bool
    run_id: str


class Acquired(NamedTuple):
    """:meth:`Store.acquire`: ``outcome`` ``ok`` (the lease is ours; ``run`` is the run's hash
    and ``tasks`` its task records, idempotency key -> JSON), ``missing``, ``finished`` (the run
    ended), ``stale`` (``seq`` is not the run's), ``busy`` (another execution holds it) or
    ``queued`` (its concurrency key has no free slot: it waits in the key's line)."""

    outcome: Literal["ok", "missing", "finished", "stale", "busy", "queued"]
    run: dict[str, str]
    tasks: dict[str, str]


class Suspended(NamedTuple):
    """:meth:`Store.suspend`: ``outcome`` ``waiting`` (due at the wake-up), ``now`` (a task
    settled meanwhile: send the run's message at once), ``canceled`` or ``lost`` (the lease was
    gone; nothing written); ``seq`` the run's new sequence number (0 when ``lost``)."""

    outcome: Literal["waiting", "now", "canceled", "lost"]
    seq: int


class TaskStarted(NamedTuple):
    """:meth:`Store.task_start`: ``outcome`` ``ok`` (the attempt's lease is ours; ``record`` is
    the task record's JSON; ``starts`` counts starts of this attempt, 2+ when a worker died in
    it), ``finished`` (the run ended), ``missing``, ``done`` (the task settled), ``stale`` (not
    the current attempt) or ``busy`` (another worker runs it)."""

    outcome: Literal["ok", "finished", "missing", "done", "stale", "busy"]
    record: str
    starts: int


class TaskSettled(NamedTuple):
    """:meth:`Store.task_settle`: ``outcome`` ``wake`` (the run was waiting and is now queued:
    send message ``seq`` to ``queue``; ``job_id`` for display), ``pending`` (the run is queued
    or executing; its suspension sees the task), ``stored`` or ``lost`` (the attempt's lease was
    gone; nothing written)."""

    outcome: Literal["wake", "pending", "stored", "lost"]
    seq: int
    job_id: str
    queue: str


class Reset(NamedTuple):
    """:meth:`Store.reset_tasks`: ``outcome`` ``requeued`` (send a run message with ``seq``),
    ``cleared``, ``busy`` (an execution holds the run) or ``missing``."""

    outcome: Literal["requeued", "cleared", "busy", "missing"]
    seq: int


class DueRun(NamedTuple):
    """:meth:`Store.claim_due`: a run whose message is due now."""

    run_id: str
    seq: int
    job_id: str
    queue: str


def _pairs(flat: list[str]) -> dict[str, str]:
    """``[k1, v1, k2, v2, ...]`` (a Lua ``HGETALL``) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


_encode = json_encoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON, the one encoding we store and send; always valid UTF-8 (lone surrogates
    escaped, see ``_text``). Raises TypeError/ValueError if not JSON, RecursionError if too deep."""
    return _encode(value)  # one encoder, built once: json.dumps(**options) builds one per call


#: Store errors that pass: the server is down or unreachable, restarting (LOADING), out of
#: memory under ``noeviction`` (OOM), read-only while a replica is promoted. Writes that meet one
#: are retried in place; none of them ever reaches a job's code.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
)
_TRANSIENT_REPLIES = ("MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "LOADING", "OOM")


def is_transient(exc: BaseException) -> bool:
    """Whether a store error may go away by itself (see :data:`TRANSIENT_ERRORS`); a refused
    password is not, though redis-py makes it a ``ConnectionError``."""
    if isinstance(exc, redis.AuthenticationError | redis.exceptions.AuthorizationError):
        return False
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES)


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
        settings: the client's settings (``redis_url`` and ``sentinel_master`` or
            ``redis_cluster``, ``key_prefix``, ``store_shards``, TTLs, ``min_replicas_ack``).
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.prefix = settings.key_prefix
        self.redis: redis.Redis = connect(
            settings.redis_url,
            sentinel_master=settings.sentinel_master,
            cluster=settings.redis_cluster,
            decode_responses=True,
            health_check_interval=10,
            socket_keepalive=True,
            retry_on_timeout=True,
            # a server that hangs must fail a call, not block a worker (seconds)
            socket_connect_timeout=5,
            socket_timeout=15,
        )
        self.shards = settings.shards
        self.bases = [self.shard_base(k) for k in range(self.shards)]
        self.schedule_keys = [f"{b}:schedule" for b in self.bases]
        self.runs_keys = [f"{b}:runs" for b in self.bases]
        self._next_shard = -1  # the shard the poller's last round began with
        self.jobs_key = f"{self.prefix}:jobs"
        self.consumers_key = f"{self.prefix}:consumers"
        self.consumers_since_key = f"{self.prefix}:consumers:since"
        lua = resources.files("trigger_celery") / "lua"
        self._scripts = {
            name: self.redis.register_script(
                lua_source(name, _SCRIPT_LIBS[name]) if name in _SCRIPT_LIBS
                else (lua / f"{name}.lua").read_text())
            for name in _SCRIPTS
        }
        self.slots = Slots(self)
        #: The engine clock, epoch seconds: ``time.time``, or under ``test_clock`` the real
        #: clock plus the test's offset (:class:`~trigger_celery._time.OffsetClock`, one GET).
        self.now: Callable[[], float] = time.time
        if settings.test_clock:
            self.now = OffsetClock(self.redis, clock_key(self.prefix)).now

    # -- shards and keys ---------------------------------------------------------------------

    def shard_base(self, shard: int) -> str:
        """Prefix of shard ``shard``'s keys: ``P`` on a single Redis with one shard, else
        ``{P:s<shard>}`` (the shard's Redis Cluster hash tag)."""
        if self.shards == 1 and not self.settings.redis_cluster:
            return self.prefix
        return f"{{{self.prefix}:s{shard}}}"

    def shard_of(self, run_id: str) -> int:
        """The shard of a run: ``crc32(run_id) % store_shards``."""
        return zlib.crc32(run_id.encode()) % self.shards

    def job_shard(self, job_id: str) -> int:
        """The shard of a job's trigger keys and concurrency lines: ``crc32(job_id) % shards``
        (the same hash as :meth:`shard_of`)."""
        return self.shard_of(job_id)

    def job_base(self, job_id: str) -> str:
        """The key prefix of the job's shard (:meth:`job_shard`)."""
        return self.bases[self.job_shard(job_id)]

    def base_of(self, run_id: str) -> str:
        """The key prefix of the run's shard (:meth:`shard_base`)."""
        return self.bases[self.shard_of(run_id)]

    def schedule_key(self, run_id: str) -> str:
        """The schedule (wake-ups) of the run's shard."""
        return self.schedule_keys[self.shard_of(run_id)]

    def new_run_id(self, shard: int | None = None) -> str:
        """A new run id (``run_`` + 32 hex characters), in ``shard`` when given (drawn again
        until it lands there: ``store_shards`` draws on average)."""
        while True:
            rid = new_run_id()
            if shard is None or self.shard_of(rid) == shard:
                return rid

    def run_key(self, run_id: str) -> str:
        """``P:run:{run_id}``: the run's hash (its other keys share its prefix)."""
        return f"{self.base_of(run_id)}:run:{{{run_id}}}"

    def run_keys(self, run_id: str) -> tuple[str, str, str, str]:
        """(run, tasks, logs, lease) keys of a run."""
        base = self.run_key(run_id)
        return base, f"{base}:tasks", f"{base}:logs", f"{base}:lease"

    def task_lease_key(self, run_id: str, idem: str) -> str:
        """``P:run:{run_id}:tlease:<idem>``: the lease of a dispatched task's attempt."""
        return f"{self.run_key(run_id)}:tlease:{idem}"

    def notify_key(self, run_id: str) -> str:
        """``P:run:{run_id}:notify``: start and settle hints for a holding execution."""
        return f"{self.run_key(run_id)}:notify"

    def waitfor_key(self, run_id: str) -> str:
        """``P:run:{run_id}:waitfor``: the dispatched tasks a waiting ``io.parallel`` batch
        still waits for."""
        return f"{self.run_key(run_id)}:waitfor"

    @property
    def notify_ttl_ms(self) -> int:
        """How long the notify list lives after its last push (ms): this worker's
        ``dispatch_hold_s`` plus 5 s (a hold of another worker's settings reads it sooner)."""
        return int((max(self.settings.dispatch_hold_s, 0) + 5) * 1000)

    def task_starts_key(self, run_id: str) -> str:
        """``P:run:{run_id}:tstarts``: starts per dispatched attempt (``<idem>:<attempt>``)."""
        return f"{self.run_key(run_id)}:tstarts"

    def trigger_key(self, job_id: str, key: str) -> str:
        """``P:trigger:<job_id>:<key>``: a trigger idempotency key (the run id it started), in
        the job's shard (:meth:`job_shard`): its run must be created there."""
        return f"{self.job_base(job_id)}:trigger:{job_id}:{key}"

    def event_key(self, run_id: str, event_id: str) -> str:
        """``P:event:<event_id>``: the event id record of run ``run_id`` (in its shard)."""
        return f"{self.base_of(run_id)}:event:{event_id}"

    def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run the Lua script ``name``; a checkpoint or run transition (``ACKED_SCRIPTS``)
        returns only once ``min_replicas_ack`` replicas have it (see :mod:`._replicas`)."""
        if self.settings.min_replicas_ack and name in ACKED_SCRIPTS:
            return acked_call(self.redis, self._scripts[name], keys, args,
                              replicas=self.settings.min_replicas_ack,
                              timeout_ms=self.settings.replica_ack_timeout_ms,
                              patience_s=self.settings.lease_s / 3)
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
    ) -> Created:
        """Create a run hash (atomically with its idempotency key, when given; ``create_run.lua``).

        Parameters:
            run_id: the new run's id.
            fields: the hash's fields (:class:`~trigger_celery._states.RunFields`), stored as
                strings.
            idem_key: a trigger or event key (:meth:`trigger_key`, :meth:`event_key`) kept for
                ``idem_ttl_s`` seconds (default ``idempotency_retention_s``).
            due_s: epoch seconds when the poller looks at the run (default: now + grace).
            final: the run is created finished (its retention clock starts).

        Returns :class:`Created`: ``created`` is False when ``idem_key`` already named a run,
        whose id is returned instead, or when a run with ``run_id`` exists (a run is never
        overwritten).
        """
        now = self.now()
        run, _, _, _ = self.run_keys(run_id)
        status, rid = self._script(
            "create_run",
            [run, self.schedule_key(run_id), self.runs_keys[self.shard_of(run_id)],
             idem_key or f"{run}:unused"],
            [
                run_id, dumps(fields), "1" if idem_key else "",
                idem_ttl_s or self.settings.idempotency_retention_s, now,
                due_s if due_s is not None else now + self.grace_s, "1" if final else "",
                self.settings.run_retention_s,
            ],
        )
        return Created(status == "created", rid)

    @property
    def grace_s(self) -> float:
        """Seconds after which the poller re-sends a message that should have arrived."""
        return max(self.settings.lease_s, 2 * self.settings.poll_interval_s)

    def get_run_hash(self, run_id: str) -> dict[str, str]:
        """The run's hash (every value a string); ``{}`` when there is no such run."""
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
        """Cancel a run that has not finished (``cancel.lua``); an execution in progress stops at
        its next write. Returns the run's status after the call (``CANCELED``, or the finished
        status it already had), or ``missing``."""
        run, tasks, logs, _ = self.run_keys(run_id)
        return str(self._script(
            "cancel", [run, tasks, logs, self.schedule_key(run_id)],
            [run_id, self.now(), self.settings.run_retention_s],
        ))

    def reset_tasks(self, run_id: str, idems: list[str]) -> Reset:
        """Delete task records (``reset_task.lua``); a FAILURE run goes back to QUEUED (its TTL
        removed). Returns :class:`Reset`."""
        run, tasks, logs, _ = self.run_keys(run_id)
        now = self.now()
        res = self._script("reset_task", [run, tasks, logs, self.schedule_key(run_id)],
                          [run_id, now, now + self.grace_s, *idems])
        return Reset(res[0], int(res[1]) if len(res) > 1 and res[1] is not None else 0)

    def list_runs(self, limit: int = 50) -> list[dict[str, str]]:
        """The newest runs' hashes, newest first (the shards' runs indexes merged); expired
        runs are dropped from the index."""
        pipe = self.redis.pipeline(transaction=False)
        expired = self.now() - self.settings.run_retention_s - 3600
        for key in self.runs_keys:
            pipe.zremrangebyscore(key, "-inf", expired)
            pipe.zrevrange(key, 0, limit * 4, withscores=True)
        found = cast("list[list[tuple[str, float]]]", pipe.execute()[1::2])
        newest = sorted((pair for shard in found for pair in shard), key=lambda p: -p[1])
        pipe = self.redis.pipeline(transaction=False)
        for rid, _ in newest[:limit * 4 + 1]:
            pipe.hgetall(self.run_key(rid))
        return [h for h in pipe.execute() if h][:limit]

    # -- jobs registry -----------------------------------------------------------------------

    def publish_jobs(self, jobs: dict[str, dict[str, Any]]) -> None:
        """Publish job descriptions (job id -> JSON-able dict) to ``P:jobs``."""
        if jobs:
            self.redis.hset(self.jobs_key, mapping={k: dumps(v) for k, v in jobs.items()})

    def registered_jobs(self) -> dict[str, dict[str, Any]]:
        """Every published job description, by job id (decoded JSON)."""
        raw: dict[str, str] = self.redis.hgetall(self.jobs_key)  # type: ignore[assignment]
        return {k: json.loads(v) for k, v in raw.items()}

    # -- determinism check and rate limits -------------------------------------------------

    def record_replay_warning(self, run_id: str, idem: str, warning_json: str,
                              max_warnings: int, log_entry_json: str) -> bool:
        """Record a replay mismatch of task ``idem`` once on the run (``replay_warning.lua``):
        the warning in the run's ``replay_warnings`` (at most ``max_warnings``) and its log line.
        Returns False when already recorded (or the run is over)."""
        run, _, logs, _ = self.run_keys(run_id)
        return bool(self._script("replay_warning", [run, logs],
                                 [idem, warning_json, self.settings.max_log_entries,
                                  max_warnings, log_entry_json]))

    def ratelimit_closed_key(self, owner: str) -> str:
        """Key holding the time until which ``owner`` (a connection id) may make no call."""
        return f"{self.prefix}:ratelimit:{{{owner}}}:closed"

    def ratelimit_log_keys(self, owner: str, scope: str, limit: int,
                           period_s: float) -> tuple[str, str]:
        """(log, queue) keys of one sliding-window limit of ``owner``."""
        base = f"{self.prefix}:ratelimit:{{{owner}}}:{scope}:{limit}/{period_s:g}"
        return f"{base}:log", f"{base}:queue"

    def ratelimit_acquire(self, closed_owner: str, member: str, now_s: float,
                          limits: list[tuple[str, str, int, float]]) -> float | None:
        """Take a call slot under every limit (``ratelimit_acquire.lua``).

        Parameters:
            closed_owner: the connection whose provider-reset hold applies.
            member: the call (its attempt), unique while it waits.
            limits: ``(owner, scope, limit, period_s)`` per limit, ``period_s`` in seconds.

        Returns ``None`` when the call may go now (it is logged under every limit), else the
        epoch seconds at which to try again.

        On a Redis Cluster each owner's keys have their own slot: the limits are taken owner by
        owner (``closed_owner``'s first), each owner's atomically; when a later owner refuses,
        the call's entries under the earlier ones are removed again. A crash in between leaves
        those entries to age out of their window: the limits are then stricter for at most one
        period, never looser.
        """
        groups: dict[str, list[tuple[str, str, int, float]]] = {closed_owner: []}
        for spec in limits:
            groups.setdefault(spec[0] if self.settings.redis_cluster else closed_owner,
                              []).append(spec)
        taken: list[str] = []
        for owner, specs in groups.items():
            keys, args = [self.ratelimit_closed_key(owner)], [now_s, member, len(specs)]
            for spec in specs:
                keys += self.ratelimit_log_keys(*spec)
                args += [spec[2], spec[3]]
            hint = float(self._script("ratelimit_acquire", keys, args))
            if hint:
                for log in taken:
                    self.redis.zrem(log, member)
                return hint
            taken += keys[1::2]
        return None

    def ratelimit_came_back(self, logs: list[str], member: str, now_s: float) -> None:
        """Move a call's entry in each limit's ``logs`` to ``now_s`` (its answer came back)."""
        pipe = self.redis.pipeline(transaction=False)
        for log in logs:
            pipe.zadd(log, {member: now_s}, xx=True, gt=True)
        pipe.execute()

    def ratelimit_close(self, owner: str, until_s: float) -> None:
        """Hold every call of ``owner`` until ``until_s`` (epoch seconds; the key expires then)."""
        self.redis.set(self.ratelimit_closed_key(owner), repr(until_s),
                       px=max(1, int((until_s - self.now()) * 1000) + 1))

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

    def claim_due(self, limit: int = 200, *, recover: bool = True,
                  backlogged: Iterable[str] = ()) -> list[DueRun]:
        """At most ``limit`` runs due for a message now (``claim_due.lua``). Each claimed entry
        is pushed back so a lost message is sent again: by ``grace_s * 2 ** (n - 1)`` seconds
        for the n-th claim since the run's last execution began, capped at ``resend_max_s``. A
        run whose message is already out on one of the ``backlogged`` queues (not empty: it
        waits behind others there) is not claimed but looked at again as long after as it has
        been behind (from ``poll_interval_s`` up to ``grace_s``), for at most ``resend_max_s`` in
        a row. ``recover=False`` leaves runs whose execution lost its lease (still EXECUTING)
        alone."""
        out: list[DueRun] = []
        queues = sorted(set(backlogged))
        for k in self._shard_order():
            if len(out) >= limit:
                break
            flat = self._script(
                "claim_due", [self.schedule_keys[k]],
                [self.now(), self.grace_s, limit - len(out), self.bases[k],
                 self.settings.resend_max_s, self.settings.poll_interval_s,
                 "1" if recover else "0", *queues],
            )
            out += [DueRun(flat[i], int(flat[i + 1]), flat[i + 2], flat[i + 3])
                    for i in range(0, len(flat), 4)]
        return out

    def _shard_order(self) -> list[int]:
        """Every shard once, starting one further each call (round robin), so a shard with a
        long due backlog cannot keep the others' runs waiting behind ``limit``."""
        self._next_shard = (self._next_shard + 1) % self.shards
        return [(self._next_shard + i) % self.shards for i in range(self.shards)]

    def next_due_s(self) -> float | None:
        """Epoch seconds of the earliest schedule entry of any shard (``None``: all empty)."""
        pipe = self.redis.pipeline(transaction=False)
        for key in self.schedule_keys:
            pipe.zrange(key, 0, 0, withscores=True)
        firsts = [float(f[0][1]) for f in cast("list[list[tuple[str, float]]]", pipe.execute())
                  if f]
        return min(firsts) if firsts else None

    def renew(self, lease_key: str, token: str, lease_ms: int, run_id: str = "",
              seq: int = 0, *, task: tuple[str, str, int] | None = None) -> int:
        """Extend a lease still held by ``token`` by ``lease_ms`` milliseconds (``renew.lua``),
        or take it back if it expired while the store was away and is still this holder's: a
        run's lease (``run_id`` given; the run EXECUTING at ``seq``), whose schedule entry
        also moves to the new expiry; or a task attempt's lease (``task``: its run id,
        idempotency key and attempt number; the attempt not settled yet). Any other lease is
        taken back whenever it is missing. Returns 1 renewed, 2 taken back, 0 lost."""
        due = self.now() + lease_ms / 1000
        if run_id:
            keys = [lease_key, self.schedule_key(run_id), self.run_key(run_id)]
            args = [token, lease_ms, run_id, due, seq, "", 0]
        elif task is not None:
            task_run, idem, attempt = task
            keys = [lease_key, self.run_keys(task_run)[1], self.task_starts_key(task_run)]
            args = [token, lease_ms, "", due, 0, idem, attempt]
        else:  # another lease: unused names in its slot (its shard's hash tag comes first)
            keys = [lease_key, f"{lease_key}:unused", f"{lease_key}:unused"]
            args = [token, lease_ms, "", due, 0, "", 0]
        return int(self._script("renew", keys, args))

    # -- executions (every write fenced by the execution's lease token) ----------------------

    def acquire(self, run_id: str, token: str, seq: int, lease_ms: int) -> Acquired:
        """Take the run's lease for ``lease_ms`` milliseconds if ``seq`` is current and no one
        holds it (and, for a run with a concurrency key, a slot is its to take), and load the run
        and its task records in one round trip (``acquire.lua``)."""
        run, tasks, _, lease = self.run_keys(run_id)
        res = self._script("acquire", [run, tasks, lease, self.schedule_key(run_id),
                                       self.slots.active_key(run_id)],
                           [run_id, token, seq, lease_ms, self.now(), self.base_of(run_id),
                            self.slots.check_s])
        if res[0] != "ok":
            return Acquired(res[0], {}, {})
        return Acquired("ok", _pairs(res[1]), _pairs(res[2]))

    def checkpoint(self, run_id: str, token: str, idem: str, record_json: str, *,
                   expect_attempts: int | None = None, held: bool = False,
                   ) -> Literal["stored", "lost", "canceled", "moved"]:
        """Store one task record (``checkpoint.lua``). Returns ``stored``, ``lost`` (``token``
        no longer holds the lease), ``canceled`` (the run was canceled; nothing written) or,
        with ``expect_attempts``, ``moved`` (the stored record settled or is no longer at that
        many attempts: a worker finished the attempt meanwhile; nothing written).
        ``held``: the execution holds for this dispatched task (``_hold.py``): its settle
        hands the record over on the notify list."""
        run, tasks, _, lease = self.run_keys(run_id)
        expect = "" if expect_attempts is None else str(expect_attempts)
        res = self._script("checkpoint", [run, tasks, lease],
                           [token, idem, record_json, expect, "1" if held else ""])
        return {1: "stored", -1: "canceled", -2: "moved"}.get(int(res), "lost")  # type: ignore[return-value]

    def suspend(self, run_id: str, token: str, *, wake_at: float | None, reason: str,
                due_s: float, idem: str = "", record_json: str = "",
                wait_for: Iterable[str] = (), keep_pending: bool = False,
                waits_on: str = "") -> Suspended:
        """End an execution and leave the run WAITING (``suspend.lua``).

        Parameters:
            wake_at: epoch seconds the run waits for; ``None``: until a dispatched task settles.
            reason: shown as the run's ``wait_reason``.
            due_s: epoch seconds when the run's schedule entry is due.
            idem, record_json: a task record written with the suspension (``""``: none).
            wait_for: an ``io.parallel`` batch's dispatched tasks in flight (idempotency
                keys): the run is woken once all completed (or one failed or retries), not by
                each; ``keep_pending``: a task outside them may settle meanwhile, so a settle
                seen during the execution still makes the run due now.
            waits_on: the dispatched task the run waits on (``""``: none); settled by now
                (a short hold's task may settle just after the hold gave up), it makes the run
                due now.

        Returns :class:`Suspended`.
        """
        run, tasks, _, lease = self.run_keys(run_id)
        now = self.now()
        res = self._script(
            "suspend", [run, tasks, lease, self.schedule_key(run_id), self.waitfor_key(run_id)],
            [token, run_id, "" if wake_at is None else wake_at, reason, now, due_s, idem,
             record_json, now + self.grace_s, "1" if keep_pending else "",
             self.settings.run_retention_s, waits_on, *wait_for],
        )
        return Suspended(res[0], int(res[1]) if len(res) > 1 else 0)

    def finish(self, run_id: str, token: str, status: str, output_json: str,
               error_json: str) -> bool:
        """Record a run's end (``status`` SUCCESS or FAILURE; a canceled run stays CANCELED),
        release its lease and start its retention clock (``run_retention_s``; ``finish.lua``).
        Returns False when ``token`` no longer held the lease (nothing written)."""
        run, tasks, logs, lease = self.run_keys(run_id)
        return bool(self._script(
            "finish",
            [run, tasks, logs, lease, self.schedule_key(run_id), self.waitfor_key(run_id)],
            [token, run_id, status, output_json, error_json, self.now(),
             self.settings.run_retention_s],
        ))

    def log(self, run_id: str, entry_json: str) -> bool:
        """Append a log entry to the run (``log.lua``). Returns False when the run already has
        ``max_log_entries``: the entry is dropped and counted in ``logs_dropped``."""
        run, _, logs, _ = self.run_keys(run_id)
        return bool(self._script("log", [run, logs],
                                 [self.settings.max_log_entries, entry_json]))

    # -- dispatched task attempts ------------------------------------------------------------

    def task_start(self, run_id: str, idem: str, attempt: int, token: str,
                   lease_ms: int) -> TaskStarted:
        """Begin attempt ``attempt`` (1-based) of dispatched task ``idem``: take its lease for
        ``lease_ms`` milliseconds and count its starts (``task_start.lua``)."""
        run, tasks, _, _ = self.run_keys(run_id)
        res = self._script(
            "task_start", [tasks, self.task_lease_key(run_id, idem),
                           self.task_starts_key(run_id), run],
            [idem, attempt, token, lease_ms, self.now(), self.settings.run_retention_s],
        )
        if res[0] != "ok":
            return TaskStarted(res[0], "", 0)
        return TaskStarted("ok", res[1], int(res[2]))

    def task_settle(self, run_id: str, idem: str, token: str, record_json: str, *,
                    wake: bool = True, completed: bool = False,
                    settled: bool = False) -> TaskSettled:
        """End a dispatched attempt: store its record, release its lease and (``wake``) wake
        its run (``task_settle.lua``); a ``completed`` task of an ``io.parallel`` batch the run
        waits for wakes it only when it is the last; a task ``settled`` for good (completed or
        failed) that the run's execution holds for goes to the hold instead (``_hold.py``).
        Returns :class:`TaskSettled`."""
        run, tasks, _, _ = self.run_keys(run_id)
        res = self._script(
            "task_settle",
            [run, tasks, self.task_lease_key(run_id, idem), self.schedule_key(run_id),
             self.notify_key(run_id), self.waitfor_key(run_id), self.task_starts_key(run_id)],
            [idem, token, record_json, "1" if wake else "", run_id, self.now() + self.grace_s,
             self.notify_ttl_ms, "1" if completed else "", "1" if settled else ""],
        )
        if res[0] == "wake":
            return TaskSettled("wake", int(res[1]), res[2], res[3])
        return TaskSettled(res[0], 0, "", "")

    # -- the short hold (``_hold.py``) -------------------------------------------------------

    def hold_next(self, run_id: str, timeout_s: float) -> str | None:
        """Block up to ``timeout_s`` seconds (> 0) for the next entry of the run's notify list
        (``BLPOP``): ``"<idem>\n<record JSON>"`` (the held task settled for good) or
        ``"<idem>"`` (it settled into a retry); None on timeout."""
        got = self.redis.blpop([self.notify_key(run_id)], timeout=max(timeout_s, 0.001))
        return None if got is None else str(got[1])

    def task_started(self, run_id: str, idem: str, attempt: int) -> bool:
        """Whether a worker has started attempt ``attempt`` of dispatched task ``idem``."""
        return bool(self.redis.hexists(self.task_starts_key(run_id), f"{idem}:{attempt}"))

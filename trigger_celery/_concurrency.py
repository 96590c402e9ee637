"""Concurrency keys: at most ``limit`` runs of a job (per key) execute at once.

``define_job(..., concurrency=Concurrency(limit=2, key=lambda payload: payload.user_id))``. The
key is computed when a run is created (from the parsed payload) and stored on the run, so the
worker that executes it enforces the limit atomically in ``acquire.lua`` without calling user
code. A run holds a slot **only while it executes**: from the moment ``acquire.lua`` takes its
lease until the execution ends (finishes, suspends on a wait or a dispatched task, or stops).
A run over the limit waits in Redis, in its key's line (FIFO by the run's creation time), holding
no worker; when a slot frees, the next run of the line is sent its message. A slot is tied to the
run's execution lease: when a dead worker's lease expires (``lease_s``), the slot frees.

Keys (``P`` is the key prefix of the job's shard, ``Store.shard_base(Store.job_shard(job_id))``:
every run of a job with a concurrency limit lives in that shard, so the scripts that admit and
wake runs touch one slot; ``<C>`` is ``P:conc:<job_id>`` for a job-wide limit, else
``P:conc:<job_id>:<key>``)::

    <C>:holders     zset  run_id -> epoch s admitted: runs holding a slot (dropped once their
                          run has no execution lease)
    <C>:line        zset  run_id -> the run's created_at (epoch s): runs waiting for a slot
    P:conc:active   zset  <C> -> epoch s when the poller next looks at the key (keys with
                          waiting runs only; one per shard)

Run hash fields: ``conc_key`` (``<C>``), ``conc_name`` (the key as computed, ``""`` for a
job-wide limit), ``conc_limit``; a run waiting for a slot is QUEUED with ``wait_reason``
``concurrency``. Like the schedule, these keys span runs: each key's live in its job's shard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from trigger_celery._errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    import redis

    from trigger_celery._execution import Executor
    from trigger_celery._store import DueRun, Store

logger = logging.getLogger("trigger_celery")
#: Longest key (characters) a key function may return.
MAX_KEY_CHARS = 256


@dataclass(frozen=True)
class Concurrency:
    """How many runs of a job may execute at once.

    Attributes:
        limit: executing runs allowed at once (per key), at least 1.
        key: ``key(payload) -> str | int`` (the payload as the job receives it: its schema's
            model, or the JSON value), called when a run is created; runs with the same key
            share ``limit`` slots. ``None``: one limit for the whole job.

    Raises:
        ConfigurationError: ``limit`` is not an int ≥ 1, or ``key`` is neither callable nor None.
    """

    limit: int
    key: Callable[[Any], str | int] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ConfigurationError(
                f"Concurrency: limit must be an int of at least 1, got {self.limit!r}")
        if self.key is not None and not callable(self.key):
            raise ConfigurationError(
                f"Concurrency: key must be a function of the payload or None, got {self.key!r}")

    def describe(self) -> dict[str, Any]:
        """What workers publish: ``{"limit": int, "keyed": bool}``."""
        return {"limit": self.limit, "keyed": self.key is not None}


def check_concurrency(job_id: str, value: Any) -> Concurrency | None:
    """``define_job``'s ``concurrency=`` option, checked. Raises :class:`ConfigurationError`."""
    if value is None or isinstance(value, Concurrency):
        return value
    raise ConfigurationError(
        f"define_job({job_id!r}): concurrency must be a Concurrency(limit=..., key=...), "
        f"got {value!r}")


def run_fields(prefix: str, job_id: str, conc: Concurrency, payload: Any) -> dict[str, Any]:
    """The run hash fields for a new run: ``conc_key``, ``conc_name``, ``conc_limit``.

    Parameters:
        prefix: the key prefix of the job's shard (``Store.job_base``).
        payload: the parsed payload (what the job receives).

    Raises:
        ValidationError: the key function raised, or returned something other than a str or an
            int of at most :data:`MAX_KEY_CHARS` characters.
    """
    name = ""
    if conc.key is not None:
        try:
            value = conc.key(payload)
        except Exception as exc:  # noqa: BLE001 - reported as the payload's problem
            raise ValidationError(
                f"job {job_id!r}: concurrency key function raised {type(exc).__name__}: {exc}"
            ) from None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError(f"job {job_id!r}: concurrency key must be a str or an int, "
                                  f"got {type(value).__name__}")
        name = str(value)
        if len(name) > MAX_KEY_CHARS:
            raise ValidationError(f"job {job_id!r}: concurrency key longer than "
                                  f"{MAX_KEY_CHARS} characters")
    base = f"{prefix}:conc:{job_id}" + (f":{name}" if conc.key is not None else "")
    return {"conc_key": base, "conc_name": name, "conc_limit": conc.limit}


def lua_source(name: str, lib: str = "conc_lib") -> str:
    """A script of ``lua/`` with the shared functions of ``<lib>.lua`` before it."""
    lua = resources.files("trigger_celery") / "lua"
    return (lua / f"{lib}.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


def _due(flat: list[str]) -> list[DueRun]:
    from trigger_celery._store import DueRun

    return [DueRun(flat[i], int(flat[i + 1]), flat[i + 2], flat[i + 3])
            for i in range(0, len(flat), 4)]


class Slots:
    """The concurrency scripts of one :class:`~trigger_celery._store.Store`: joining a key's
    line at creation, releasing a slot, the poller's sweep, and adopting a run whose enqueuer
    did not know the key."""

    def __init__(self, store: Store):
        self.store = store
        self.redis: redis.Redis = store.redis
        #: seconds between the poller's looks at a key with waiting runs
        self.check_s = max(store.settings.lease_s / 3, store.settings.poll_interval_s)
        self._scripts = {name: self.redis.register_script(lua_source(name))
                         for name in ("conc_release", "conc_sweep", "conc_adopt")}

    def join(self, run_id: str, fields: dict[str, Any]) -> None:
        """Put a new run (hash ``fields``, with ``conc_key``) in its key's line, at its
        ``created_at``, so runs of a key start in the order they were created."""
        base, now = str(fields["conc_key"]), float(fields["created_at"])
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(f"{base}:line", {run_id: now}, nx=True)
        pipe.zadd(self.active_key(run_id), {base: now + self.check_s}, nx=True)
        pipe.execute()

    def active_key(self, run_id: str) -> str:
        """``P:conc:active`` of the run's shard."""
        return f"{self.store.base_of(run_id)}:conc:active"

    def release(self, run_id: str, token: str, now_s: float) -> list[DueRun]:
        """The execution holding ``token`` ended: free its slot (unless a newer execution holds
        the run) and return the waiting runs to send a message to now (``conc_release.lua``)."""
        run, _, _, lease = self.store.run_keys(run_id)
        flat = self._scripts["conc_release"](
            keys=[run, lease, self.store.schedule_key(run_id), self.active_key(run_id)],
            args=[run_id, token, self.store.base_of(run_id), now_s + self.store.grace_s, now_s,
                  self.check_s])
        return _due(flat)

    def sweep(self, now_s: float, max_keys: int = 200) -> list[DueRun]:
        """The poller's round (``conc_sweep.lua``, once per shard): free the slots of expired
        leases in keys with waiting runs and return the runs to send a message to now."""
        out: list[DueRun] = []
        for base, schedule in zip(self.store.bases, self.store.schedule_keys, strict=True):
            out += _due(self._scripts["conc_sweep"](
                keys=[f"{base}:conc:active", schedule],
                args=[now_s, base, now_s + self.store.grace_s, self.check_s, max_keys]))
        return out

    def adopt(self, run_id: str, token: str, fields: dict[str, Any], now_s: float) -> bool:
        """Record the key this worker computed on a run created without one and undo its
        acquisition (``conc_adopt.lua``); True when done (acquire again), False when ``token``
        no longer held the lease."""
        run, _, _, lease = self.store.run_keys(run_id)
        return bool(self._scripts["conc_adopt"](
            keys=[run, lease],
            args=[token, fields["conc_key"], fields["conc_name"], fields["conc_limit"], now_s]))


def adopt_key(executor: Executor, run_id: str, token: str, run: dict[str, str]) -> bool:
    """After ``acquire`` (lease ``token`` held; ``run`` the run's hash): a run created by an
    enqueuer that does not import its job has no ``conc_key``; when this worker's job has a
    concurrency limit, compute the key from the payload, record it and undo the acquisition.
    Returns True when the caller must acquire again (to be admitted or queued)."""
    if run.get("conc_key"):
        return False
    job = executor.client.jobs.get(run.get("job_id", ""))
    if job is None or job.concurrency is None:
        return False
    import json

    store = executor.store
    if store.shard_of(run_id) != store.job_shard(job.id):
        # created by an enqueuer that did not know the job had a limit (a registry published
        # before the limit was added), in another shard than the key's line: it cannot join it
        logger.error("run %s of job %s: created outside its job's store shard, so it runs "
                     "without the job's concurrency limit", run_id, job.id)
        return False
    try:
        fields = run_fields(store.job_base(job.id), job.id, job.concurrency,
                            job.parse_payload(json.loads(run.get("payload", "null"))))
    except ValidationError:
        return False  # the execution fails the run with the same error
    return executor.store.slots.adopt(run_id, token, fields, executor.store.now())


def release_slot(executor: Executor, run_id: str, token: str, run: dict[str, str]) -> None:
    """After an execution of a run with a concurrency key ended (``run``: its hash as
    loaded): free its slot and send the next waiting runs of the key their message. A failure
    here only delays them until the poller's next look at the key."""
    if not run.get("conc_key"):
        return

    try:
        woken = executor.store.slots.release(run_id, token, executor.store.now())
        for due in woken:
            executor.send_run(due.run_id, due.seq, job_id=due.job_id, queue=due.queue)
    except Exception:  # noqa: BLE001 - the poller's sweep wakes them
        logger.warning("run %s: could not release its concurrency slot yet; the poller will",
                       run_id, exc_info=True)

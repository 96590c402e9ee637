"""``TriggerClient``: settings, the Celery app, jobs and integrations, and enqueueing."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery
from pydantic import BaseModel

from trigger_celery._celery import (
    RUN_TASK,
    SCHEDULE_TASK,
    WakeupPoller,
    make_celery,
    own_queue,
)
from trigger_celery._concurrency import Concurrency, run_fields
from trigger_celery._errors import (
    ConfigurationError,
    RunNotFoundError,
    UnknownJobError,
    ValidationError,
)
from trigger_celery._execution import Executor
from trigger_celery._jobs import (
    CronTrigger,
    EventTrigger,
    IntervalTrigger,
    Job,
    filter_matches,
    make_job,
    validate_published,
)
from trigger_celery._policy import error_record
from trigger_celery._runs import Run, RunHandle
from trigger_celery._schedule import cron_slot, dedupe_ttl_s, interval_slot
from trigger_celery._settings import load_settings
from trigger_celery._states import ERRORED, FAILURE, QUEUED, WAITING, ErrorRecord
from trigger_celery._store import Store, dumps
from trigger_celery._tasks import operation_body, run_body, schedule_body
from trigger_celery._text import require_utf8
from trigger_celery._time import epoch_s
from trigger_celery.integration import Integration

logger = logging.getLogger("trigger_celery")


class TriggerClient:
    """Holds the Celery app (``client.celery``), the Redis store, jobs and integrations.

    Parameters:
        id: the client's name (also the Celery app's main name).
        redis_url: the store; else ``TRIGGER_CELERY_REDIS_URL``; else ``redis://127.0.0.1:6379/0``.
        broker_url: the Celery broker; else ``TRIGGER_CELERY_BROKER_URL``; else ``redis_url``.
        **settings: any other :class:`~trigger_celery._settings.Settings` field by name.

    Raises:
        ConfigurationError: an unknown or invalid setting (keyword or environment variable).
    """

    def __init__(self, id: str, *, redis_url: str | None = None, broker_url: str | None = None,
                 **settings: Any):
        if not isinstance(id, str) or not id.strip():
            raise ConfigurationError(f"TriggerClient: id must be a non-empty string, got {id!r}")
        self.id = id
        self.settings = load_settings(redis_url=redis_url, broker_url=broker_url, **settings)
        self.store = Store(self.settings)
        self.celery: Celery = make_celery(id, self.settings)
        self.celery.trigger_client = self
        self.celery.steps["worker"].add(WakeupPoller)
        self.jobs: dict[str, Job] = {}
        self.integrations: dict[str, Integration] = {}
        self._op_tasks: dict[str, Any] = {}
        self.executor = Executor(self)
        self.run_celery_task = self.celery.task(
            name=RUN_TASK, bind=True, shared=False, acks_late=True, ignore_result=True,
        )(run_body)
        self.celery.task(name=SCHEDULE_TASK, bind=True, shared=False, ignore_result=True)(
            schedule_body)

    def __repr__(self) -> str:
        return f"TriggerClient({self.id!r}, jobs={sorted(self.jobs)})"

    # -- definitions -------------------------------------------------------------------------

    def define_job(
        self,
        *,
        id: str,
        version: str,
        trigger: Any,
        name: str | None = None,
        integrations: dict[str, Integration] | None = None,
        enabled: bool = True,
        strict_replay: bool | None = None,
        rate_limits: Any = (),
        concurrency: Concurrency | None = None,
        **unknown: Any,
    ) -> Callable[[Callable[..., Any]], Job]:
        """Decorator defining a job whose function is ``run(payload, io, ctx) -> JSON``.

        Parameters:
            id: unique job id (lowercase letters, digits, ``.``, ``_``, ``-``).
            version: the job's semantic version (``1.0.0``); runs record the one they began with.
            trigger: from ``event_trigger``, ``invoke_trigger``, ``cron_trigger`` or
                ``interval_trigger``.
            name: display name (default: ``id``).
            integrations: ``{"github": GitHub(...)}``, reachable as ``io.github``.
            enabled: a disabled job starts no runs from events or schedules.
            strict_replay: ``True`` fails a run whose replayed task was recorded with another
                name or other params (:class:`NonDeterminismError`); ``False`` only warns (on
                the run and in its logs); ``None`` (default): the ``strict_replay`` setting.
            rate_limits: :class:`RateLimit` objects limiting this job's dispatched calls,
                counted across all its runs (on top of the integrations' own limits).
            concurrency: ``Concurrency(limit, key=None)``: at most ``limit`` runs (per
                ``key(payload)``) execute at once; the others wait in Redis, FIFO per key.

        Raises:
            ConfigurationError: an unknown option, a bad id or version, a duplicate id, an
                ``async def`` function, or a bad integration; raised here, at definition.
        """
        if unknown:
            raise ConfigurationError(
                f"define_job({id!r}): unknown option(s) {', '.join(sorted(unknown))}"
            )

        def decorate(fn: Callable[..., Any]) -> Job:
            job = make_job(id=id, name=name or id, version=version, trigger=trigger, run=fn,
                           integrations=integrations, enabled=enabled,
                           strict_replay=strict_replay, rate_limits=rate_limits,
                           concurrency=concurrency)
            if job.id in self.jobs:
                raise ConfigurationError(f"define_job: duplicate job id {job.id!r}")
            for integ in job.integrations.values():
                self._attach(integ)
            self.jobs[job.id] = job
            self._schedule(job)
            return job

        return decorate

    def _attach(self, integ: Integration) -> None:
        known = self.integrations.get(integ.connection_key)
        if known is integ:
            return
        if known is not None:
            raise ConfigurationError(
                f"two integrations use connection key {integ.connection_key!r}; give each its "
                "own connection_key"
            )
        self.integrations[integ.connection_key] = integ
        queues = self.celery.conf.task_queues
        if all(q.name != integ.queue for q in queues):
            self.celery.conf.task_queues = [*queues, own_queue(integ.queue)]
        for qname in integ.operations():
            self.operation_celery_task(integ, qname)

    def operation_celery_task(self, integ: Integration, qname: str) -> Any:
        """The Celery task ``<integration id>.<namespace>.<method>`` (registered once)."""
        name = f"{integ.id}.{qname}"
        task = self._op_tasks.get(name)
        if task is None:
            task = self.celery.task(
                name=name, bind=True, shared=False, acks_late=True, ignore_result=True,
                max_retries=None,
            )(operation_body(qname))
            self._op_tasks[name] = task
        return task

    def _schedule(self, job: Job) -> None:
        trig = job.trigger
        if isinstance(trig, CronTrigger):
            schedule: Any = trig.schedule
        elif isinstance(trig, IntervalTrigger):
            schedule = timedelta(seconds=trig.seconds)
        else:
            return
        self.celery.conf.beat_schedule = {
            **(self.celery.conf.beat_schedule or {}),
            f"trigger-celery:{job.id}": {"task": SCHEDULE_TASK, "schedule": schedule,
                                         "args": [job.id]},
        }

    def publish_jobs(self) -> None:
        """Publish every job's id, version, trigger, payload schema and runs queue to Redis,
        so an app that does not import the jobs sends their runs where this worker listens."""
        queue = self.settings.runs_queue
        self.store.publish_jobs({j.id: {**j.describe(), "queue": queue}
                                 for j in self.jobs.values()})

    # -- enqueueing --------------------------------------------------------------------------

    def trigger(self, job_id: str, payload: Any = None, *,
                idempotency_key: str | None = None) -> RunHandle:
        """Start a run of ``job_id`` (Trigger.dev's ``job.invoke`` / ``client.trigger``).

        Parameters:
            payload: JSON, or a pydantic model; validated against the job's schema (its pydantic
                model when this process defines the job, else the JSON schema a worker
                published).
            idempotency_key: a second call with the same key (within ``idempotency_retention_s``)
                returns the first run's handle and starts nothing.

        Raises:
            UnknownJobError: no local definition and no worker published ``job_id``.
            ValidationError: the payload fails the job's schema or is not JSON, or
                ``idempotency_key`` is not valid Unicode (a lone surrogate); no run is made.
        """
        require_utf8("trigger: idempotency_key", idempotency_key)
        job = self.jobs.get(job_id)
        queue = self.settings.runs_queue
        if job is not None:
            payload_json = _payload_json(job.parse_payload(payload), job_id)
            version = job.version
        else:
            desc = self.store.registered_jobs().get(job_id)
            if desc is None:
                raise UnknownJobError(f"unknown job id {job_id!r}: not defined here, and no "
                                      "worker has published it")
            payload_json = _payload_json(payload, job_id)
            validate_published(job_id, desc.get("schema"), json.loads(payload_json))
            version = desc["version"]
            queue = desc.get("queue") or queue
        idem = self.store.trigger_key(job_id, idempotency_key) if idempotency_key else None
        return self._create(self.store.new_run_id, job_id, version, payload_json,
                            idem_key=idem, queue=queue)

    def trigger_slot(self, job: Job, now_s: float) -> RunHandle | None:
        """Start the run of a cron or interval job for the slot ``now_s`` falls in (epoch
        seconds), unless that slot already has one; ``None`` when the job is not scheduled or its
        crontab has no tick to fire. The payload is ``{"ts": <slot start, ISO 8601 UTC>}``."""
        trig = job.trigger
        if isinstance(trig, IntervalTrigger):
            slot, length = interval_slot(trig.seconds, now_s)
        elif isinstance(trig, CronTrigger):
            found = cron_slot(trig.schedule, now_s)
            if found is None:
                return None
            slot, length = found
        else:
            return None
        ts = datetime.fromtimestamp(slot, UTC).isoformat()
        payload_json = _payload_json(job.parse_payload({"ts": ts}), job.id)
        return self._create(
            self.store.new_run_id, job.id, job.version, payload_json,
            idem_key=self.store.trigger_key(job.id, f"schedule:{slot}"),
            idem_ttl_s=dedupe_ttl_s(length, self.settings.idempotency_retention_s),
            queue=self.settings.runs_queue)

    def send_event(self, name: str, payload: Any = None, *, id: str | None = None,
                   deliver_at: datetime | None = None) -> list[RunHandle]:
        """Send an event; every enabled job whose ``event_trigger`` matches starts a run.

        Parameters:
            name: event name (``github.issues.opened``).
            payload: JSON (or a pydantic model).
            id: event id; the same id again (within ``idempotency_retention_s``) starts nothing
                new and returns the same runs. Default: a new UUID.
            deliver_at: start the runs at this time instead of now.

        Returns one handle per matching job. A payload that fails a job's schema (its pydantic
        model, or the JSON schema its workers published when this process does not import it)
        gives that job a FAILURE run recording the validation error (no retries).

        Raises:
            ValidationError: the payload is not JSON (``NaN``, nested too deep), or the name or
                id is not valid Unicode (a lone surrogate).
        """
        require_utf8("send_event: name", name)
        require_utf8("send_event: id", id)
        event_id = id or uuid.uuid4().hex
        payload_json = _payload_json(payload, f"event {name!r}")
        data = json.loads(payload_json)
        due = None
        if deliver_at is not None:
            due = epoch_s(deliver_at)
        handles = []
        published: dict[str, dict[str, Any]] | None = None
        for job_id, version, flt, job, queue in self._event_jobs(name):
            if not filter_matches(flt, data):
                continue
            error = None
            try:
                if job is not None:
                    job.parse_payload(data)
                else:  # a job this process does not import: its published JSON schema
                    published = published or self.store.registered_jobs()
                    validate_published(job_id, published.get(job_id, {}).get("schema"), data)
            except ValidationError as exc:
                error = error_record(exc)
            handles.append(self._create(
                functools.partial(_event_run_id, self.store, event_id, job_id), job_id, version,
                payload_json, idem_key=None, event=(name, event_id), due_s=due, error=error,
                queue=queue,
            ))
        return handles

    def _event_jobs(self, name: str) -> list[tuple[str, str, Any, Job | None, str]]:
        """``(job id, version, filter, local job or None, runs queue)`` of each job listening."""
        own = self.settings.runs_queue
        found: list[tuple[str, str, Any, Job | None, str]] = []
        for job in self.jobs.values():
            if isinstance(job.trigger, EventTrigger) and job.trigger.name == name and job.enabled:
                found.append((job.id, job.version, job.trigger.filter, job, own))
        for job_id, desc in self.store.registered_jobs().items():
            trig = desc.get("trigger", {})
            if job_id not in self.jobs and trig.get("type") == "event" and trig.get("name") == name:
                found.append((job_id, desc["version"], trig.get("filter"), None,
                              desc.get("queue") or own))
        return found

    def _create(self, run_id_in: Callable[[int | None], str], job_id: str, version: str,
                payload_json: str, *, idem_key: str | None, queue: str,
                event: tuple[str, str] | None = None, due_s: float | None = None,
                error: ErrorRecord | None = None, idem_ttl_s: int | None = None) -> RunHandle:
        """Create a run and send its message. ``run_id_in(shard)`` gives the run's id, in that
        store shard (``None``: any): the job's shard when the run has a trigger key (``idem_key``,
        kept there) or the job a concurrency limit (its key's line is there); an event's run
        keeps its event id record in its own shard."""
        now = self.store.now()
        in_job_shard = idem_key is not None or self._has_concurrency(job_id)
        run_id = run_id_in(self.store.job_shard(job_id) if in_job_shard else None)
        if event is not None:
            idem_key = self.store.event_key(run_id, f"{event[1]}:{job_id}")
        fields: dict[str, Any] = {
            "id": run_id, "job_id": job_id, "job_version": version, "payload": payload_json,
            "status": QUEUED, "seq": 0, "executions": 0, "created_at": now, "updated_at": now,
            "queue": queue,
        }
        if event:
            fields["event_name"], fields["event_id"] = event
        if error is not None:
            fields.update(status=FAILURE, error=dumps(error), finished_at=now)
        elif due_s is not None and due_s > now:
            fields.update(status=WAITING, wake_at=due_s, wait_reason="deliver_at")
        if error is None:
            try:
                fields.update(self._concurrency_fields(job_id, payload_json))
            except ValidationError as exc:
                if event is None:
                    raise
                error = error_record(exc)  # an event's run records it, as a schema failure
                fields.update(status=FAILURE, error=dumps(error), finished_at=now)
        in_window = due_s is None or due_s - now <= self.settings.effective_eta_window_s
        sched = (due_s or now) + (self.store.grace_s if in_window else 0)
        created, rid = self.store.create_run(run_id, fields, idem_key=idem_key, due_s=sched,
                                             final=error is not None, idem_ttl_s=idem_ttl_s)
        if created and "conc_key" in fields and fields["status"] == QUEUED:
            try:
                self.store.slots.join(rid, fields)
            except Exception:  # noqa: BLE001 - the run joins its line when its message arrives
                logger.warning("run %s: could not join its concurrency line yet", rid,
                               exc_info=True)
        if created and error is None and in_window:  # a broker error: logged, see publish
            self.executor.publish_run(rid, 0, eta_s=due_s, job_id=job_id, queue=queue)
        return RunHandle(self, rid, created=created)

    def _has_concurrency(self, job_id: str) -> bool:
        """Whether ``job_id`` has a concurrency limit (its definition here, else the one its
        workers published)."""
        if self.store.shards == 1:
            return False  # one shard: no need to ask the registry
        job = self.jobs.get(job_id)
        if job is not None:
            return job.concurrency is not None
        return bool((self.store.registered_jobs().get(job_id) or {}).get("concurrency"))

    def _concurrency_fields(self, job_id: str, payload_json: str) -> dict[str, Any]:
        """A new run's concurrency fields (``conc_key``, ...; see ``_concurrency``) when this
        process defines the job, or the job's published limit is job-wide; else none (the
        executing worker computes the key). Raises ValidationError from the key function."""
        job = self.jobs.get(job_id)
        if job is not None:
            if job.concurrency is None:
                return {}
            return run_fields(self.store.job_base(job_id), job_id, job.concurrency,
                              job.parse_payload(json.loads(payload_json)))
        desc = (self.store.registered_jobs().get(job_id) or {}).get("concurrency")
        if desc and not desc.get("keyed"):
            return run_fields(self.store.job_base(job_id), job_id,
                              Concurrency(int(desc["limit"])), None)
        return {}

    # -- inspection --------------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        """The run's record with its tasks and logs. Raises :class:`RunNotFoundError`."""
        h, tasks, logs, starts = self.store.load_run(run_id)
        if not h:
            raise RunNotFoundError(f"no run {run_id!r} (never created, or expired)")
        return Run.from_redis(h, tasks, logs, starts)

    def list_runs(self, *, job_id: str | None = None, status: str | None = None,
                  limit: int = 50) -> list[Run]:
        """Recent runs, newest first (without their tasks and logs)."""
        out = []
        for h in self.store.list_runs(limit * 4 if (job_id or status) else limit):
            if (job_id and h.get("job_id") != job_id) or (status and h.get("status") != status):
                continue
            out.append(Run.from_redis(h, {}, []))
        return out[:limit]

    def cancel_run(self, run_id: str) -> str:
        """Cancel a run that has not finished; returns its status after the call.

        Raises:
            RunNotFoundError: no such run.
        """
        status = self.store.cancel(run_id)
        if status == "missing":
            raise RunNotFoundError(f"no run {run_id!r}")
        return status


    def reset_task(self, run_id: str, key: str) -> list[str]:
        """Clear a failed task (and the ancestors its failure failed) so the run, re-queued if it
        had failed, runs it again: use after deploying fixed code. Returns the cleared task keys.

        Raises:
            RunNotFoundError: no such run.
            ConfigurationError: no task with that key, the task has not failed (a completed
                task is never run again), or an execution is in progress.
        """
        run = self.get_run(run_id)
        by_idem = {t.idem: t for t in run.tasks}
        named = [t for t in run.tasks if t.key == key]
        if not named:
            raise ConfigurationError(f"run {run_id} has no task with key {key!r}")
        targets = [t for t in named if t.status == ERRORED]
        if not targets:
            raise ConfigurationError(
                f"task {key!r} of run {run_id} is {named[0].status}: only a failed (ERRORED) "
                "task can be reset")
        clear: dict[str, str] = {}
        for t in targets:
            clear[t.idem] = t.key
            parent = by_idem.get(t.parent or "")
            while parent is not None and parent.status == ERRORED:
                clear[parent.idem] = parent.key
                parent = by_idem.get(parent.parent or "")
        outcome, seq = self.store.reset_tasks(run_id, list(clear))
        if outcome == "busy":
            raise ConfigurationError(f"run {run_id} is executing; try again when it is not")
        if outcome == "requeued":
            self.executor.publish_run(run_id, seq, job_id=run.job_id,
                                      queue=self.store.get_run_hash(run_id).get("queue", ""))
        return list(clear.values())


def _payload_json(payload: Any, what: str) -> str:
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    try:
        return dumps(payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"{what}: payload is not JSON-serializable: {exc}") from None


def _event_run_id(store: Store, event_id: str, job_id: str, shard: int | None) -> str:
    """The run id an event starts for a job: derived from both (so the same event id sent again
    names the same run), in ``shard`` when given (the n-th candidate
    ``sha256([event_id, job_id, n])``; the first, ``n`` 0, is ``sha256([event_id, job_id])``)."""
    for n in range(1_000_000):
        parts = [event_id, job_id] + ([n] if n else [])
        rid = "run_" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]
        if shard is None or store.shard_of(rid) == shard:
            return rid
    raise AssertionError("no run id in the shard")  # 1024 shards at most: never reached

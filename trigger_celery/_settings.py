"""Settings: keyword argument first, then ``TRIGGER_CELERY_<NAME>`` environment variables.

Unknown settings are errors, whether passed as keywords or set in the environment under the
``TRIGGER_CELERY_`` prefix (a typo such as ``TRIGGER_CELERY_REDIS_ULR`` fails at start-up instead of
being ignored). All durations are in seconds and say so in their names (``_s``).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trigger_celery._connection import is_sentinel_url, parse_sentinel_url
from trigger_celery._errors import ConfigurationError
from trigger_celery._validation import describe_errors

ENV_PREFIX = "TRIGGER_CELERY_"
#: Longest pause of a worker's poller under ``test_clock``, in seconds: a test that skips time
#: finds the wake-ups it made due sent within this.
TEST_CLOCK_POLL_S = 0.05
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

#: URL schemes redis-py (and kombu) take for the store; ``sentinel`` is Celery's Sentinel form
#: (``sentinel://h1:26379/0;sentinel://h2:26379/0``, master name in ``sentinel_master``).
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix", "sentinel"})

# Variables under the prefix that are not settings of the client (read by the CLI and tests).
_NOT_SETTINGS = {"APP", "APP_MODULES", "DEV_DIR", "TEST_REDIS_URL", "UI_TOKEN"}


class Settings(BaseSettings):
    """Every setting of a :class:`~trigger_celery.TriggerClient`.

    Attributes:
        redis_url: the store (runs, tasks, wake-ups): ``redis://``, ``rediss://`` (TLS) or
            ``unix://``, as redis-py takes them, or Redis Sentinel in Celery's form
            (``sentinel://h1:26379/0;sentinel://h2:26379/0``).
        broker_url: the Celery broker; defaults to ``redis_url``. ``amqp://`` and
            ``sentinel://`` work too.
        sentinel_master: the name of the master the sentinels watch (``mymaster``); required
            when ``redis_url`` or the broker is a ``sentinel://`` URL.
        min_replicas_ack: when above 0, every checkpoint and run transition (create, suspend,
            finish, cancel, a dispatched task's settle) counts as done only once that many
            replicas acknowledged it (Redis ``WAIT``), so a failover cannot lose it; fewer acks
            are a transient store error, retried in place. 0: replication stays asynchronous.
        replica_ack_timeout_ms: how long one ``WAIT`` blocks for the acknowledgements, in
            milliseconds; ``WAIT`` is sent again while too few replicas answered.
        redis_cluster: the store is a Redis Cluster; ``redis_url`` (``redis://`` or
            ``rediss://``) names one of its nodes, the others are discovered. The broker cannot
            be a Redis Cluster (kombu has no such transport): set ``broker_url``.
        store_shards: how many shards the structures that span runs (wake-up schedule, runs
            index, concurrency lines) are split into, each in its own hash slot; a run and its
            keys live in one shard. Default 1 on a single Redis, 16 with ``redis_cluster``.
        key_prefix: prefix of every Redis key we write.
        runs_queue: the Celery queue run executions go to.
        visibility_timeout_s: the Redis broker's redelivery window; set on the Celery app in all
            three places Celery reads it. Waits and retries longer than
            ``eta_window_s`` never ride on an ETA message.
        eta_window_s: longest delay sent as a Celery ETA/countdown message as well as kept as a
            wake-up in Redis. Default 0: no wait or retry rides on an ETA message; each worker's
            poller sends wake-ups when due (within milliseconds). An ETA message is held
            unacknowledged in a worker, and once ``worker_eta_task_limit`` are held that worker
            takes no new message until one is due. Must stay well under the redelivery window.
        lease_s: how long a run execution's lease lasts without renewal (renewed every third).
        poll_interval_s: longest pause of each worker's poller, which sends due wake-ups (it
            sleeps until the next one is due, at most this long) and recovers expired leases.
        dispatch_check_s: how long a run waits on a dispatched task before it checks on it. Its
            message is sent again only when presumed lost: the attempt started on a worker that
            died, or no worker started it though one consumed its queue; each re-send doubles
            the wait before the next (up to ``resend_max_s``). A message on a queue that no
            worker consumed since it was sent is known to be queued and never sent again.
        resend_max_s: longest pause between two re-sends of a message presumed lost.
        dispatch_hold_s: after sending a dispatched task, how long (seconds) the execution
            holds its worker process waiting for the task's result before it suspends
            (``_hold.py``); 0: never hold, suspend at once.
        dispatch_hold_start_s: within the hold, how long (seconds) the task may take to start
            on some worker; if it has not started by then (every process busy), the execution
            suspends instead of holding on.
        continue_in_place: a dispatched task that settles for good and wakes its waiting run
            continues the run in the same worker process (when that worker has the run's job,
            consumes its runs queue and sets no Celery time limit on its tasks) instead of
            sending the run's message; an execution then holds only past ``HOLD_AFTER_TASKS``
            records (``_hold.py``).
        run_retention_s: how long a finished run's records stay (7 days).
        idempotency_retention_s: how long trigger idempotency keys and event ids are remembered
            (7 days: GitHub lets a webhook delivery be redelivered for 3 days). A run is never
            overwritten, so an event id seen again after this still starts nothing while its run
            is kept (``run_retention_s`` after it finished).
        max_output_bytes: largest JSON output of one task or run (1 MiB).
        max_log_entries: log entries kept per run; later ones are counted, not stored.
        retry_at_max_deferrals: cap on ``retry_at`` deferrals of one task (error retries apart).
        retry_at_max_deferral_s: cap on the time from a task's first deferral to its last.
        worker_eta_task_limit: most ETA messages one worker holds (Celery 5.6+).
        strict_replay: fail a run whose replayed task differs from its record (name or
            params) instead of only warning; ``define_job(..., strict_replay=...)`` overrides it
            per job (see :mod:`trigger_celery._determinism`).
        allow_eviction: accept a store Redis whose ``maxmemory-policy`` evicts keys (workers and
            ``dev`` refuse one otherwise: an evicted run is lost without a trace).
        log_format: ``text`` (Celery's format) or ``json``: every line of the worker's log
            one JSON object, with the run id, job, task key, attempt, error and next attempt
            time as fields on the lines about runs and tasks.
        metrics_port: when set, a worker serves Prometheus metrics on this TCP port (its main
            process, adding up its pool processes'; see ``docs/metrics.md``).
        metrics_host: the address the metrics endpoint listens on.
        test_clock: for tests only (``trigger_celery.testing.TestClock`` turns it on): the
            engine reads run time (waits, retry and rate-limit timing, wake-up schedule, run
            and task timestamps) from the real clock plus an offset in seconds kept in Redis
            (``P:testclock``), which a test advances to skip time; every delay then goes to
            the Redis wake-up schedule (``eta_window_s`` counts as 0) and each worker's
            poller looks every :data:`TEST_CLOCK_POLL_S` seconds. Off (the default), the
            clock is ``time.time`` and nothing reads the offset.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    redis_url: str = DEFAULT_REDIS_URL
    broker_url: str | None = None
    key_prefix: str = Field(default="tc", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    runs_queue: str = "trigger-celery"
    visibility_timeout_s: float = Field(default=3600.0, gt=0)
    eta_window_s: float = Field(default=0.0, ge=0)
    lease_s: float = Field(default=30.0, gt=0)
    poll_interval_s: float = Field(default=2.0, gt=0)
    dispatch_check_s: float = Field(default=30.0, gt=0)
    resend_max_s: float = Field(default=600.0, gt=0)
    dispatch_hold_s: float = Field(default=2.0, ge=0)
    dispatch_hold_start_s: float = Field(default=0.05, ge=0)
    continue_in_place: bool = True
    run_retention_s: int = Field(default=7 * 24 * 3600, gt=0)
    idempotency_retention_s: int = Field(default=7 * 24 * 3600, gt=0)
    max_output_bytes: int = Field(default=1024 * 1024, gt=0)
    max_log_entries: int = Field(default=1000, gt=0)
    retry_at_max_deferrals: int = Field(default=100, gt=0)
    retry_at_max_deferral_s: float = Field(default=24 * 3600.0, gt=0)
    worker_eta_task_limit: int = Field(default=1000, gt=0)
    allow_eviction: bool = False
    log_format: Literal["text", "json"] = "text"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    strict_replay: bool = False
    sentinel_master: str | None = Field(default=None, min_length=1)
    min_replicas_ack: int = Field(default=0, ge=0)
    replica_ack_timeout_ms: int = Field(default=1000, gt=0, le=10_000)
    test_clock: bool = False
    redis_cluster: bool = False
    store_shards: int | None = Field(default=None, ge=1, le=1024)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str) -> str:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme not in _REDIS_SCHEMES:
            raise ValueError(f"must be a Redis URL ({', '.join(sorted(_REDIS_SCHEMES))}://...), "
                             f"got {url.split('@')[-1]!r}")
        return url

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.eta_window_s >= self.visibility_timeout_s:
            raise ValueError(
                f"eta_window_s ({self.eta_window_s}) must be below visibility_timeout_s "
                f"({self.visibility_timeout_s}): an ETA message held past the redelivery window "
                "runs twice"
            )
        sentinel_urls = [name for name, url in (("redis_url", self.redis_url),
                                                ("broker_url", self.effective_broker_url))
                         if is_sentinel_url(url)]
        if sentinel_urls and not self.sentinel_master:
            raise ValueError(
                f"{' and '.join(sentinel_urls)} is a sentinel:// URL but sentinel_master is not "
                "set: name the master the sentinels watch (sentinel_master, "
                "TRIGGER_CELERY_SENTINEL_MASTER)"
            )
        if is_sentinel_url(self.redis_url):
            parse_sentinel_url(self.redis_url)  # ValueError naming the bad entry
        if self.redis_cluster:
            if not self.redis_url.startswith(("redis://", "rediss://")):
                raise ValueError("redis_cluster needs a redis:// or rediss:// redis_url (one "
                                 f"node of the cluster), got {self.redis_url.split('://')[0]}://")
            if not self.broker_url:
                raise ValueError("redis_cluster is set but broker_url is not: the broker cannot "
                                 "be a Redis Cluster (kombu has no Redis Cluster transport); set "
                                 "broker_url to a single Redis, Sentinel or RabbitMQ")
            if self.min_replicas_ack:
                raise ValueError("min_replicas_ack is not supported with redis_cluster")
        return self

    @property
    def shards(self) -> int:
        """``store_shards``, or its default: 16 with ``redis_cluster``, else 1."""
        return self.store_shards or (16 if self.redis_cluster else 1)

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def effective_eta_window_s(self) -> float:
        """``eta_window_s``, or 0 under ``test_clock``: a Celery ETA message is held by the
        worker's real clock, which skipped time does not move (seconds)."""
        return 0.0 if self.test_clock else self.eta_window_s


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` from keywords and the environment.

    Raises:
        ConfigurationError: an unknown setting (keyword or ``TRIGGER_CELERY_*`` variable) or an
            invalid value; the message names it.
    """
    known = {name.upper() for name in Settings.model_fields} | _NOT_SETTINGS
    unknown_env = sorted(
        name for name in os.environ
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX):] not in known
    )
    if unknown_env:
        raise ConfigurationError(f"unknown setting(s) in the environment: {', '.join(unknown_env)}")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = describe_errors(exc, root="settings")
        raise ConfigurationError(f"invalid settings: {problems}") from None

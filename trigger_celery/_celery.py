"""The Celery app a client builds, its settings (each explained in the README), the worker
bootstep that sends due wake-ups, and Celery beat's schedule for cron and interval jobs."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import redis
from celery import Celery, Task, bootsteps, signals
from celery.exceptions import InvalidTaskError, WorkerShutdown
from kombu import Exchange, Queue
from kombu.exceptions import ContentDisallowed, DecodeError

from trigger_celery import _hold, _metrics
from trigger_celery._connection import is_sentinel_url
from trigger_celery._outage import OutageLog
from trigger_celery._replicas import check_replicas
from trigger_celery._settings import TEST_CLOCK_POLL_S, Settings

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient

logger = logging.getLogger("trigger_celery")

RUN_TASK = "trigger-celery.run"
SCHEDULE_TASK = "trigger-celery.schedule"


def own_queue(name: str) -> Queue:
    """A queue bound to its own direct exchange by its own name. A bare ``Queue(name)`` gets
    Celery's default exchange and routing key, so every queue of the app would be bound to the
    runs queue's key and each message delivered to all of them."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def guarded_strategy(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Any:
    """Celery's default strategy, except that a message of a known task whose body has the
    wrong shape (valid JSON, not ``[args, kwargs, embed]``) is logged and dropped. Celery raises
    from the consumer there ("Unrecoverable error"), which stops the worker; the message comes
    back on restart and stops the next one too."""
    from celery.worker.strategy import default

    handler = default(task, app, consumer, **kwargs)

    def guarded(message: Any, body: Any, *args: Any, **kw: Any) -> Any:
        try:
            return handler(message, body, *args, **kw)
        except (InvalidTaskError, ContentDisallowed, DecodeError):
            raise  # the consumer handles these itself
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            logger.error("discarding malformed message of task %s (id %s): %r", task.name,
                         (message.headers or {}).get("id"), exc)
            message.reject(requeue=False)
            return None

    return guarded


class GuardedTask(Task):  # type: ignore[misc]
    """The app's task class: :func:`guarded_strategy` for every task."""

    Strategy = "trigger_celery._celery:guarded_strategy"


def harden_kombu_redis() -> None:
    """Turn a kombu race on a lost Redis broker into the connection error Celery recovers from.

    When Celery closes a broken broker connection, kombu's Redis channel restores its unacked
    messages through a new pool built from a connection that is already released, and raises
    ``AttributeError: 'NoneType' object has no attribute 'hostname'`` (celery/kombu#582, seen
    again here with kombu 5.7 when Redis restarts). Celery treats that as an unrecoverable error
    and the worker exits. Raising redis-py's ``ConnectionError`` instead lets Celery's
    ``ignore_errors`` swallow it and reconnect; the messages come back by the visibility timeout,
    and our poller re-sends due runs meanwhile. Applied once per process.
    """
    from kombu.transport import redis as kombu_redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    original = kombu_redis.Channel._connparams
    if getattr(original, "_trigger_celery", False):
        return

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise RedisConnectionError("broker connection already released (kombu#582)")
        return original(self, asynchronous)

    _connparams._trigger_celery = True  # type: ignore[attr-defined]
    kombu_redis.Channel._connparams = _connparams


def reuse_kombu_redis_client() -> None:
    """Let kombu's Redis channel keep one ``redis.Redis`` client per connection pool.

    kombu 5.7 (``kombu/transport/redis.py``, ``Channel.conn_or_acquire``) builds a new
    ``redis.Redis`` object for every command it sends outside its consumer connection: each
    message published (``LPUSH``), each event (``PUBLISH``), each delivery and
    acknowledgement (the ``unacked`` transactions). With redis-py 8 that constructor builds the
    client's table of some 170 response callbacks, about 130 µs of CPU here, several times per
    task; a Celery message's publish went from 650 µs to 430 µs without it. The client object
    holds no connection of its own (it borrows from the channel's pool per command and is
    thread-safe), so one per pool behaves the same; a new pool (kombu replaces it after a
    connection error, a forked process resets it) gets a new client. Applied once per process.
    """
    from contextlib import contextmanager

    from kombu.transport import redis as kombu_redis

    channel = kombu_redis.Channel
    if getattr(channel.conn_or_acquire, "_trigger_celery", False):
        return

    @contextmanager
    def conn_or_acquire(self: Any, client: Any = None) -> Any:
        if client:
            yield client
            return
        pool = self.pool
        cached = self.__dict__.get("_tc_client")
        if cached is None or cached.connection_pool is not pool:
            cached = self.__dict__["_tc_client"] = self._create_client()
        yield cached

    conn_or_acquire._trigger_celery = True  # type: ignore[attr-defined]
    channel.conn_or_acquire = conn_or_acquire


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings of :func:`make_celery`'s app (each explained in the README, "Worker
    settings"), as a dict for ``app.conf.update``."""
    vt = int(settings.visibility_timeout_s)
    transport: dict[str, Any] = {
        "visibility_timeout": vt,
        "socket_keepalive": True,
        "health_check_interval": 10,
    }
    if is_sentinel_url(settings.effective_broker_url):
        # kombu's sentinel transport asks the sentinels for this master on every (re)connect
        transport["master_name"] = settings.sentinel_master
    return dict(
        # JSON only: pickle lets a forged message run code (CVE-2021-23727).
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        event_serializer="json",
        # A message is acknowledged after its task ran, so a dead worker's message comes back.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message per process at a time, and a cap on ETA messages held (celery#9849).
        worker_prefetch_multiplier=1,
        worker_eta_task_limit=settings.worker_eta_task_limit,
        # Reconnect forever, from start-up on (a Redis restart must not stop a worker).
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options=transport,
        # read only if a user sets a sentinel:// result_backend (results are ignored)
        result_backend_transport_options={"master_name": settings.sentinel_master}
        if settings.sentinel_master else {},
        visibility_timeout=vt,
        # Our lease already keeps a redelivered run from executing twice at once; cancelling
        # would interrupt a task mid-call and make it run again.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_soft_shutdown_timeout=10.0,
        # Our store keeps outcomes; Celery results would be keys that never expire (celery#7801).
        task_ignore_result=True,
        result_expires=3600,
        enable_utc=True,
        timezone="UTC",
        task_default_queue=settings.runs_queue,
        task_create_missing_queues=True,
        task_queues=[own_queue(settings.runs_queue)],
        worker_send_task_events=True,
        task_send_sent_event=True,
        broker_channel_error_retry=True,
    )


def make_celery(name: str, settings: Settings) -> Celery:
    """A Celery app configured for durable runs (see README, "Worker settings")."""
    harden_kombu_redis()
    reuse_kombu_redis_client()
    app = Celery(name, broker=settings.effective_broker_url, set_as_current=False,
                 task_cls=GuardedTask)
    app.conf.update(celery_config(settings))
    if settings.log_format == "json":
        from trigger_celery._logging import use_json_logs

        def json_logs(**_: Any) -> None:
            use_json_logs()

        signals.after_setup_logger.connect(json_logs, weak=False, dispatch_uid="tc-json-logs")
        signals.after_setup_task_logger.connect(json_logs, weak=False,
                                                dispatch_uid="tc-json-task-logs")
    _metrics.install(app, settings)
    _hold.install()
    return app


def consumed_queues(worker: Any) -> list[str]:
    """Names of the queues a worker consumes now (its task consumer's, else what ``-Q``
    selected, else every queue the app declares)."""
    consumer = getattr(getattr(worker, "consumer", None), "task_consumer", None)
    if consumer is not None and getattr(consumer, "queues", None):
        return [q.name for q in consumer.queues]
    return list(worker.app.amqp.queues.consume_from)


#: Shortest pause of the poller between two rounds, in seconds.
MIN_POLL_PAUSE_S = 0.005
#: Most runs one poller round claims; a full batch makes the next round start at once.
CLAIM_BATCH = 200


class BrokerQueues:
    """Which of the broker's queues hold messages, read directly when the broker is Redis (a
    queue is a list named after it); with another broker nothing is known.

    Parameters:
        broker_url: the Celery broker's URL.
    """

    def __init__(self, broker_url: str):
        self.redis: redis.Redis | None = None
        if broker_url.split("://", 1)[0] in ("redis", "rediss", "unix"):
            self.redis = redis.Redis.from_url(broker_url, socket_keepalive=True,
                                              health_check_interval=10)

    def backlogged(self, names: Iterable[str]) -> list[str]:
        """The queues among ``names`` with messages waiting (not yet taken by a worker)."""
        if self.redis is None:
            return []
        names = sorted(set(names))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
        return [n for n, length in zip(names, pipe.execute(), strict=True) if length]


def send_due(client: TriggerClient, backlogged: Iterable[str] = (), *,
             recover: bool = True) -> float:
    """Send a message for each run whose schedule entry is due (a run whose message already
    waits on one of the ``backlogged`` queues is not sent again); returns how long the poller
    may sleep, in seconds: until the next entry is due, at most ``poll_interval_s`` (another
    worker may add an earlier one meanwhile), 0 after a full batch. Waking at the next due
    entry, rather than every ``poll_interval_s``, is what lets wake-ups ride no ETA message.
    ``recover=False``: leave runs whose execution lost its lease (see :meth:`Store.claim_due`)."""
    claimed = client.store.claim_due(CLAIM_BATCH, recover=recover, backlogged=backlogged)
    for run_id, seq, job_id, queue in claimed:
        client.executor.send_run(run_id, seq, job_id=job_id, queue=queue)
    if len(claimed) >= CLAIM_BATCH:
        return 0.0
    poll = client.settings.poll_interval_s
    if client.settings.test_clock:  # skipped time makes entries due at any moment
        poll = min(poll, TEST_CLOCK_POLL_S)
    nxt = client.store.next_due_s()
    if nxt is None:
        return poll
    return min(poll, max(MIN_POLL_PAUSE_S, nxt - client.store.now()))


class WakeupPoller(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: a thread that sends a message for each run whose schedule entry is due
    (a wait or retry, a lost message, or an execution whose lease expired because its worker
    died) as soon as it is due (:func:`send_due`; at least every ``poll_interval_s``), records
    the queues this worker consumes (``Store.mark_consuming``, every ``poll_interval_s``), and
    publishes the job registry."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._policy_checked = False
        self._thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        client: TriggerClient = worker.app.trigger_client
        try:
            refused = self._store_refused(client)
        except Exception:  # noqa: BLE001 - store away at start: the loop checks once it answers
            refused = None
        if refused:
            raise WorkerShutdown(1)
        self._policy_checked = refused is False
        if client.settings.min_replicas_ack:
            try:
                check_replicas(client.store.redis, client.settings.min_replicas_ack)
            except Exception:  # noqa: BLE001 - store away at start: writes will wait anyway
                logger.warning("could not count the store's replicas yet", exc_info=True)
        try:
            client.publish_jobs()
        except Exception:
            logger.warning("could not publish the job registry yet", exc_info=True)
        self._thread = threading.Thread(target=self._loop, args=(client, worker),
                                        name="tc-poller", daemon=True)
        self._thread.start()

    def stop(self, worker: Any) -> None:
        self._stop.set()

    def _loop(self, client: TriggerClient, worker: Any) -> None:
        published = False
        # Runs left EXECUTING without a lease are recovered only once this poller has reached
        # the store for a full lease without a break: after an outage, a live execution whose
        # lease expired meanwhile takes it back first (renew.lua), so the outage alone never
        # starts a second execution.
        connected_since: float | None = None
        outage = OutageLog(logger, "wake-up poller", client.settings.poll_interval_s)
        marked = time.monotonic() - client.settings.poll_interval_s  # mark on the first round
        broker: BrokerQueues | None = None
        pause = client.settings.poll_interval_s
        while not self._stop.wait(pause):
            pause = client.settings.poll_interval_s
            try:
                if not self._policy_checked:
                    self._check_policy_late(client)
                if not published:
                    client.publish_jobs()
                    published = True
                if time.monotonic() - marked >= client.settings.poll_interval_s:
                    marked = time.monotonic()
                    client.store.mark_consuming(consumed_queues(worker), client.store.now(),
                                                3 * client.settings.poll_interval_s)
                if broker is None:
                    broker = BrokerQueues(client.settings.effective_broker_url)
                now = time.monotonic()
                recover = connected_since is not None and (
                    now - connected_since >= client.settings.lease_s)
                queues = {client.settings.runs_queue, *consumed_queues(worker)}
                pause = send_due(client, broker.backlogged(queues), recover=recover)
                for run_id, seq, job_id, queue in (client.store.slots.sweep(client.store.now())
                                                   if recover else []):
                    client.executor.send_run(run_id, seq, job_id=job_id, queue=queue)
                if connected_since is None:
                    connected_since = now
            except Exception as exc:  # Redis or the broker away: one line, try again next round
                connected_since = None
                outage.failed(exc)
            else:
                outage.ok()

    def _store_refused(self, client: TriggerClient) -> bool:
        """Check the store's mode (cluster or not, as ``redis_cluster`` says) and eviction policy
        (:mod:`trigger_celery._eviction`); True (and one critical line logged) when the mode
        does not match, or the store evicts and ``allow_eviction`` is off. Raises the store's
        error when it does not answer."""
        from trigger_celery._connection import check_store_mode, describe_url
        from trigger_celery._errors import ConfigurationError
        from trigger_celery._eviction import EvictionPolicyError, check_eviction_policy

        where = describe_url(client.settings.redis_url)
        try:
            check_store_mode(client.store.redis, where)
            check_eviction_policy(client.store.redis, where, allow=client.settings.allow_eviction)
        except (ConfigurationError, EvictionPolicyError) as exc:
            logger.critical("%s", exc)
            return True
        return False

    def _check_policy_late(self, client: TriggerClient) -> None:
        """The eviction check of a worker that started while the store was away: a store that
        evicts stops the worker (SIGTERM to its main process: Celery's warm shutdown)."""
        if self._store_refused(client):
            self._stop.set()
            os.kill(os.getpid(), signal.SIGTERM)
        self._policy_checked = True

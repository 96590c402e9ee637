"""Prometheus metrics of runs, task attempts, waits and message latencies.

The engine calls the functions below, one line per call site; nothing here reads or writes Redis.
``prometheus_client`` is imported on first use, not at import time: its multiprocess mode is
chosen when it is imported, from ``PROMETHEUS_MULTIPROC_DIR``, which a worker sets up at start
(:func:`install`) before its pool processes fork.

A worker with the ``metrics_port`` setting serves ``/metrics`` from its main process, adding up
every pool process's values (Celery's prefork pool) through ``PROMETHEUS_MULTIPROC_DIR``: the
variable when set (wipe that folder when the worker starts, one folder per worker), else a fresh
temporary folder. ``docs/metrics.md`` lists every metric with a PromQL example.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trigger_celery._policy import Decision
    from trigger_celery._settings import Settings
    from trigger_celery.integration import Integration

logger = logging.getLogger("trigger_celery")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Message header holding the publish time (epoch seconds) of our Celery messages.
PUBLISHED_HEADER = "tc_published_at"
#: Buckets (seconds) of the latency histograms: 1 ms to 5 min.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                   30.0, 60.0, 300.0)
#: Buckets (seconds) of durations asked for or taken by runs, waits and deferrals: 0.1 s to 1 day.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0,
                    24 * 3600.0)


class _Metrics:
    """The metric objects, made once per process on first use."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        p = "trigger_celery_"
        self.runs_started = Counter(p + "runs_started", "Runs whose first execution started.",
                                    ["job"])
        self.runs_finished = Counter(p + "runs_finished", "Runs that finished, by final status.",
                                     ["job", "status"])
        self.run_duration = Histogram(p + "run_duration_seconds",
                                      "Time from a run's creation to its end (s).",
                                      ["job", "status"], buckets=DURATION_BUCKETS)
        self.task_attempts = Counter(
            p + "task_attempts", "Task attempts by integration ('none': io.run_task) and "
            "outcome (success, retry, deferred, failed).", ["integration", "outcome"])
        self.deferrals = Counter(p + "retry_at_deferrals",
                                 "Retries at a time an on_error hook (rate limit) or "
                                 "RetryAfterError chose.", ["integration"])
        self.deferral_delay = Histogram(p + "retry_at_delay_seconds",
                                        "How far ahead a retry_at deferral lies (s).",
                                        ["integration"], buckets=DURATION_BUCKETS)
        self.waits = Counter(p + "waits", "io.wait calls that suspended a run (new waits).")
        self.wait_seconds = Histogram(p + "wait_seconds", "Durations asked of io.wait (s).",
                                      buckets=DURATION_BUCKETS)
        self.dispatch_latency = Histogram(
            p + "dispatch_latency_seconds", "From publishing a dispatched task's attempt (or "
            "its ETA) to its start on a worker (s).", ["integration"], buckets=LATENCY_BUCKETS)
        self.queue_wait = Histogram(
            p + "queue_wait_seconds", "From publishing a run's execution message (or its ETA) "
            "to the execution's start on a worker (s).", ["queue"], buckets=LATENCY_BUCKETS)
        self._children: dict[tuple[Any, ...], Any] = {}

    def of(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: ``labels()`` costs several microseconds, the
        engine calls these on every task attempt."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


_lock = threading.Lock()
_metrics: _Metrics | None = None
_made_dirs: dict[str, str] = {}  # the temporary multiprocess folder this worker made
_current = threading.local()  # the run this thread executes: (run_id, job_id, created_at)


def metrics() -> _Metrics:
    """This process's metric objects (made on first call)."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _Metrics()
    return _metrics


def _integration_label(integration: Integration | None) -> str:
    return integration.id if integration is not None else "none"


# -- call sites in the engine ---------------------------------------------------------------


def execution_started(run_id: str, run: dict[str, str]) -> None:
    """An execution of ``run_id`` took its lease; ``run`` is the run's hash (``job_id``,
    ``executions`` counting this one, ``created_at`` in epoch seconds). Counts the run as
    started on its first execution."""
    job = run.get("job_id", "")
    _current.run = (run_id, job, float(run.get("created_at") or 0) or None)
    if run.get("executions") == "1":
        m = metrics()
        m.of(m.runs_started, job).inc()


def run_finished(run_id: str, status: str) -> None:
    """The execution this thread runs ended ``run_id`` with ``status`` (SUCCESS, FAILURE or
    CANCELED)."""
    current = getattr(_current, "run", None)
    job, created = (current[1], current[2]) if current and current[0] == run_id else ("", None)
    m = metrics()
    m.of(m.runs_finished, job, status).inc()
    if created is not None:
        m.of(m.run_duration, job, status).observe(max(0.0, time.time() - created))


def execution_stopped(run_id: str, reason: BaseException) -> None:
    """An execution stopped early: its lease was lost, or ``reason`` says the run was
    canceled (counted as finished with status CANCELED)."""
    if type(reason).__name__ == "RunCanceled":
        run_finished(run_id, "CANCELED")


def task_attempt(integration: Integration | None, decision: Decision | None) -> None:
    """An attempt of a task ended: ``decision`` None for a success, else what follows the
    failure (a policy retry, a ``retry_at`` deferral, or failing for good).

    Parameters:
        integration: the task's integration (dispatched, or its ``run_task``); None for a plain
            ``io.run_task``.
    """
    m = metrics()
    label = _integration_label(integration)
    if decision is None:
        outcome = "success"
    elif decision.retry_at is None:
        outcome = "failed"
    elif decision.deferral:
        outcome = "deferred"
        m.of(m.deferrals, label).inc()
        m.of(m.deferral_delay, label).observe(max(0.0, decision.retry_at - time.time()))
    else:
        outcome = "retry"
    m.of(m.task_attempts, label, outcome).inc()


def wait_started(seconds: float) -> None:
    """A run suspends on a new ``io.wait`` of ``seconds``."""
    m = metrics()
    m.waits.inc()
    m.wait_seconds.observe(max(0.0, float(seconds)))


# -- Celery signals: message latencies and the worker's endpoint ----------------------------


def _published(headers: dict[str, Any] | None = None, body: Any = None, **_: Any) -> None:
    """``before_task_publish``: stamp the publish time on the message (protocol 2 headers)."""
    if headers is not None:
        headers[PUBLISHED_HEADER] = time.time()


def _eta_s(eta: Any) -> float | None:
    if eta is None:
        return None
    if isinstance(eta, datetime):
        return eta.timestamp()
    try:
        return datetime.fromisoformat(str(eta)).timestamp()
    except ValueError:
        return None


def _prerun(task: Any = None, **_: Any) -> None:
    """``task_prerun``: how long the message waited, from its publish time or ETA."""
    from trigger_celery._celery import RUN_TASK, SCHEDULE_TASK

    if task is None or getattr(task.app, "trigger_client", None) is None:
        return
    request = task.request
    sent = request.get(PUBLISHED_HEADER)
    if sent is None or task.name == SCHEDULE_TASK:
        return
    due = max(float(sent), _eta_s(request.get("eta")) or 0.0)
    waited = max(0.0, time.time() - due)
    if task.name == RUN_TASK:
        queue = (request.get("delivery_info") or {}).get("routing_key") or ""
        m = metrics()
        m.of(m.queue_wait, queue).observe(waited)
    else:
        m = metrics()
        m.of(m.dispatch_latency, task.name.split(".", 1)[0]).observe(waited)


def _worker_init(app: Any, settings: Settings) -> Any:
    def init(sender: Any = None, instance: Any = None, **_: Any) -> None:
        if settings.metrics_port is None or getattr(instance, "app", app) is not app:
            return
        if not os.environ.get(MULTIPROC_ENV):
            os.environ[MULTIPROC_ENV] = _made_dirs.setdefault(
                "dir", tempfile.mkdtemp(prefix="trigger-celery-metrics-"))
        if "prometheus_client" in sys.modules and _metrics is None:
            # Imported already (Celery loads flower's command plugin, which imports it): its
            # value class was chosen without the folder. Choose again; metrics made from now on
            # (in this process and the pool processes it forks) write to the folder.
            from prometheus_client import values

            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]

    return init


def _worker_shutdown(**_: Any) -> None:
    """``worker_shutdown``: remove the temporary multiprocess folder this worker made."""
    made = _made_dirs.pop("dir", None)
    if made and os.environ.get(MULTIPROC_ENV) == made:
        shutil.rmtree(made, ignore_errors=True)


def _worker_ready(app: Any, settings: Settings) -> Any:
    def ready(sender: Any = None, **_: Any) -> None:
        if settings.metrics_port is None or getattr(sender, "app", app) is not app:
            return
        try:
            url = serve(settings.metrics_port, settings.metrics_host)
        except OSError as exc:
            logger.error("metrics endpoint not started on %s:%s: %s", settings.metrics_host,
                         settings.metrics_port, exc)
            return
        logger.info("metrics at %s", url)

    return ready


def serve(port: int, host: str = "127.0.0.1") -> str:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread: every process's values when
    ``PROMETHEUS_MULTIPROC_DIR`` is set, else this process's. Returns the endpoint's URL.

    Raises:
        OSError: the port cannot be bound.
    """
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

    registry = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    server, _thread = start_http_server(port, addr=host, registry=registry)
    bound = server.server_address[1]
    return f"http://{host}:{bound}/metrics"


def install(app: Any, settings: Settings) -> None:
    """Connect the Celery signals for ``app``: message publish times and latencies always; and
    with ``settings.metrics_port``, the multiprocess folder at worker start and the endpoint
    once the worker is ready."""
    from celery import signals

    signals.before_task_publish.connect(_published, weak=False, dispatch_uid="tc-published")
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid="tc-prerun")
    if settings.metrics_port is not None:
        uid = f"tc-metrics-{id(app)}"
        signals.celeryd_init.connect(_worker_init(app, settings), weak=False,
                                     dispatch_uid=uid + "-init")
        signals.worker_ready.connect(_worker_ready(app, settings), weak=False,
                                     dispatch_uid=uid + "-ready")
        signals.worker_shutdown.connect(_worker_shutdown, weak=False, dispatch_uid="tc-shutdown")

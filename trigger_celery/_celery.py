"""The Celery app a client builds, its settings (each explained in the README), the worker
bootstep that sends due wake-ups, and Celery beat's schedule for cron and interval jobs."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from celery import Celery, bootsteps
from kombu import Queue

from trigger_celery._settings import Settings

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient

logger = logging.getLogger("trigger_celery")

RUN_TASK = "trigger-celery.run"
SCHEDULE_TASK = "trigger-celery.schedule"


def make_celery(name: str, settings: Settings) -> Celery:
    """A Celery app configured for durable runs (see README, "Worker settings")."""
    app = Celery(name, broker=settings.effective_broker_url, set_as_current=False)
    vt = int(settings.visibility_timeout_s)
    transport = {
        "visibility_timeout": vt,
        "socket_keepalive": True,
        "health_check_interval": 10,
    }
    app.conf.update(
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
        visibility_timeout=vt,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_soft_shutdown_timeout=10.0,
        # Our store keeps outcomes; Celery results would be keys that never expire (celery#7801).
        task_ignore_result=True,
        result_expires=3600,
        enable_utc=True,
        timezone="UTC",
        task_default_queue=settings.runs_queue,
        task_create_missing_queues=True,
        task_queues=[Queue(settings.runs_queue)],
        worker_send_task_events=True,
        task_send_sent_event=True,
        broker_channel_error_retry=True,
    )
    return app


class WakeupPoller(bootsteps.StartStopStep):
    """Worker bootstep: a thread that, every ``poll_interval_s``, sends a message for each run
    whose schedule entry is due (a wait or retry beyond the ETA window, a lost message, or an
    execution whose lease expired because its worker died), and publishes the job registry."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        client: TriggerClient = worker.app.trigger_client
        try:
            client.publish_jobs()
        except Exception:
            logger.warning("could not publish the job registry yet", exc_info=True)
        self._thread = threading.Thread(target=self._loop, args=(client,), name="tc-poller",
                                        daemon=True)
        self._thread.start()

    def stop(self, worker: Any) -> None:
        self._stop.set()

    def _loop(self, client: TriggerClient) -> None:
        published = False
        while not self._stop.wait(client.settings.poll_interval_s):
            try:
                if not published:
                    client.publish_jobs()
                    published = True
                for run_id, seq in client.store.claim_due():
                    client.executor.send_run(run_id, seq)
            except Exception:  # Redis or the broker away: try again next round
                logger.warning("wake-up poller round failed", exc_info=True)


def cron_slot(schedule: Any, now: float) -> int:
    """Epoch minute of the latest tick of a crontab at or before ``now`` (looks back a day)."""
    minute = int(now // 60) * 60
    for back in range(0, 24 * 60 * 8):
        t = time.gmtime(minute - back * 60)
        dow = (t.tm_wday + 1) % 7  # crontab: Sunday is 0
        if (t.tm_min in schedule.minute and t.tm_hour in schedule.hour
                and t.tm_mday in schedule.day_of_month and t.tm_mon in schedule.month_of_year
                and dow in schedule.day_of_week):
            return minute - back * 60
    return minute

"""The Celery task bodies a :class:`~trigger_celery._client.TriggerClient` registers.

Each body is bound (``self`` is the Celery task) and finds its client as
``self.app.trigger_client``:

- :func:`run_body` (``trigger-celery.run``): one execution of a run, ``(run_id, seq)``.
- :func:`operation_body` (``<integration id>.<namespace>.<method>``): one attempt of a
  dispatched integration task.
- :func:`schedule_body` (``trigger-celery.schedule``): Celery beat's tick of a cron or interval
  job.

None of them raises for a run's own failure: an unexpected error is logged, and the lease expiry
recovers the run. Only Celery's :class:`~celery.exceptions.Retry` passes through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery.exceptions import Retry

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient

logger = logging.getLogger("trigger_celery")


def run_body(self: Any, run_id: str, seq: int) -> None:
    """Execute run ``run_id`` if ``seq`` is its current sequence number (else nothing)."""
    client: TriggerClient = self.app.trigger_client
    try:
        client.executor.execute(str(run_id), int(seq))
    except Exception:  # never let a run crash the worker; the lease expiry recovers it
        logger.exception("execution of run %s failed unexpectedly", run_id)


def operation_body(qname: str) -> Callable[..., None]:
    """The body of the Celery task of operation ``qname`` (``issues.create``): runs attempt
    ``attempt`` of the task ``idem`` of run ``run_id`` with the integration registered under
    ``connection``; raises only Celery's ``Retry`` (the next attempt, within the ETA window)."""
    def body(self: Any, run_id: str, idem: str, attempt: int, connection: str) -> None:
        client: TriggerClient = self.app.trigger_client
        integ = client.integrations.get(connection)
        if integ is None:
            logger.error("no integration with connection key %r on this worker", connection)
            return
        try:
            client.executor.execute_operation(integ, qname, run_id, idem, int(attempt), self)
        except Retry:
            raise
        except Exception:
            logger.exception("task %s.%s of run %s failed unexpectedly", integ.id, qname, run_id)

    body.__name__ = qname.replace(".", "_")
    return body


def schedule_body(self: Any, job_id: str) -> None:
    """Celery beat's tick: one run per job and scheduled slot, however many beats send it
    (see :mod:`trigger_celery._schedule`)."""
    client: TriggerClient = self.app.trigger_client
    job = client.jobs.get(job_id)
    if job is None or not job.enabled:
        return
    client.trigger_slot(job, client.store.now())

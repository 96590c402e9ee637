"""Whether any worker consumes a run's queue: a run QUEUED on a queue nobody consumes waits
forever, and ``runs show`` / ``trigger --wait`` say so instead of showing a quiet QUEUED."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient
    from trigger_celery._runs import Run

#: Seconds to wait for workers' answers to ``inspect().active_queues()``.
INSPECT_TIMEOUT_S = 1.0


def consumers(client: TriggerClient, queue: str,
              timeout: float = INSPECT_TIMEOUT_S) -> list[str]:
    """Names of the workers (``celery@host``) that consume ``queue`` now, asked over the broker
    (Celery's ``inspect().active_queues()``; waits up to ``timeout`` seconds for answers)."""
    answers = client.celery.control.inspect(timeout=timeout).active_queues() or {}
    return sorted(name for name, queues in answers.items()
                  if any(q.get("name") == queue for q in queues or []))


def backlog(client: TriggerClient, queue: str) -> int | None:
    """Messages waiting in ``queue`` on the broker, or ``None`` when the broker cannot tell."""
    try:
        with client.celery.connection_for_read() as conn:
            return int(conn.default_channel.queue_declare(queue, passive=True).message_count)
    except Exception:  # noqa: BLE001 - only a hint
        return None


def run_queue(client: TriggerClient, run_id: str) -> str:
    """The runs queue a run's messages go to (the creating client's, or the job's workers')."""
    return client.store.get_run_hash(run_id).get("queue") or client.settings.runs_queue


def unconsumed_note(client: TriggerClient, run: Run) -> str | None:
    """For a QUEUED run whose queue no worker consumes: ``no worker consumes queue 'q'
    (2 messages waiting): start one with `trigger-celery worker -Q q`"``; else ``None``."""
    if run.status != "QUEUED":
        return None
    queue = run_queue(client, run.id)
    if consumers(client, queue):
        return None
    waiting = backlog(client, queue)
    count = "" if waiting is None else \
        f" ({waiting} message{'s' if waiting != 1 else ''} waiting)"
    return (f"no worker consumes queue {queue!r}{count}: the run starts when one does; "
            f"start one with `trigger-celery worker -Q {queue}`")

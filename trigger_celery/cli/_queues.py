"""Whether any worker consumes a run's queue: a run QUEUED on a queue nobody consumes waits
forever, and ``runs show`` / ``trigger --wait`` say so instead of showing a quiet QUEUED."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trigger_celery._states import PENDING, QUEUED, WAITING

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


def stuck_queue(client: TriggerClient, run: Run) -> tuple[str, str] | None:
    """The queue a run waits on, if it waits on one: ``(queue, what)`` for a QUEUED run (its
    runs queue, ``"the run starts"``) or a run WAITING on a dispatched task no attempt of which
    has started (the integration's queue, ``"task 'key' runs"``); else ``None``."""
    if run.status == QUEUED:
        return run_queue(client, run.id), "the run starts"
    if run.status == WAITING:
        pending = [t for t in run.tasks
                   if t.kind == "dispatched" and t.status == PENDING and t.queue]
        if pending:
            return str(pending[-1].queue), f"task {pending[-1].key!r} runs"
    return None


def unconsumed_note(client: TriggerClient, run: Run) -> str | None:
    """For a run waiting on a queue no worker consumes (see :func:`stuck_queue`): ``no worker
    consumes queue 'q' (2 messages waiting): the run starts when one does; start one with
    `trigger-celery worker -Q q```; else ``None``."""
    stuck = stuck_queue(client, run)
    if stuck is None:
        return None
    queue, what = stuck
    if consumers(client, queue):
        return None
    waiting = backlog(client, queue)
    count = "" if waiting is None else \
        f" ({waiting} message{'s' if waiting != 1 else ''} waiting)"
    from trigger_celery.cli._app import app_spec  # the app this command was given

    return (f"no worker consumes queue {queue!r}{count}: {what} when one does; "
            f"start one with `trigger-celery -A {app_spec()} worker -Q {queue}`")

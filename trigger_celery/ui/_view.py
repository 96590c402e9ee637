"""What the templates show of a run: times as UTC text, tasks as a tree, waits with their resume
time, JSON shortened. Pure functions of a :class:`~trigger_celery.Run`; no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trigger_celery._runs import Run, Task
from trigger_celery._time import clock_ms, date_s, ms_text, relative_text

#: CSS class per run or task status.
STATUS_CLASS = {"COMPLETED": "ok", "SUCCESS": "ok", "ERRORED": "bad", "FAILURE": "bad",
                "WAITING": "wait", "RUNNING": "busy", "EXECUTING": "busy", "PENDING": "idle",
                "QUEUED": "idle", "CANCELED": "cancel"}

#: Time windows of the runs list's ``since`` filter: label -> seconds.
WINDOWS = {"15m": 15 * 60, "1h": 3600, "24h": 24 * 3600, "7d": 7 * 24 * 3600}


when = clock_ms  #: ``HH:MM:SS.mmm`` UTC (templates call it ``when``)
date = date_s  #: ``YYYY-MM-DD HH:MM:SS`` UTC


def iso(ts: float | None) -> str:
    """Epoch seconds -> ISO 8601 with ``Z`` (for ``<time datetime=...>``), ``""`` for None."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


duration = ms_text  #: milliseconds -> ``12.3 ms`` / ``4.56 s``
relative = relative_text  #: ``in 3 s``, ``2 min ago``


def short_json(value: Any, limit: int = 120) -> str:
    """Compact JSON of ``value``, cut to ``limit`` characters with an ellipsis."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pretty_json(value: Any, limit: int = 20_000) -> str:
    """Indented JSON of ``value``, cut to ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str, indent=2)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Wait:
    """An ``io.wait`` task as shown: ``seconds`` asked, ``due`` (epoch s) when it resumes or
    resumed, ``done`` once it resumed."""

    seconds: float | None
    due: float | None
    done: bool


@dataclass
class Node:
    """A task and the tasks it started (subtasks), in creation order."""

    task: Task
    children: list[Node] = field(default_factory=list)

    @property
    def wait(self) -> Wait | None:
        """The wait's details when the task is an ``io.wait``, else None."""
        t = self.task
        if t.kind != "wait":
            return None
        seconds = t.params.get("seconds") if isinstance(t.params, dict) else None
        due = t.retry_at
        if due is None and isinstance(seconds, int | float) and t.created_at is not None:
            due = t.created_at + float(seconds)
        if t.status == "COMPLETED" and t.completed_at is not None:
            due = t.completed_at
        secs = float(seconds) if isinstance(seconds, int | float) else None
        return Wait(seconds=secs, due=due, done=t.status == "COMPLETED")


def task_tree(run: Run) -> list[Node]:
    """The run's tasks nested under their parents (by idempotency key), roots in order."""
    nodes = {t.idem: Node(t) for t in run.tasks}
    roots: list[Node] = []
    for t in run.tasks:
        parent = nodes.get(t.parent) if t.parent else None
        (parent.children if parent is not None else roots).append(nodes[t.idem])
    return roots


def took(run: Run) -> str:
    """How long a finished run took from creation (``1.23 s``), else ``""``."""
    if run.finished_at and run.created_at:
        return duration((run.finished_at - run.created_at) * 1000)
    return ""


def progress(run: Run) -> tuple[int, int]:
    """``(completed tasks, all tasks)``."""
    return sum(t.status == "COMPLETED" for t in run.tasks), len(run.tasks)


def filters(run: Run, *, job: str | None, status: str | None, since_s: float | None,
            now: float) -> bool:
    """Whether ``run`` passes the runs list's filters (``since_s``: seconds back from ``now``)."""
    if job and run.job_id != job:
        return False
    if status and run.status != status:
        return False
    return not (since_s is not None and (run.created_at or 0) < now - since_s)


#: Functions and tables the templates use.
TEMPLATE_GLOBALS: dict[str, Any] = {
    "when": when, "date": date, "iso": iso, "duration": duration, "relative": relative,
    "short_json": short_json, "pretty_json": pretty_json, "task_tree": task_tree,
    "took": took, "progress": progress, "status_class": STATUS_CLASS,
}

"""The worker's log lines about runs and tasks, on the stdlib logger ``trigger_celery``.

One line per run outcome (SUCCESS, FAILURE, CANCELED) and per failed or retried task attempt,
with the run id, the job, the task key, the attempt, the error and the next attempt's time.
Celery's worker configures the handlers (``-l info`` shows them; ``dev`` prints the worker's
output). Each line also carries its fields as ``extra`` attributes (``record.tc``, a dict), which
:class:`JsonFormatter` writes out when the setting ``log_format`` is ``json``
(``TRIGGER_CELERY_LOG_FORMAT=json``): then every line of the worker is one JSON object.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from trigger_celery._states import SUCCESS

logger = logging.getLogger("trigger_celery")

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds (``2026-11-29T08:30:12.777Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def run_finished(run_id: str, job_id: str, version: str | None, status: str,
                 error: Mapping[str, Any] | None, *, executions: int | None = None,
                 created_at: float | None = None, now: float | None = None) -> None:
    """Log a run's outcome: ``run <id> job <job>@<version> SUCCESS in 1.08 s (executions 2)``,
    or ``... FAILURE: Type: message``. ``created_at``/``now`` are epoch seconds."""
    fields: dict[str, Any] = {"event": "run_finished", "run_id": run_id, "job_id": job_id,
                              "job_version": version, "status": status,
                              "executions": executions}
    took = ""
    if created_at and now:
        fields["duration_s"] = round(now - created_at, 3)
        took = f" in {now - created_at:.2f} s"
    text = f"run {run_id} job {job_id}@{version} {status}{took}"
    if executions:
        text += f" (executions {executions})"
    if error:
        fields["error_type"], fields["error"] = error.get("type"), error.get("message")
        text += f": {error.get('type')}: {error.get('message')}"
    level = logging.INFO if status == SUCCESS else logging.WARNING
    logger.log(level, "%s", text, extra={"tc": fields})


def task_attempt_failed(run_id: str, job_id: str, rec: Mapping[str, Any], error: Mapping[str, Any],
                        retry_at: float | None, *, now: float) -> None:
    """Log a failed task attempt and what comes next: ``task 'key' (name) of run <id> job
    <job> attempt 2 failed: Type: message; next attempt 3 at <ISO time> (in 1.2 s)``, or
    ``...; no further attempt``. ``retry_at`` and ``now`` are epoch seconds."""
    attempt = int(rec.get("attempts") or 0)
    fields: dict[str, Any] = {
        "event": "task_retry" if retry_at is not None else "task_failed",
        "run_id": run_id, "job_id": job_id, "task_key": rec.get("key"),
        "task_name": rec.get("name"), "attempt": attempt, "error_type": error.get("type"),
        "error": error.get("message"), "next_attempt": attempt + 1 if retry_at else None,
        "next_attempt_at": _iso(retry_at),
    }
    text = (f"task {rec.get('key')!r} ({rec.get('name')}) of run {run_id} job {job_id} "
            f"attempt {attempt} failed: {error.get('type')}: {error.get('message')}; ")
    if retry_at is None:
        text += "no further attempt"
    else:
        wait_s = max(retry_at - now, 0.0)
        text += f"next attempt {attempt + 1} at {_iso(retry_at)} (in {wait_s:.1f} s)"
    level = logging.WARNING if retry_at is not None else logging.ERROR
    logger.log(level, "%s", text, extra={"tc": fields})


class JsonFormatter(logging.Formatter):
    """Each record as one JSON object: ``time`` (ISO 8601 UTC), ``level``, ``logger``,
    ``message``, our fields (``event``, ``run_id``, ``job_id``, ``task_key``, ``attempt``,
    ``error``, ``next_attempt_at``, ...) when the line is ours, and ``exc`` for a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": _iso(record.created), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}
        fields = getattr(record, "tc", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if v is not None})
        for key, value in vars(record).items():  # Celery's own extras (task name, id, ...)
            if key not in _STANDARD and key != "tc" and key not in out:
                out[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def use_json_logs() -> None:
    """Give every handler of the root logger (and Celery's) the :class:`JsonFormatter`."""
    formatter = JsonFormatter()
    for name in (None, "celery", "celery.task"):
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter)

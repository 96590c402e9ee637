"""Determinism checks: a run's function must make the same calls every time it is replayed.

A run resumes by executing its function again from the top; each task call finds its record by
key and returns the stored output (Trigger.dev v2's resumability). That is only sound when the
code calls the same tasks with the same arguments each time. Two checks guard it:

* **Replay mismatch.** Each task record keeps a hash of its params (``params_hash``: the first
  16 hex digits of SHA-256 over the params' JSON with sorted keys; redacted params are hashed
  after redaction, so no secret is hashed). When a replayed task's recorded name or params hash
  differ from the call made now, the run gets a warning, once per task: an entry in the run's
  ``replay_warnings`` (``{"key", "idem", "recorded": {"name", "params"}, "now": {"name",
  "params"}, "at"}``, ``at`` in epoch seconds) and a ``WARN`` log line, both shown by ``runs
  show``. Under strict replay (``define_job(..., strict_replay=True)``, or the
  ``strict_replay`` setting for every job) the run fails instead with
  :class:`~trigger_celery.NonDeterminismError` (as DBOS fails a workflow with
  ``DBOSUnexpectedStepError`` when a step's name differs on recovery).
* **Unreached resumes.** A run is resumed for the task or wait it suspended on. An execution
  that suspends again without ever calling it leaves that record pending forever; when
  :data:`MAX_FRUITLESS_RESUMES` such records pile up (each one a resume that made no progress),
  the run fails with :class:`~trigger_celery.NonDeterminismError` naming the keys and their
  common pattern. The typical cause is a key built from the clock, a random number or a uuid:
  ``io.wait(f"w-{time.time_ns()}", seconds=1)`` creates a new wait on every execution and would
  otherwise never end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os.path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trigger_celery._errors import NonDeterminismError
from trigger_celery._states import TASK_READY_STATES
from trigger_celery._store import dumps

if TYPE_CHECKING:
    from trigger_celery._replay import RunExecution
    from trigger_celery._states import TaskRecord

logger = logging.getLogger("trigger_celery")

#: Pending task records an execution may leave unreached before the run fails (each one is a
#: resume that never got back to what it was resumed for).
MAX_FRUITLESS_RESUMES = 3
#: Replay warnings kept per run (later ones are counted in ``replay_warnings_dropped``).
MAX_REPLAY_WARNINGS = 50

# ASCII: a lone surrogate in params is hashed (and shown) as its \udXXX escape
_sorted_dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=True,
                                 default=repr).encode
_FINISHED = TASK_READY_STATES


def params_hash(params: Any) -> str | None:
    """16 hex digits of SHA-256 over ``params`` as JSON with sorted keys (values JSON cannot
    encode count by their ``repr``); ``None`` for ``None`` (no params)."""
    if params is None:
        return None
    return hashlib.sha256(_sorted_dumps(params).encode()).hexdigest()[:16]


def _shown(value: Any, limit: int = 2000) -> Any:
    """``value`` as stored in a warning: JSON, cut to ``limit`` characters when longer."""
    text = _sorted_dumps(value)
    return value if len(text) <= limit else text[: limit - 1] + "…"


class ReplayGuard:
    """The determinism checks of one execution (``RunExecution.guard``).

    Attributes:
        strict: fail the run on a replay mismatch instead of warning.
        fatal: the :class:`NonDeterminismError` that fails the run, once raised (kept here so
            that user code catching it with ``except Exception`` cannot let the run succeed).
    """

    def __init__(self, x: RunExecution, strict: bool = False):
        self.x = x
        self.strict = strict
        self.fatal: NonDeterminismError | None = None

    def replayed(self, key: str, idem: str, rec: TaskRecord, name: str, phash: str | None,
                 shown: Callable[[], Any]) -> None:
        """Compare a replayed record with the call made now (``name``, ``phash`` from
        :func:`params_hash`; ``shown()`` gives the params as they would be stored). A record
        written before params were hashed (params but no hash) is compared by name only.

        Raises:
            NonDeterminismError: they differ and replay is strict.
        """
        recorded = rec.get("params_hash")
        same_params = recorded == phash or (recorded is None and rec.get("params") is not None)
        if rec.get("name") == name and same_params:
            return
        self._mismatch(key, idem, rec, name, shown())

    def _mismatch(self, key: str, idem: str, rec: TaskRecord, name: str, params: Any) -> None:
        x = self.x
        before = {"name": rec.get("name"), "params": _shown(rec.get("params"))}
        after = {"name": name, "params": _shown(params)}
        warning = {"key": key, "idem": idem, "recorded": before, "now": after, "at": x.store.now()}
        what = (f"task {key!r} replayed with a different call than recorded: recorded "
                f"{before['name']!r} params {_sorted_dumps(before['params'])}, "
                f"now {name!r} params {_sorted_dumps(after['params'])}")
        logger.warning("run %s: %s", x.run_id, what)
        entry = {"level": "WARN", "message": f"replay mismatch: {what}", "at": warning["at"],
                 "data": {"key": key, "recorded": before, "now": after}}
        x.write(lambda: x.store.record_replay_warning(x.run_id, idem, dumps(warning),
                                                      MAX_REPLAY_WARNINGS, dumps(entry)))
        if self.strict:
            self.fatal = NonDeterminismError(
                f"{what}; the job's code must make the same calls, in the same order, on every "
                "execution of a run (strict replay)")
            raise self.fatal

    def stop_error(self, new_rec: TaskRecord | None) -> NonDeterminismError | None:
        """Why the execution must fail instead of suspending, or ``None``: strict replay already
        failed it, or :data:`MAX_FRUITLESS_RESUMES` pending records were left unreached.
        ``new_rec`` is the record the execution suspends on when it is new."""
        if self.fatal is not None:
            return self.fatal
        x = self.x
        seen = x._seen
        if len(x.tasks) < MAX_FRUITLESS_RESUMES:
            return None
        orphans: list[dict[str, Any]] = []
        for idem, raw in x.tasks.items():
            if idem in seen:
                continue
            rec = raw if isinstance(raw, dict) else json.loads(raw)
            if rec.get("status") not in _FINISHED:
                orphans.append(rec)
        if len(orphans) < MAX_FRUITLESS_RESUMES:
            return None
        orphans.sort(key=lambda r: r.get("created_at") or 0)
        keys = [str(r.get("key")) for r in orphans]
        if new_rec is not None and new_rec.get("key"):
            keys.append(str(new_rec["key"]))
        prefix = os.path.commonprefix(keys)
        pattern = f" (pattern {prefix + '…'!r})" if prefix and prefix not in keys else ""
        kinds = sorted({str(r.get("kind", "task")) for r in orphans})
        shown = ", ".join(repr(k) for k in keys[:6]) + (", …" if len(keys) > 6 else "")
        return NonDeterminismError(
            f"run stopped after {len(orphans)} resumes that never reached the task or wait they "
            f"resumed for: {'/'.join(kinds)} records {shown} were each created by one "
            f"execution and never called again by the next. Their key{pattern} changes between "
            "executions (built from the time, a random number or a uuid?): build task keys "
            "from the payload or a loop index, so that every execution uses the same ones")

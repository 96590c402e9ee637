"""Idempotency keys: SHA-256 over an unambiguous encoding of (run id, parent task id, key).

Trigger.dev v2 joins the parts with ``":"``, so ``("a:b", "c")`` and ``("a", "b:c")`` collide there.
We hash a JSON array instead: each part is a quoted, escaped string (or ``null`` for no parent), so
no two different triples share an encoding.
"""

from __future__ import annotations

import hashlib
import uuid

from trigger_celery._text import json_encoder

# Built once: ``json.dumps`` with non-default options builds a new encoder on every call, and
# this runs for every task of every execution (replay included).
_encode = json_encoder(ensure_ascii=False, separators=(",", ":"))  # lone surrogates escaped


def idempotency_key(run_id: str, parent_id: str | None, key: str) -> str:
    """The task's idempotency key: 64 hex characters, stable across executions of the run."""
    return hashlib.sha256(_encode([run_id, parent_id, key]).encode()).hexdigest()


def celery_task_id(idem_key: str, attempt: int) -> str:
    """Celery task id of a dispatched task's attempt: a UUID derived from its idempotency key."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"trigger-celery:{idem_key}:{attempt}"))


def new_run_id() -> str:
    """A new run id (``run_`` + 32 hex characters)."""
    return f"run_{uuid.uuid4().hex}"

"""The Celery app of the client named by ``TRIGGER_CELERY_APP`` (``module:attr``, default
``workers.app:client``): ``celery -A trigger_celery.cli.celery_app worker``.

The CLI's ``dev``, ``worker`` and ``beat`` point Celery here, so ``--app`` may name any
``TriggerClient`` (Celery's own ``-A`` wants the Celery app object).
"""

from __future__ import annotations

from trigger_celery.cli._app import load_client

client = load_client(announce=False)  # Celery's banner names the broker
app = celery = client.celery

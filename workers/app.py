"""The Celery app workers run: ``celery -A workers.app worker`` (``beat``, ``flower`` alike).

It imports the modules that define jobs so their tasks are registered. By default those are the
examples (triage, events, cron) on the client in ``examples/app.py``; point
``TRIGGER_CELERY_APP_MODULES`` at your own (comma-separated; the first one's ``client`` serves).
"""

from __future__ import annotations

import importlib
import os

DEFAULT_MODULES = "examples.app,examples.triage,examples.events,examples.cron"

modules = os.environ.get("TRIGGER_CELERY_APP_MODULES", DEFAULT_MODULES).split(",")
_loaded = [importlib.import_module(m.strip()) for m in modules if m.strip()]

client = _loaded[0].client
app = celery = client.celery

"""The Celery app workers run: ``celery -A workers.app worker`` (``beat``, ``flower`` alike).

It imports the modules that define jobs so their tasks are registered; point
``TRIGGER_CELERY_APP_MODULES`` at your own (comma-separated) to serve other jobs.
"""

from __future__ import annotations

import importlib
import os

modules = os.environ.get("TRIGGER_CELERY_APP_MODULES", "examples.quickstart").split(",")
_loaded = [importlib.import_module(m.strip()) for m in modules if m.strip()]

client = _loaded[0].client
app = celery = client.celery

"""A read-only web UI for runs: ``trigger-celery ui`` (and ``trigger-celery dev``).

:func:`create_app` builds the ASGI app; :class:`UIServer` serves it with uvicorn.
"""

from trigger_celery.ui._server import DEFAULT_HOST, DEFAULT_PORT, UIServer, is_loopback
from trigger_celery.ui.app import create_app

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "UIServer", "create_app", "is_loopback"]

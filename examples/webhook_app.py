"""The example app: a WSGI receiver for GitHub webhooks that starts runs.

    GITHUB_WEBHOOK_SECRET=... uv run --frozen python -m examples.webhook_app   # port 8000

Point a repository webhook (content type ``application/json``) at ``http://HOST:8000/``; every
delivery's ``X-Hub-Signature-256`` is verified and ``X-GitHub-Delivery`` is the event id, so
redeliveries start no second run. Mount ``app`` in any WSGI server.
"""

from __future__ import annotations

import os

from examples.app import client
from trigger_celery_github.webhooks import make_wsgi_app

app = make_wsgi_app(secret=os.environ.get("GITHUB_WEBHOOK_SECRET", ""),
                    send_event=client.send_event)

if __name__ == "__main__":
    from werkzeug.serving import run_simple

    run_simple(os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000")), app)

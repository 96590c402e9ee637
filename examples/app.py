"""The examples' client: one TriggerClient whose Celery app ``celery -A workers.app`` serves.

The GitHub integration talks to ``EXAMPLES_GITHUB_BASE_URL`` when set (the demo points it at the
testing kit's replay server), else to https://api.github.com with ``GITHUB_TOKEN``.
"""

from __future__ import annotations

import os

from trigger_celery import TriggerClient
from trigger_celery_github import GitHub

client = TriggerClient("examples")
celery = client.celery

github = GitHub(base_url=os.environ.get("EXAMPLES_GITHUB_BASE_URL", "https://api.github.com"))

#: The repository whose ``issues.opened`` events the triage job handles (``owner/name``).
TRIAGE_REPO = os.environ.get("EXAMPLES_TRIAGE_REPO", "Codertocat/Hello-World")

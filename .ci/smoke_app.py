"""The smoke run's jobs: one job calling each integration, imported from the installed wheels.

``.ci/install-check`` copies this file into an empty folder outside the repository and runs
``trigger-celery dev -A smoke_app:client`` there, against the testing kit's replay server
(``SMOKE_BASE_URL``). Only public names are imported, as a user's app would.
"""

from __future__ import annotations

import os

from trigger_celery import TriggerClient, invoke_trigger
from trigger_celery_github import GitHub
from trigger_celery_openai import OpenAI
from trigger_celery_typeform import Typeform

BASE = os.environ.get("SMOKE_BASE_URL", "http://127.0.0.1:9")

client = TriggerClient("smoke")
celery = client.celery


@client.define_job(
    id="smoke", version="1.0.0", trigger=invoke_trigger(),
    integrations={"github": GitHub(base_url=BASE), "openai": OpenAI(base_url=f"{BASE}/v1"),
                  "typeform": Typeform(base_url=BASE)},
)
def smoke(payload: dict[str, object], io, ctx) -> dict[str, object]:
    issue = io.github.issues.create("issue", owner="octo-org", repo="hello-world", title="smoke")
    answer = io.openai.chat.completions.create(
        "chat", model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    form = io.typeform.forms.get("form", uid="smoke1")
    io.wait("pause", seconds=1)
    echo = io.run_task("echo", lambda: {"ok": True})
    return {"issue": issue["number"], "chat": answer["choices"][0]["message"]["content"],
            "form": form["title"], "echo": echo["ok"]}

"""A user's app, as the testing kit's docs show it: a job calling GitHub through the replay
server named by ``KIT_GITHUB_URL``, and one that waits a day and retries every 10 minutes
(run in seconds with the test clock)."""

import os

from trigger_celery import RetryOptions, TriggerClient, invoke_trigger
from trigger_celery_github import GitHub

client = TriggerClient("kit-user", runs_queue="kit-user")
celery = client.celery
github = GitHub(base_url=os.environ.get("KIT_GITHUB_URL", "http://127.0.0.1:9"), queue="kit-github")


@client.define_job(id="who", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"github": github})
def who(payload, io, ctx):
    return io.github.users.get_by_username("user", username=payload["user"])["login"]


@client.define_job(id="reminder", version="1.0.0", trigger=invoke_trigger())
def reminder(payload, io, ctx):
    """Waits a day, then sends a reminder through a provider that fails twice before it
    answers, retried every 10 minutes (the testing kit's time-skipping example)."""
    io.wait("a-day-later", seconds=24 * 3600)

    def send(task):
        if task.attempts < 3:
            raise RuntimeError(f"provider unavailable (attempt {task.attempts})")
        return {"sent_to": payload["user"], "attempt": task.attempts}

    return io.run_task("send", send, retry=RetryOptions(
        limit=3, min_timeout_ms=600_000, max_timeout_ms=600_000, randomize=False))

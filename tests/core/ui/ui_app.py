"""Jobs the web UI tests watch (``celery -A tests.core.ui.ui_app worker``): one shaped like the
main example (a task with properties, a rate-limited task that runs again, logs, a wait, a last
task and an output) and one that fails."""

from __future__ import annotations

from trigger_celery import RetryOptions, TriggerClient, invoke_trigger

client = TriggerClient("ui-tests")
celery = client.celery

#: Retries quickly and predictably.
FAST = RetryOptions(limit=3, factor=1, min_timeout_ms=200, randomize=False)


@client.define_job(id="ui-triage", version="1.2.0", trigger=invoke_trigger())
def triage(payload, io, ctx):
    labels = io.run_task("label", lambda: ["bug", "triage"], name="Add labels", icon="github",
                         params={"issue": payload["issue"], "token": "s3cret"},
                         redact=["token"],
                         properties=[{"label": "issue", "text": f"#{payload['issue']}"}])
    io.logger.info("labelled", labels=labels)

    def comment(task):
        if task.attempts == 1:
            raise RuntimeError("403 rate limit exceeded")
        return {"id": 42}

    posted = io.run_task("comment", comment, name="Post comment", retry=FAST)
    io.logger.warn("cooling down", seconds=payload["seconds"])
    io.wait("cool-down", seconds=payload["seconds"])
    io.run_task("react", lambda: {"content": "+1"}, name="Add reaction")
    return {"comment_id": posted["id"], "labels": labels}


@client.define_job(id="ui-fails", version="1.0.0", trigger=invoke_trigger())
def fails(payload, io, ctx):
    io.logger.error("about to divide by zero")
    return io.run_task("explode", lambda: 1 / 0, name="Divide",
                       retry=RetryOptions(limit=2, factor=1, min_timeout_ms=100, randomize=False))

"""The smallest end-to-end run: a job with two memoized tasks, a log line and a wait.

    uv run --frozen python -m examples.quickstart

Uses ``TRIGGER_CELERY_REDIS_URL`` when set, else starts an embedded Valkey (data in
``.trigger-celery/``); starts a worker (``celery -A examples.quickstart worker -Q quickstart``),
triggers the job, waits for the run and prints its timeline.
"""

from __future__ import annotations

import os
import sys

from pydantic import BaseModel

from trigger_celery import RetryOptions, TriggerClient, invoke_trigger

client = TriggerClient("quickstart", runs_queue="quickstart")
celery = client.celery


class Greeting(BaseModel):
    name: str


@client.define_job(id="hello", name="Say hello", version="1.0.0",
                   trigger=invoke_trigger(schema=Greeting))
def hello(payload: Greeting, io, ctx):
    greeting = io.run_task("compose", lambda: f"Hello, {payload.name}!",
                           retry=RetryOptions(limit=3))
    io.logger.info("composed", greeting=greeting)
    io.wait("pause", seconds=1)
    shout = io.run_task("shout", lambda task: {"text": greeting.upper(),
                                                "attempts": task.attempts})
    return {"greeting": greeting, "shout": shout["text"]}


def main() -> int:
    from trigger_celery.cli import local_stack, print_timeline

    with local_stack("examples.quickstart", queues="quickstart"):
        from examples.quickstart import client  # built now that the Redis URL is known

        handle = client.trigger("hello", {"name": "trigger-celery"})
        print(f"triggered run {handle.id}; waiting for it")
        output = handle.result(timeout=60)
        print_timeline(client.get_run(handle.id))
        print(f"output: {output}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", os.getcwd())
    sys.exit(main())

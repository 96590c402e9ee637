"""Jobs for the CLI and Flower tests (``celery -A tests.cli_app worker``), on their own runs
queue so they never meet tests/app.py's workers.

``Echo`` is a tiny integration (no HTTP) whose credential comes from ``ECHO_TOKEN``: its one
operation, ``echo.messages.send``, is dispatched as its own Celery task like GitHub's.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from tests.cluster import side_client
from trigger_celery import (
    NonRetriableError,
    OnErrorResult,
    RetryOptions,
    TriggerClient,
    event_trigger,
    invoke_trigger,
)
from trigger_celery.integration import Integration, Namespace, TaskInfo, operation

# Its own queue and key prefix: a worker's poller sends every due wake-up under its prefix to its
# own runs queue, so apps sharing a store must not share a prefix. The dev tests run this app
# under `trigger-celery dev` with yet another queue and prefix, away from the module's worker.
client = TriggerClient(
    "cli-tests", runs_queue=os.environ.get("CLI_TESTS_QUEUE", "cli-tests"),
    key_prefix=os.environ.get("TRIGGER_CELERY_KEY_PREFIX", "tccli"),
)
celery = client.celery
side = side_client(client.settings.redis_url, client.settings.redis_cluster)


class Greeting(BaseModel):
    name: str


class SendMessage(BaseModel):
    channel: str
    text: str


class Messages(Namespace):
    name = "messages"

    @operation(params=SendMessage, display="Send {text} to {channel}",
               properties=lambda p: [{"label": "Channel", "text": p.channel}])
    def send(client: str, params: SendMessage, task: TaskInfo) -> dict:
        # The credential is used (so a missing one fails) but never returned.
        if params.text.startswith("flaky") and task.attempts == 1:
            raise RuntimeError("echo hiccup")  # retried 0.2 s later (Echo.retry)
        if params.text.startswith("later") and task.attempts == 1:
            raise RuntimeError("later please")  # deferred 10 minutes by Echo.on_error
        return {"sent": params.text, "channel": params.channel, "authenticated": bool(client)}


class Echo(Integration):
    id = "echo"
    icon = "echo"
    namespaces = (Messages,)
    credential_env = "ECHO_TOKEN"
    retry = RetryOptions(limit=2, min_timeout_ms=200, randomize=False)

    def create_client(self, credential: str) -> str:
        return credential

    def on_error(self, error, task, io):
        if "later please" in str(error):
            return OnErrorResult(retry_at=datetime.now(UTC) + timedelta(minutes=10))
        return None


echo = Echo()


@client.define_job(id="greet", version="1.0.0", trigger=invoke_trigger(schema=Greeting))
def greet(payload: Greeting, io, ctx):
    text = io.run_task("compose", lambda: f"Hello, {payload.name}!",
                       properties=[{"label": "Who", "text": payload.name}])
    io.logger.info("composed", text=text)
    io.wait("pause", seconds=0.5)
    return {"text": text}


@client.define_job(id="sleepy", version="1.0.0", trigger=invoke_trigger())
def sleepy(payload, io, ctx):
    io.wait("long-nap", seconds=payload.get("seconds", 600))
    return {"woke": True}


@client.define_job(id="gated", version="1.0.0", trigger=invoke_trigger())
def gated(payload, io, ctx):
    """Fails for good until ``side:<tag>:open`` is set; then ``reset-task`` lets it pass."""
    tag = payload["tag"]

    def check():
        side.incr(f"side:{tag}:calls")
        if not side.get(f"side:{tag}:open"):
            raise NonRetriableError(f"gate {tag} is closed")
        return "through"

    return {"gate": io.run_task("gate", check)}


@client.define_job(id="pinged", version="1.0.0", trigger=event_trigger("cli.ping"))
def pinged(payload, io, ctx):
    return {"pong": payload.get("n"), "event": ctx.event_id}


@client.define_job(id="notify", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"echo": echo})
def notify(payload, io, ctx):
    return io.echo.messages.send("send", channel=payload["channel"], text=payload["text"])


@client.define_job(id="flaky", version="1.0.0", trigger=invoke_trigger())
def flaky(payload, io, ctx):
    """Its task fails on the first attempt and succeeds on the second (0.2 s later)."""

    def call(task):
        if task.attempts == 1:
            raise RuntimeError("provider hiccup")
        return "ok"

    return {"call": io.run_task("call", call, retry=RetryOptions(
        limit=2, min_timeout_ms=200, randomize=False))}


@client.define_job(id="slowpoke", version="1.0.0", trigger=invoke_trigger())
def slowpoke(payload, io, ctx):
    """A slow inline task, then a second one that counts its calls in ``side:<tag>:after``."""
    tag = payload["tag"]
    io.run_task("slow", lambda: time.sleep(payload.get("seconds", 3)) or "slept",
                properties=[{"label": "Tag", "text": tag}])
    return io.run_task("after", lambda: side.incr(f"side:{tag}:after"))


@client.define_job(id="backoff", version="1.0.0", trigger=invoke_trigger())
def backoff(payload, io, ctx):
    """Its task fails once, then waits 10 minutes to retry (unless someone says retry-now)."""

    def call(task):
        if task.attempts == 1:
            raise RuntimeError("try later")
        return task.attempts

    return {"attempts": io.run_task("call", call, retry=RetryOptions(
        limit=2, min_timeout_ms=600_000, max_timeout_ms=600_000, randomize=False))}

"""The chaos suite's jobs plus ones that carry odd text and run ``async`` callbacks
(``celery -A tests.chaos.odd_app worker``).

GitHub and OpenAI answer from the test's local :class:`~trigger_celery.testing.ReplayServer`
(``CHAOS_REPLAY_URL``).
"""

from __future__ import annotations

import os
from typing import Any

from tests.chaos.app import build
from trigger_celery import RetryOptions, event_trigger, invoke_trigger
from trigger_celery_github import GitHub
from trigger_celery_openai import OpenAI

REPLAY = os.environ.get("CHAOS_REPLAY_URL", "http://127.0.0.1:9")

client = build()
celery = client.celery
sidefx = client.integrations["sidefx"]  # the chaos app's effect-server integration
github = GitHub(base_url=REPLAY, credential="ghp_odd", queue="chaos-github")
oai = OpenAI(base_url=f"{REPLAY}/v1", credential="sk-odd", queue="chaos-openai")
#: A task that fails deterministically must run once, not ``limit`` times.
THREE = RetryOptions(limit=3, min_timeout_ms=100, factor=1, randomize=False)


@client.define_job(id="odd-echo", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"github": github, "sidefx": sidefx})
def odd_echo(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
    """The text travels through an inline task's output, a log line, a dispatched task's API
    answer (the effect server echoes it), an event and the run's output."""
    text = payload["text"]
    inline = io.run_task("inline", lambda: {"text": text}, params={"text": text})
    io.logger.info(text, text=text)
    io.run_task(text, lambda: 1)  # the text as a task key
    op = io.sidefx.effects.post("op", tag=text, task="op")
    issue = io.github.issues.get("issue", owner="octo", repo="hello", issue_number=1)
    started = io.send_event("event", "chaos.odd", {"text": text})
    return {"text": text, "inline": inline["text"], "op": op["tag"], "title": issue["title"],
            "events": len(started)}


@client.define_job(id="odd-event", version="1.0.0", trigger=event_trigger("chaos.odd"))
def odd_event(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
    return io.run_task("echo", lambda: payload["text"])


@client.define_job(id="odd-encode", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"openai": oai})
def odd_encode(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
    """Text UTF-8 cannot carry, sent where it must be encoded: an inline task (``str.encode``)
    or the OpenAI SDK (its request body). Both fail once, without retries."""
    if payload["where"] == "inline":
        return io.run_task("encode", lambda: payload["text"].encode().decode(), retry=THREE)
    return io.openai.chat.completions.create(
        "ask", model="gpt-4o-mini", messages=[{"role": "user", "content": payload["text"]}])

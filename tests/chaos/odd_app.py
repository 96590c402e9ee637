"""The chaos suite's jobs plus ones that carry odd text and run ``async`` callbacks
(``celery -A tests.chaos.odd_app worker``).

GitHub and OpenAI answer from the test's local :class:`~trigger_celery.testing.ReplayServer`
(``CHAOS_REPLAY_URL``). ``ASYNC_OPENAI`` is one module-level ``openai.AsyncOpenAI`` client shared
by every ``async`` callback and hook of the worker process, as an application would keep it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import openai

from tests.chaos.app import build
from trigger_celery import OnErrorResult, RetryOptions, event_trigger, invoke_trigger
from trigger_celery_github import GitHub
from trigger_celery_openai import OpenAI

REPLAY = os.environ.get("CHAOS_REPLAY_URL", "http://127.0.0.1:9")

client = build()
celery = client.celery
sidefx = client.integrations["sidefx"]  # the chaos app's effect-server integration
github = GitHub(base_url=REPLAY, credential="ghp_odd", queue="chaos-github")
oai = OpenAI(base_url=f"{REPLAY}/v1", credential="sk-odd", queue="chaos-openai")
ASYNC_OPENAI = openai.AsyncOpenAI(base_url=f"{REPLAY}/v1", api_key="sk-odd", max_retries=0)
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


async def _ask(text: str) -> str:
    completion = await ASYNC_OPENAI.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
    await asyncio.sleep(0)
    return completion.choices[0].message.content or ""


async def _hook(error: Exception, task: Any, io: Any) -> OnErrorResult:
    """An ``async`` on_error hook that uses the shared client too (``GET /v1/models``)."""
    await ASYNC_OPENAI.models.list()
    return OnErrorResult(skip_retrying=True)


async def _fails() -> None:
    raise RuntimeError("an async callback failed")


@client.define_job(id="ask-async", version="1.0.0", trigger=invoke_trigger())
def ask_async(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
    """Two ``async`` callbacks per run on the module-level ``AsyncOpenAI`` client; with ``fail``,
    a third ``async`` callback raises and an ``async`` hook answers (after one attempt)."""
    first = io.run_task("first", lambda: _ask(payload["text"]))
    second = io.run_task("second", lambda: _ask(first))
    failed = None
    if payload.get("fail"):
        failed = io.try_(lambda: io.run_task("fails", _fails, on_error=_hook, retry=THREE),
                         lambda err: type(err).__name__)
    return [first, second, failed]


def _raise(text: str) -> None:
    raise RuntimeError(text)


@client.define_job(id="odd-terminal", version="1.0.0", trigger=invoke_trigger())
def odd_terminal(payload: dict[str, Any], io: Any, ctx: Any) -> Any:
    """The text as a task key, an output, a display property, a log line (and its data), a
    task's error and the run's output, or with ``fail`` the run's error."""
    text = payload["text"]
    io.run_task("out", lambda: {"text": text}, name=text,
                properties=[{"label": text, "text": text}])
    io.run_task(text, lambda: text)
    io.logger.warn(text, text=text)
    io.try_(lambda: io.run_task("err", lambda: _raise(text)), lambda err: None)
    if payload.get("fail"):
        _raise(text)
    return text

"""The Slack integration end to end: a job on a real ``celery worker`` process calls the real
``WebClient``, pointed at the testing kit's replay server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import Worker
from trigger_celery import RunFailedError
from trigger_celery.testing import ReplayServer

APP = "examples.integrations.slack.tests.slack_app"  # the Celery app module the worker serves
TOKEN = "xoxb-test-SECRET-0123456789"
TS = "1714564800.000100"
POSTED = {"ok": True, "channel": "C0123ABCD", "ts": TS,
          "message": {"type": "message", "text": "Deploying", "ts": TS}}
UPDATED = {"ok": True, "channel": "C0123ABCD", "ts": TS, "text": "Deploying (done)"}


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        yield replay


@pytest.fixture(scope="module")
def worker(worker_env: dict[str, str], server: ReplayServer) -> Iterator[Worker]:
    env = {**worker_env, "SLACK_BOT_TOKEN": TOKEN,
           "TESTS_SLACK_BASE_URL": f"{server.base_url}/api/"}
    w = Worker(APP, env, concurrency=2, name="slack").wait_ready()
    yield w
    w.stop()


@pytest.fixture()
def slack_jobs(store_redis: Any, worker: Worker, server: ReplayServer) -> Any:
    from examples.integrations.slack.tests.slack_app import client

    server.clear()
    return client


def test_post_then_update_through_a_worker(slack_jobs: Any, server: ReplayServer) -> None:
    server.add("POST", "/api/chat.postMessage", body=POSTED)
    server.add("POST", "/api/chat.update", body=UPDATED)
    handle = slack_jobs.trigger("slack-announce", {"channel": "C0123ABCD", "text": "Deploying"})
    assert handle.result(timeout=30) == TS
    post, update = server.requests
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    assert post.json() == {"channel": "C0123ABCD", "text": "Deploying"}
    assert update.json() == {"channel": "C0123ABCD", "ts": TS, "text": "Deploying (done)"}
    run = handle.get()
    task = run.task("post")
    assert (task.name, task.kind, task.output) == ("slack.chat.post_message", "dispatched",
                                                   POSTED)
    assert {"label": "Message ts", "text": TS} in task.properties
    assert TOKEN not in run.model_dump_json()


def test_429_is_retried_after_retry_after_seconds(slack_jobs: Any, server: ReplayServer) -> None:
    server.add("POST", "/api/chat.postMessage", status=429,
               body={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "1"})
    server.add("POST", "/api/chat.postMessage", body=POSTED)
    server.add("POST", "/api/chat.update", body=UPDATED)
    handle = slack_jobs.trigger("slack-announce", {"channel": "C0123ABCD", "text": "Deploying"})
    assert handle.result(timeout=30) == TS
    first, second, _update = server.requests
    assert second.at - first.at >= 0.9                  # not before Retry-After (1 s) is over
    task = handle.get().task("post")
    assert task.deferrals == 1
    (error,) = task.errors
    assert error["type"] == "SlackApiError" and "'error': 'ratelimited'" in error["message"]


def test_channel_not_found_fails_the_run_without_retrying(slack_jobs: Any,
                                                          server: ReplayServer) -> None:
    server.add("POST", "/api/chat.postMessage", body={"ok": False, "error": "channel_not_found"})
    handle = slack_jobs.trigger("slack-announce", {"channel": "C0NOPE", "text": "Deploying"})
    with pytest.raises(RunFailedError) as info:
        handle.result(timeout=30)
    task = info.value.run.task("post")
    assert task.status == "ERRORED" and task.attempts == 1
    assert "channel_not_found" in task.error["message"]
    assert len(server.requests) == 1

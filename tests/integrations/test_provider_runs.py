"""OpenAI and Typeform tasks through the engine, against a local HTTP server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support import Worker
from trigger_celery import RunFailedError

APP = "tests.integrations.providers_app"  # the Celery app module the test workers serve

API_KEY = "sk-test-SECRETKEY0123456789"
COMPLETIONS = "/v1/chat/completions"


def completion(text: str) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}


@pytest.fixture(scope="module")
def server(make_httpserver: HTTPServer) -> HTTPServer:
    return make_httpserver


@pytest.fixture(scope="module")
def env(worker_env: dict[str, str], server: HTTPServer) -> dict[str, str]:
    base = server.url_for("/").rstrip("/")
    return {**worker_env, "OPENAI_API_KEY": API_KEY, "TYPEFORM_TOKEN": "tfp_SECRET",
            "TESTS_OPENAI_BASE_URL": f"{base}/v1", "TESTS_TYPEFORM_BASE_URL": base}


@pytest.fixture(scope="module")
def worker(env: dict[str, str]) -> Iterator[Worker]:
    w = Worker(APP, env, concurrency=2, name="providers").wait_ready()
    yield w
    w.stop()


@pytest.fixture()
def providers(store_redis, worker, server: HTTPServer):
    from tests.integrations.providers_app import client

    server.clear()
    return client


def test_chat_completion_sends_the_idempotency_key_and_records_usage(providers, server):
    server.expect_oneshot_request(COMPLETIONS, method="POST").respond_with_json(
        completion("Short."), headers={"x-ratelimit-remaining-requests": "59",
                                       "x-ratelimit-reset-requests": "1s"})
    handle = providers.trigger("summarize", {"text": "A long text."})
    assert handle.result(timeout=30) == "Short."
    (req, _), = server.log
    assert req.json["messages"] == [{"role": "user", "content": "A long text."}]
    task = providers.get_run(handle.id).task("summarize")
    assert req.headers["Idempotency-Key"] == task.idem
    assert req.headers["Authorization"] == f"Bearer {API_KEY}"
    shown = {p["label"]: p["text"] for p in task.properties}
    assert "12" in " ".join(shown.values())  # total tokens among the properties


def test_429_with_exhausted_requests_schedules_the_attempt_at_the_reset(providers, server):
    server.expect_oneshot_request(COMPLETIONS, method="POST").respond_with_json(
        {"error": {"message": "Rate limit reached for requests", "type": "requests",
                   "code": "rate_limit_exceeded", "param": None}}, status=429,
        headers={"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s",
                 "x-ratelimit-remaining-tokens": "1000", "x-ratelimit-reset-tokens": "1s"})
    handle = providers.trigger("summarize", {"text": "hi"})
    deadline = time.time() + 20
    run = handle.get()
    while not (run.status == "WAITING" and run.wake_at):
        assert time.time() < deadline, run
        time.sleep(0.05)
        run = handle.get()
    sent_at = run.task("summarize").errors[0]["at"]
    assert run.wake_at - sent_at == pytest.approx(360, abs=2)  # read back, not waited for
    assert run.task("summarize").retry_at == run.wake_at
    assert len(server.log) == 1
    providers.cancel_run(handle.id)


def test_insufficient_quota_fails_the_run_without_retry(providers, server):
    server.expect_request(COMPLETIONS, method="POST").respond_with_json(
        {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                   "code": "insufficient_quota", "param": None}}, status=429)
    with pytest.raises(RunFailedError) as info:
        providers.trigger("summarize", {"text": "hi"}).result(timeout=30)
    task = info.value.run.task("summarize")
    assert task.status == "ERRORED" and task.attempts == 1
    assert len(server.log) == 1


def _pages(server: HTTPServer, uid: str, tokens: list[str], size: int, gate=None) -> list:
    """Serve ``tokens`` newest first in pages of ``size`` with Typeform's ``before`` cursor."""
    seen: list[str | None] = []

    def handler(request: Request) -> Response:
        before = request.args.get("before")
        seen.append(before)
        start = tokens.index(before) + 1 if before else 0
        if gate is not None and before:
            gate(before)
        items = [{"token": t, "response_id": t, "answers": []} for t in tokens[start:start + size]]
        return Response(
            __import__("json").dumps({"total_items": len(tokens), "page_count": 3,
                                      "items": items}),
            content_type="application/json")

    server.expect_request(f"/forms/{uid}/responses").respond_with_handler(handler)
    return seen


def test_responses_all_makes_one_subtask_per_page(providers, server):
    tokens = [f"r{i}" for i in range(7)]
    seen = _pages(server, "frm1", tokens, 3)
    handle = providers.trigger("all-responses", {"uid": "frm1", "page_size": 3})
    assert handle.result(timeout=30) == tokens
    assert seen == [None, "r2", "r5"]
    run = handle.get()
    parent = run.task("responses")
    pages = [t for t in run.tasks if t.parent == parent.idem]
    assert [(t.key, t.name) for t in pages] == [
        ("page-0", "typeform.responses.list"), ("page-1", "typeform.responses.list"),
        ("page-2", "typeform.responses.list")]


def test_responses_all_after_a_worker_kill_does_not_refetch_completed_pages(
        providers, server, worker, start_worker, env):
    tokens = [f"t{i}" for i in range(7)]
    in_page_2 = threading.Event()
    release = threading.Event()

    def gate(before: str) -> None:
        if before == "t5":  # the third page: the worker is killed while it waits here
            in_page_2.set()
            release.wait(30)

    seen = _pages(server, "frm2", tokens, 3, gate=gate)
    handle = providers.trigger("all-responses", {"uid": "frm2", "page_size": 3})
    assert in_page_2.wait(20)
    worker.kill()
    release.set()
    start_worker(APP, name="providers-2",
                 **{k: v for k, v in env.items() if k.startswith(("OPENAI", "TYPEFORM", "TESTS"))})
    assert handle.result(timeout=60) == tokens
    assert seen.count(None) == 1 and seen.count("t2") == 1  # completed pages: fetched once
    assert seen.count("t5") == 2  # the page in flight at the kill ran again, once

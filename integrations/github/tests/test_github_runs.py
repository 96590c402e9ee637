"""GitHub tasks through the engine: real workers, real PyGithub, a local replay server.

Rate-limit answers make the task run again at the provider's reset time (not before) while the
worker serves other runs; the token never reaches Redis, messages or logs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest

from tests.scan import redis_values
from tests.support import SHARED_FIXTURES, Worker
from trigger_celery import RunFailedError
from trigger_celery.testing.replay import ReplayServer

APP = "integrations.github.tests.github_app"  # the Celery app module the test workers serve

TOKEN = "ghp_TESTtoken0123456789abcdefSECRET"
ISSUES = "/repos/octo/hello/issues"


def issue_body(number: int = 1347, title: str = "Found a bug") -> dict:
    return {"id": 1, "number": number, "title": title, "state": "open",
            "url": f"https://api.github.com{ISSUES}/{number}",
            "html_url": f"https://github.com/octo/hello/issues/{number}",
            "user": {"login": "octocat", "id": 1}, "labels": [], "body": None}


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@pytest.fixture(scope="module")
def gh_env(worker_env: dict[str, str], replay: ReplayServer) -> dict[str, str]:
    return {**worker_env, "GITHUB_TOKEN": TOKEN, "TESTS_GITHUB_BASE_URL": replay.base_url,
            "TESTS_GITHUB_SECONDARY_FLOOR_S": "1.5", "TESTS_CAPTURE_MESSAGES": "1"}


@pytest.fixture(scope="module")
def gh_worker(gh_env: dict[str, str]) -> Iterator[Worker]:
    """One worker process (concurrency 1) serving both the runs queue and the github queue."""
    w = Worker(APP, gh_env, concurrency=1, name="github").wait_ready()
    yield w
    w.stop()


@pytest.fixture()
def gh(store_redis, gh_worker, replay):
    from integrations.github.tests.github_app import client

    replay.clear()
    return client


def posts(replay: ReplayServer) -> list:
    return [r for r in replay.requests if r.method == "POST" and r.path == ISSUES]


def rate_limited_then_created(gh, replay, **limited) -> tuple[float, float, float, object]:
    """Queue a rate-limited answer then a 201; run the job and another one meanwhile.

    Returns (first attempt time, second attempt time, time the other run was served, the
    rate-limited exchange)."""
    limited_ex = replay.add("POST", ISSUES, **limited)
    replay.add("POST", ISSUES, status=201, body=issue_body())
    handle = gh.trigger("create-issue", {"title": "Found a bug"})
    deadline = time.time() + 10
    while not posts(replay):
        assert time.time() < deadline
        time.sleep(0.02)
    other = gh.trigger("quick", {})
    served = other.result(timeout=10)["t"]
    assert handle.result(timeout=60) == {"number": 1347, "title": "Found a bug"}
    first, second = posts(replay)
    assert len(posts(replay)) == 2  # one issue created: one 201, no third POST
    assert json.loads(second.body) == {"title": "Found a bug"}
    return first.at, second.at, served, limited_ex


def test_403_primary_limit_retries_at_the_reset_time(gh, replay):
    reset_in = 3.0
    first, second, served, limited = rate_limited_then_created(
        gh, replay, status=403, reset_in=reset_in,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-limit": "5000"},
        body={"message": "API rate limit exceeded for user ID 1.",
              "documentation_url": "https://docs.github.com/rest/overview/rate-limits"})
    reset = int(limited.header("x-ratelimit-reset"))
    assert second >= reset  # not before the reset
    assert second - reset < 3  # and promptly after it
    assert first < served < second  # the one worker process served another run meanwhile


def test_429_with_retry_after(gh, replay):
    first, second, served, _ = rate_limited_then_created(
        gh, replay, status=429, headers={"retry-after": "2"},
        body={"message": "Too many requests"})
    assert second - first >= 2
    assert first < served < second


def test_secondary_limit_without_headers_waits_its_floor(gh, replay):
    first, second, served, _ = rate_limited_then_created(
        gh, replay, status=403,
        body={"message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                         "before you try again."})
    assert second - first >= 1.5  # TESTS_GITHUB_SECONDARY_FLOOR_S, GitHub's 60 s lowered
    assert first < served < second


def test_primary_limit_without_reset_header_backs_off(gh, replay):
    first, second, _, _ = rate_limited_then_created(
        gh, replay, status=403, headers={"x-ratelimit-remaining": "0"},
        body={"message": "API rate limit exceeded for 1.2.3.4."})
    assert second - first >= 0.5  # standard_backoff's first delay: 500 ms x [1, 2)


def test_rate_limited_task_is_recorded_with_its_attempts(gh, replay):
    replay.add("POST", ISSUES, status=429, headers={"retry-after": "1"},
               body={"message": "slow down"})
    replay.add("POST", ISSUES, status=201, body=issue_body(7, "x"))
    handle = gh.trigger("create-issue", {"title": "x"})
    handle.result(timeout=30)
    task = gh.get_run(handle.id).task("create")
    assert task.name == "github.issues.create" and task.kind == "dispatched"
    assert task.attempts == 2 and task.deferrals == 1
    assert task.errors[0]["status"] == 429
    assert {"label": "Repo", "text": "octo/hello"} in task.properties
    assert task.output["number"] == 7


@pytest.mark.parametrize("status", [401, 404, 422])
def test_client_errors_fail_without_retry(gh, replay, status):
    replay.add("POST", ISSUES, status=status, body={"message": f"error {status}"})
    with pytest.raises(RunFailedError) as info:
        gh.trigger("create-issue", {"title": "no"}).result(timeout=30)
    task = info.value.run.task("create")
    assert task.status == "ERRORED" and task.attempts == 1
    assert task.error["status"] == status
    assert len(posts(replay)) == 1


def test_bad_params_fail_before_any_http(gh, replay):
    with pytest.raises(RunFailedError) as info:
        gh.trigger("create-issue", {"title": ""}).result(timeout=30)
    assert "github.issues.create: invalid params: title" in info.value.run.error["message"]
    assert replay.requests == []


def test_compound_task_has_two_subtasks(gh, replay):
    replay.add("POST", f"{ISSUES}/1/comments", status=201,
               body={"id": 555, "body": "Thanks!", "user": {"login": "octocat"},
                     "url": "https://api.github.com/repos/octo/hello/issues/comments/555"})
    replay.add("POST", "/repos/octo/hello/issues/comments/555/reactions", status=201,
               body={"id": 9, "content": "heart", "user": {"login": "octocat"}})
    out = gh.trigger("comment-react", {}).result(timeout=30)
    assert out["comment"]["id"] == 555 and out["reaction"]["content"] == "heart"
    run = gh.get_run(gh.list_runs(job_id="comment-react")[0].id)
    parent = run.task("comment-react")
    assert parent.name == "github.issues.create_comment_with_reaction"
    children = [t for t in run.tasks if t.parent == parent.idem]
    assert [(t.key, t.name) for t in children] == [
        ("comment", "github.issues.create_comment"),
        ("reaction", "github.reactions.create_for_issue_comment")]
    assert [json.loads(r.body) for r in replay.requests] == [{"body": "Thanks!"},
                                                              {"content": "heart"}]


def test_integration_run_task_hands_the_authenticated_client(gh, replay):
    replay.add("GET", "/users/octocat", body={"login": "octocat", "id": 1})
    assert gh.trigger("sdk-client", {"user": "octocat"}).result(timeout=30) == {
        "login": "octocat", "attempts": 1}
    (req,) = replay.requests
    assert req.headers.get("authorization") == f"token {TOKEN}"


def test_webhook_deliveries_start_the_job_once_and_bad_signatures_nothing(gh, replay):
    from trigger_celery_github.webhooks import WebhookRejected, handle_webhook

    path = SHARED_FIXTURES / "github" / "webhooks" / "issues" / "opened.payload.json"
    if not path.exists():
        pytest.skip(f"{path} not present (CI has it)")
    body = path.read_bytes()
    secret = "webhook-test-secret"
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1",
               "X-Hub-Signature-256": sig, "Content-Type": "application/json"}
    replay.add("POST", "/repos/Codertocat/Hello-World/issues/1/labels", body=[{"name": "triage"}])
    for _ in range(2):  # GitHub redelivers: same X-GitHub-Delivery
        handle_webhook(headers, body, secret=secret, send_event=gh.send_event)
    for bad in ({**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64},
                {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}):
        with pytest.raises(WebhookRejected):
            handle_webhook({**bad, "X-GitHub-Delivery": "d-2"}, body, secret=secret,
                           send_event=gh.send_event)
    (run,) = gh.list_runs(job_id="triage")
    assert gh.get_run(run.id).event_id == "d-1"
    assert gh.trigger  # the app can still enqueue
    handle = gh.send_event("github.issues.opened", json.loads(body), id="d-1")[0]
    assert handle.result(timeout=30) == {"labeled": 1, "delivery": "d-1"}
    assert len(replay.requests) == 1


def test_token_is_nowhere_in_redis_messages_or_logs(gh, replay, gh_worker, urls):
    replay.add("POST", ISSUES, status=201, body=issue_body())
    gh.trigger("create-issue", {"title": "scan"}).result(timeout=30)
    assert replay.requests[0].headers.get("authorization") == f"token {TOKEN}"
    captured = 0
    for url in (urls["store"], urls["broker"]):
        for key, value in redis_values(url):
            assert TOKEN.encode() not in value, key
            captured += key == b"captured:messages"
    # the task's message was captured and scanned (the run's resume usually needs no message:
    # the task's process continues it in place, continue_in_place)
    assert captured >= 1
    assert TOKEN not in gh_worker.output()


def test_cancel_stops_a_dispatched_task_that_is_retrying(gh, replay):
    for _ in range(5):
        replay.add("POST", ISSUES, status=429, headers={"retry-after": "1"},
                   body={"message": "slow down"})
    handle = gh.trigger("create-issue", {"title": "never"})
    deadline = time.time() + 10
    while not posts(replay):
        assert time.time() < deadline
        time.sleep(0.02)
    assert gh.cancel_run(handle.id) == "CANCELED"
    time.sleep(3.5)  # past two more retry-after windows
    assert len(posts(replay)) == 1  # nothing more reached the provider after the cancel

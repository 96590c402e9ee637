"""Rate limits enforced before dispatch, shared by every worker process: real workers, real
PyGithub, the local replay server (see ``trigger_celery._ratelimit``).

GitHub's secondary limit on content-creating requests (80 per minute per token) is scaled to
``LIMIT`` per ``PERIOD_S`` seconds; the server's own request timestamps show what a provider
counting calls would have seen.
"""

from __future__ import annotations

import hashlib
import io as stdio
import json
import time
from collections.abc import Iterator

import pytest
from rich.console import Console

from tests.support import Worker
from trigger_celery.cli._timeline import print_timeline
from trigger_celery.testing.replay import ReplayServer

APP = "integrations.github.tests.ratelimit_app"
TOKEN = "ghp_RATEtoken0123456789abcdefSECRET"
LIMIT, PERIOD_S = 5, 5.0
RUNS, COMMENTS = 20, 3  # 60 comments: 12 windows of 5 s
COMMENTS_PATH = "/repos/octo/hello/issues/1/comments"


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@pytest.fixture(scope="module")
def rl_workers(worker_env: dict[str, str], replay: ReplayServer) -> Iterator[list[Worker]]:
    """Two worker processes (two pool processes each) sharing the limit through Redis."""
    env = {**worker_env, "GITHUB_TOKEN": TOKEN, "TESTS_GITHUB_BASE_URL": replay.base_url,
           "TESTS_RL_LIMIT": str(LIMIT), "TESTS_RL_PERIOD_S": str(PERIOD_S)}
    workers = [Worker(APP, env, concurrency=2, name=f"rl-{i}") for i in range(2)]
    for w in workers:
        w.wait_ready()
    yield workers
    for w in workers:
        w.stop()


@pytest.fixture()
def rl(store_redis, rl_workers, replay):
    from integrations.github.tests.ratelimit_app import client

    replay.clear()
    return client


def comment_body(n: int) -> dict:
    return {"id": 1000 + n, "body": "ok", "user": {"login": "octocat"},
            "url": f"https://api.github.com/repos/octo/hello/issues/comments/{1000 + n}"}


def timeline(run) -> str:
    out = stdio.StringIO()
    print_timeline(run, Console(file=out, width=300, color_system=None))
    return out.getvalue()


def max_in_window(times: list[float], period: float) -> int:
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u < t + period) for i, t in enumerate(times))


def test_comments_from_many_runs_keep_the_limit_with_no_rate_limit_answer(rl, replay):
    for n in range(RUNS * COMMENTS):
        replay.add("POST", COMMENTS_PATH, status=201, body=comment_body(n))
    handles = [rl.trigger("comments", {"n": COMMENTS, "tag": f"run-{r}"}) for r in range(RUNS)]
    shown = ""
    deadline = time.time() + 150
    while time.time() < deadline and not shown:
        for h in handles[-5:]:
            run = rl.get_run(h.id)
            if any(t.status == "WAITING" and t.rate_limited_until for t in run.tasks):
                shown = timeline(run)
                break
        time.sleep(0.3)
    outputs = [h.result(timeout=max(1.0, deadline - time.time())) for h in handles]
    assert all(len(o) == COMMENTS for o in outputs)
    assert "waiting for the github rate limit until" in shown, shown

    posts = [r for r in replay.requests if r.method == "POST"]
    assert len(posts) == RUNS * COMMENTS and replay.unexpected == []
    assert {json.loads(r.body)["body"] for r in posts} == {
        f"run-{r} #{i}" for r in range(RUNS) for i in range(COMMENTS)}
    # no call was answered by a rate limit, and none used an attempt to wait
    tasks = [t for h in handles for t in rl.get_run(h.id).tasks]
    assert all(t.attempts == 1 and not t.errors and t.status == "COMPLETED" for t in tasks)
    assert sum(t.rate_limit_waits for t in tasks) > 0
    # what GitHub would have counted: never more than LIMIT calls in any PERIOD_S window ...
    times = sorted(r.at for r in posts)
    assert max_in_window(times, PERIOD_S) == LIMIT
    # ... and the limit used: calls in whole windows from the first call, within 5 %
    windows = int((times[-1] - times[0]) // PERIOD_S)
    counted = sum(1 for t in times if t < times[0] + windows * PERIOD_S)
    rate = counted / (windows * PERIOD_S)
    assert abs(rate - LIMIT / PERIOD_S) <= 0.05 * LIMIT / PERIOD_S, (
        rate, windows, [round(t - times[0], 3) for t in times])


def test_remaining_zero_holds_every_workers_calls_until_the_reset(rl, replay, store_redis):
    """A 200 saying ``x-ratelimit-remaining: 0`` closes the token's calls until its reset for
    every worker process; the held call waits without using an attempt."""
    reset = replay.add("GET", "/repos/octo/hello/issues/1", reset_in=3.0,
                       headers={"x-ratelimit-remaining": "0", "x-ratelimit-limit": "5000"},
                       body={"number": 1, "title": "t", "state": "open", "id": 1,
                             "url": "https://api.github.com/repos/octo/hello/issues/1"})
    replay.add("POST", COMMENTS_PATH, status=201, body=comment_body(1))
    handle = rl.trigger("read-then-comment", {})
    assert handle.result(timeout=30) == [1, 1001]
    reset_at = int(reset.header("x-ratelimit-reset") or 0)
    get, post = replay.requests
    assert post.at >= reset_at and post.at - reset_at < 3  # not before the reset, soon after
    task = rl.get_run(handle.id).task("comment")
    assert task.attempts == 1 and task.rate_limit_waits >= 1 and not task.errors
    # keyed by the connection and a hash of the token, never the token (the closed key expired
    # at the reset; the log of the comment's limit is left)
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()[:16]
    keys = list(store_redis.scan_iter("*ratelimit*"))
    assert keys and all(f"{{github:{digest}}}" in k and TOKEN not in k for k in keys), keys


def test_job_limit_holds_its_calls_across_runs(rl, replay):
    issue = {"number": 1, "title": "t", "state": "open", "id": 1,
             "url": "https://api.github.com/repos/octo/hello/issues/1"}
    for _ in range(6):
        replay.add("GET", "/repos/octo/hello/issues/1", body=issue)
    handles = [rl.trigger("limited-reads", {}) for _ in range(3)]
    assert [h.result(timeout=60) for h in handles] == [[1, 1]] * 3
    times = [r.at for r in replay.requests]
    assert len(times) == 6 and max_in_window(times, 2.0) == 2
    tasks = [t for h in handles for t in rl.get_run(h.id).tasks]
    assert all(t.attempts == 1 for t in tasks) and sum(t.rate_limit_waits for t in tasks) > 0
    assert all(t.params_hash for t in tasks)  # dispatched records keep their params' hash


def test_worker_without_the_token_fails_the_task_instead_of_gating_it(rl, replay):
    from trigger_celery import RunFailedError

    with pytest.raises(RunFailedError) as info:
        rl.trigger("no-token", {}).result(timeout=20)
    task = info.value.run.task("comment")
    assert task.status == "ERRORED" and task.error["type"] == "ConfigurationError"
    assert "GITHUB_TOKEN_NOKEY" in task.error["message"] and replay.requests == []


def test_wait_beyond_the_eta_window_is_sent_by_the_run_at_its_slot(
        rl, replay, start_worker, worker_env):
    start_worker(f"{APP}:short_celery", concurrency=1, name="rl-short", GITHUB_TOKEN=TOKEN,
                 TESTS_GITHUB_BASE_URL=replay.base_url)
    from integrations.github.tests.ratelimit_app import short

    for n in range(2):
        replay.add("POST", COMMENTS_PATH, status=201, body=comment_body(n))
    handle = short.trigger("two-comments", {})
    assert handle.result(timeout=30) == [1000, 1001]
    first, second = (r.at for r in replay.requests)
    assert second - first >= 2.0
    run = short.get_run(handle.id)
    task = run.task("c-1")
    assert task.attempts == 1 and task.rate_limit_waits >= 1 and not task.errors
    # woken by the deferral, then by the schedule at the slot to send it: more than the three
    # executions a countdown message would have needed
    assert run.executions >= 4, run.executions

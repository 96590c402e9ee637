"""Flower (``celery -A tests.cli_app flower``) shows our tasks readably and no secrets.

A real worker (with credentials in its environment) and a real Flower process; the test reads
Flower's HTTP API as a user's dashboard would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.support import ROOT, Worker

GITHUB_TOKEN = "ghp_secretFlowerTest0123456789abcdef"
ECHO_TOKEN = "echo_secret_FlowerTest_9876"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(base: str, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(base + path, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _redis_text(r: redis.Redis) -> str:
    """Every key and value of a database as text (to search for secrets)."""
    parts = []
    for key in r.scan_iter(count=500):
        kind = r.type(key)
        if kind == "string":
            value: Any = r.get(key)
        elif kind == "hash":
            value = r.hgetall(key)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "set":
            value = r.smembers(key)
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = r.xrange(key)
        else:
            value = ""
        parts.append(f"{key} {value}")
    return "\n".join(parts)


class Monitored:
    """A worker with credentials in its environment, Flower, and one finished run."""

    def __init__(self, base: str, run_id: str, worker_name: str):
        self.base, self.run_id, self.worker_name = base, run_id, worker_name
        self.tasks: dict[str, Any] = {}
        self.retried_id = ""  # a run whose dispatched task failed once and was retried


@pytest.fixture(scope="module")
def monitored(worker_env: dict[str, str], tmp_path_factory) -> Iterator[Monitored]:
    from tests.cli_app import client

    redis.Redis.from_url(worker_env["TRIGGER_CELERY_REDIS_URL"]).flushdb()
    worker = Worker("tests.cli_app", {**worker_env, "GITHUB_TOKEN": GITHUB_TOKEN,
                                      "ECHO_TOKEN": ECHO_TOKEN}, name="flower").wait_ready()
    port = _free_port()
    log = tmp_path_factory.mktemp("flower") / "flower.log"
    env = {**worker_env, "FLOWER_UNAUTHENTICATED_API": "true"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.cli_app", "flower", f"--port={port}",
             "--address=127.0.0.1", "--persistent=False"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if _get(base, "/healthcheck")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(1)  # Flower's event consumer connects after its HTTP server
        handle = client.trigger("notify", {"channel": "#ops", "text": "deploy done"})
        assert handle.result(timeout=30)["sent"] == "deploy done"
        retried = client.trigger("notify", {"channel": "#ops", "text": "flaky deploy"})
        assert retried.result(timeout=30)["sent"] == "flaky deploy"  # its 2nd attempt
        m = Monitored(base, handle.id, worker.output().split(" ready.")[0].split()[-1])
        m.retried_id = retried.id
        deadline = time.monotonic() + 30
        while True:
            status, body = _get(base, "/api/tasks")
            m.tasks = json.loads(body) if status == 200 else {}
            finished = [t for t in m.tasks.values() if t.get("state") == "SUCCESS"]
            names = [t.get("name") for t in finished]
            if names.count("trigger-celery.run") >= 4 and names.count("echo.messages.send") >= 2:
                break
            assert time.monotonic() < deadline, (status, body[:2000], log.read_text()[-2000:])
            time.sleep(0.5)
        yield m
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        worker.stop()


def _of(m: Monitored, name: str) -> list[dict[str, Any]]:
    return [t for t in m.tasks.values() if t.get("name") == name]


def test_flower_shows_a_retried_attempt_with_its_name_and_properties(
        monitored: Monitored) -> None:
    # each attempt is a Celery task of its own (the run sends the next one when it is due,
    # eta_window_s = 0), and every one shows the display name and properties
    sends = sorted((t for t in _of(monitored, "echo.messages.send")
                    if monitored.retried_id in (t.get("kwargs") or "")),
                   key=lambda t: t["kwargs"])
    assert [("attempt=1" in t["kwargs"], "attempt=2" in t["kwargs"]) for t in sends] == [
        (True, False), (False, True)]
    for send in sends:
        assert send["args"] == "('Send flaky deploy to #ops')"
        assert "{Channel=#ops}" in send["kwargs"]
    assert sends[-1]["state"] == "SUCCESS"  # the retried attempt


def test_flower_shows_dispatched_task_with_its_properties(monitored: Monitored) -> None:
    (send,) = [t for t in _of(monitored, "echo.messages.send")
               if monitored.run_id in (t.get("kwargs") or "")]
    assert send["args"] == "('Send deploy done to #ops')"
    assert "{Channel=#ops}" in send["kwargs"]
    assert f"run={monitored.run_id}" in send["kwargs"] and "key='send'" in send["kwargs"]
    assert send["routing_key"] == "echo" and send["state"] == "SUCCESS"


def test_flower_shows_run_task_with_job_and_run_ids(monitored: Monitored) -> None:
    runs = _of(monitored, "trigger-celery.run")
    assert all(t["routing_key"] == "cli-tests" for t in runs)
    assert len(runs) >= 2  # the first message and the resumption after the dispatched task


def test_flower_shows_job_and_run_id_in_one_run_message(monitored: Monitored) -> None:
    runs = _of(monitored, "trigger-celery.run")
    assert runs
    ids = (monitored.run_id, monitored.retried_id)
    assert all(any(i in t["args"] for i in ids) and "job: notify" in t["kwargs"] for t in runs)


def test_no_secret_in_any_flower_answer_or_in_redis(monitored: Monitored,
                                                     worker_env: dict[str, str]) -> None:
    base = monitored.base
    paths = ["/api/tasks", "/api/task/types", "/api/workers", "/api/workers?refresh=1",
             "/api/queues/length", "/", "/tasks", "/workers",
             f"/worker/{monitored.worker_name}"]
    paths += [f"/api/task/info/{tid}" for tid in monitored.tasks]
    paths += [f"/task/{tid}" for tid in monitored.tasks]
    seen = []
    for path in paths:
        status, body = _get(base, path)
        assert status == 200, (path, status, body[:500])
        seen.append(body)
        for secret in (GITHUB_TOKEN, ECHO_TOKEN):
            assert secret not in body, f"{path} shows a secret"
    everything = "\n".join(seen)
    # The answers are not empty: they show the run, the task and the worker's configuration.
    assert monitored.run_id in everything and "echo.messages.send" in everything
    assert monitored.worker_name in everything and "task_acks_late" in everything
    store = _redis_text(redis.Redis.from_url(worker_env["TRIGGER_CELERY_REDIS_URL"],
                                             decode_responses=True))
    broker = _redis_text(redis.Redis.from_url(worker_env["TRIGGER_CELERY_BROKER_URL"],
                                              decode_responses=True))
    assert monitored.run_id in store and "#ops" in store  # the run's records
    for text in (store, broker):
        assert GITHUB_TOKEN not in text and ECHO_TOKEN not in text

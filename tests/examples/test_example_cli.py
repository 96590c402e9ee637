"""The CLI drives the main example with GitHub's real ``issues.opened`` webhook payload."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import ROOT, SHARED_FIXTURES
from trigger_celery.testing.replay import ReplayServer

PAYLOAD = SHARED_FIXTURES / "github" / "webhooks" / "issues" / "opened.payload.json"


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trigger_celery.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_send_event_with_the_real_payload_drives_the_triage_job(start_worker, store_redis,
                                                                worker_env):
    if not PAYLOAD.exists():
        pytest.skip(f"{PAYLOAD} not present (CI has it)")
    with ReplayServer() as replay:
        replay.load(ROOT / "examples" / "recordings" / "triage.json")
        start_worker("workers.app", name="examples", GITHUB_TOKEN="test-token",
                     EXAMPLES_GITHUB_BASE_URL=replay.base_url)
        env = {**worker_env, "TRIGGER_CELERY_APP": "workers.app:client", "COLUMNS": "200"}
        env.pop("EXAMPLES_GITHUB_BASE_URL", None)
        proc = cli("send-event", "github.issues.opened", "--payload", f"@{PAYLOAD}",
                   "--id", "delivery-1", "--wait", env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "SUCCESS" in proc.stdout
        paths = [(r.method, r.path) for r in replay.requests]
    issue = json.loads(PAYLOAD.read_text())["issue"]["number"]
    base = f"/repos/Codertocat/Hello-World/issues/{issue}"
    assert paths == [("POST", f"{base}/labels"), ("POST", f"{base}/comments"),
                     ("POST", f"{base}/comments"), ("POST", f"{base}/reactions")]


def test_runs_show_of_a_failed_run_names_the_failing_task_and_its_error(
        start_worker, store_redis, worker_env):
    with ReplayServer() as replay:
        replay.add("POST", "/repos/Codertocat/Hello-World/issues/1/labels", status=404,
                   body={"message": "Not Found"})
        start_worker("workers.app", name="examples-fail", GITHUB_TOKEN="test-token",
                     EXAMPLES_GITHUB_BASE_URL=replay.base_url)
        env = {**worker_env, "TRIGGER_CELERY_APP": "workers.app:client", "COLUMNS": "200"}
        payload = (ROOT / "examples" / "payloads" / "issue_opened.json").read_text()
        sent = cli("send-event", "github.issues.opened", "--payload", payload, "--id", "d-2",
                   "--wait", env=env)
        assert sent.returncode == 1
        from trigger_celery import TriggerClient

        (run,) = TriggerClient("examples").list_runs(job_id="issue-triage")
        shown = cli("runs", "show", run.id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "FAILURE" in shown.stdout
    assert "label" in shown.stdout and "github.issues.add_labels" in shown.stdout
    assert "404" in shown.stdout and "Not Found" in shown.stdout

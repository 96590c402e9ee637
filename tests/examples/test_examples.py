"""The README's first command: the main example runs end to end and shows the rate-limited retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import redis

from tests.support import ROOT


def run_example(env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "examples"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "rate limited: attempt 1 got 403" in out
    assert out.strip().splitlines()[-1] == (
        'output: {"issue": 1, "comment_id": 1362, "label": "triage"}')
    return out


def clean_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIGGER_CELERY_", "GITHUB"))}
    env.update(TRIGGER_CELERY_DEV_DIR=str(tmp_path), PYTHONPATH=str(ROOT), COLUMNS="200")
    return env


def test_main_example_starts_an_embedded_valkey_when_no_redis_is_configured(tmp_path):
    out = run_example(clean_env(tmp_path))
    assert "embedded Valkey at redis://127.0.0.1:" in out
    assert (tmp_path / "valkey").is_dir()  # its data stays in the local folder


def test_main_example_runs_end_to_end(redis_base, tmp_path):
    db = int(os.environ.get("TESTS_EXAMPLES_DB", "9"))
    url = f"{redis_base}/{db}"
    redis.Redis.from_url(url).flushdb()
    run_example({**clean_env(tmp_path), "TRIGGER_CELERY_REDIS_URL": url})
    r = redis.Redis.from_url(url, decode_responses=True)
    (run_key,) = [k for k in r.scan_iter("tc:run:*") if k.count(":") == 2]
    tasks = {rec["key"]: rec for rec in map(json.loads, r.hvals(run_key + ":tasks"))}
    assert [tasks[k]["status"] for k in ("label", "comment", "cool-down", "react")] == [
        "COMPLETED"] * 4
    comment = tasks["comment"]
    assert comment["attempts"] == 2 and comment["errors"][0]["status"] == 403
    assert comment["completed_at"] - comment["errors"][0]["at"] >= 2  # at the reset, not before

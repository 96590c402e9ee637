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


def test_live_mode_without_network_shows_progress_then_the_failed_run(redis_base, tmp_path):
    """No way out (every HTTPS request goes to a dead proxy): progress lines while attempts
    fail, then the run's timeline and one error line; no traceback, no minute of silence."""
    db = int(os.environ.get("TESTS_EXAMPLES_DB", "9"))
    url = f"{redis_base}/{db}"
    redis.Redis.from_url(url).flushdb()
    env = {**clean_env(tmp_path), "TRIGGER_CELERY_REDIS_URL": url, "GITHUB_TOKEN": "ghp_fake",
           "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    proc = subprocess.run([sys.executable, "-m", "examples", "--live", "--repo", "octo/hello",
                           "--issue", "1", "--timeout", "6"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in out + proc.stderr
    progress = [ln for ln in out.splitlines() if ln.startswith("  run run_")]
    assert any("label WAITING, attempt 1 failed: ProxyError" in ln and "next attempt at" in ln
               for ln in progress), out
    assert "WAITING   label · Add labels to issue #1" in out  # the timeline
    assert "attempt 1 failed after" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: run run_") and last.endswith(
        "still WAITING after 6 s (--timeout); canceled it")


def test_examples_import_only_public_names():
    """What the examples import from trigger_celery is public: no module or name with a leading
    underscore, and every name is in its module's ``__all__``."""
    import ast
    import importlib

    for path in sorted((ROOT / "examples").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "trigger_celery"):
                module = node.module or ""
                assert not any(p.startswith("_") for p in module.split(".")), (path, module)
                public = importlib.import_module(module).__all__
                for alias in node.names:
                    assert alias.name in public, (path.name, module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("trigger_celery"):
                        assert not any(p.startswith("_") for p in alias.name.split(".")), path

"""Smoke run of the installed wheels (run by ``.ci/install-check`` in a folder outside the repo).

Starts the testing kit's replay server with one answer per integration, then ``trigger-celery dev``
(embedded Valkey: no ``TRIGGER_CELERY_REDIS_URL``), triggers the ``smoke`` job with the CLI and
checks the run's output. Exits non-zero on any failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import trigger_celery
from trigger_celery.testing import ReplayServer

here = Path.cwd()
assert not Path(trigger_celery.__file__).resolve().is_relative_to(Path(os.environ["REPO"])), (
    f"trigger_celery imported from the source tree: {trigger_celery.__file__}")
bindir = Path(sys.executable).parent
env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGER_CELERY_")}

server = ReplayServer().start()
server.add("POST", "/repos/octo-org/hello-world/issues", status=201,
           body={"id": 1, "number": 1347, "title": "smoke", "state": "open"})
server.add("POST", "/v1/chat/completions", body={
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "hello"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
server.add("GET", "/forms/smoke1", body={"id": "smoke1", "title": "Smoke form", "fields": []})
env.update(SMOKE_BASE_URL=server.base_url, GITHUB_TOKEN="smoke-token",
           OPENAI_API_KEY="smoke-key", TYPEFORM_TOKEN="smoke-token",
           TRIGGER_CELERY_DEV_DIR=str(here / ".dev"), TRIGGER_CELERY_APP="smoke_app:client",
           PYTHONPATH=str(here))
dev = subprocess.Popen([str(bindir / "trigger-celery"), "dev"], env=env, cwd=here,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
try:
    deadline = time.monotonic() + 120
    while not (here / ".dev" / "redis-url").exists():
        if dev.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"dev did not start:\n{dev.stdout.read() if dev.stdout else ''}")
        time.sleep(0.2)
    time.sleep(1)
    out = subprocess.run([str(bindir / "trigger-celery"), "trigger", "smoke", "--wait",
                          "--timeout", "90"], env=env, cwd=here, capture_output=True, text=True)
    print(out.stdout, out.stderr)
    if out.returncode != 0:
        sys.exit(f"the smoke run failed (exit {out.returncode})")
    run_id = out.stdout.split()[0]
    shown = subprocess.run([str(bindir / "trigger-celery"), "runs", "show", run_id, "--json"],
                           env=env, cwd=here, capture_output=True, text=True, check=True)
    output = json.loads(shown.stdout)["output"]
    expected = {"issue": 1347, "chat": "hello", "form": "Smoke form", "echo": True}
    if output != expected:
        sys.exit(f"smoke output {output!r} != {expected!r}")
    print("smoke run passed:", output)
finally:
    dev.terminate()
    try:
        dev.wait(60)
    except subprocess.TimeoutExpired:
        dev.kill()
    server.stop()

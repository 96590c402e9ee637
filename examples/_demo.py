"""Run the triage example end to end: ``python -m examples [--live --repo O/N --issue N]``.

Demo mode (the default) starts the testing kit's replay server with the recordings in
``examples/recordings/triage.json`` (one of them a rate-limit answer whose reset lies a few
seconds ahead, so ``on_error`` schedules the retry), Redis (``TRIGGER_CELERY_REDIS_URL`` or an
embedded Valkey) and a worker; sends the ``github.issues.opened`` event in
``examples/payloads/issue_opened.json``; waits for the run and prints its timeline.

With ``--ui`` it also serves the web UI on 127.0.0.1 (``--ui-port``, default 8765), prints the
run's page (open it while the run executes: it follows the run live) and keeps serving after the
run until Ctrl-C.

Live mode needs ``--live`` explicitly, with ``--repo`` and ``--issue`` and a ``GITHUB_TOKEN``: a
token merely present in the shell never makes the demo go live.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESET_IN_S = 3.0


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m examples", description=__doc__)
    p.add_argument("--live", action="store_true", help="talk to api.github.com (needs a token)")
    p.add_argument("--repo", help="OWNER/NAME of the repository (live mode)")
    p.add_argument("--issue", type=int, help="number of an open issue to triage (live mode)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the run")
    p.add_argument("--ui", action="store_true",
                   help="serve the web UI, print the run's page, keep serving until Ctrl-C")
    p.add_argument("--ui-port", type=int, default=8765, help="port of the web UI (--ui)")
    return p.parse_args(argv)


def _live_payload(repo: str, number: int) -> dict:
    owner, name = repo.split("/", 1)
    return {"action": "opened",
            "issue": {"number": number, "title": f"{repo}#{number}",
                      "user": {"login": owner}},
            "repository": {"name": name, "full_name": repo, "owner": {"login": owner}},
            "sender": {"login": owner}}


def main(argv: list[str]) -> int:
    args = _parse(argv)
    replay = None
    if args.live:
        if not (args.repo and args.issue and os.environ.get("GITHUB_TOKEN")):
            print("--live needs --repo OWNER/NAME, --issue N and GITHUB_TOKEN in the environment")
            return 2
        os.environ["EXAMPLES_TRIAGE_REPO"] = args.repo
        os.environ.pop("EXAMPLES_GITHUB_BASE_URL", None)
        payload = _live_payload(args.repo, args.issue)
    else:
        from trigger_celery.testing.replay import ReplayServer

        replay = ReplayServer().start()
        replay.load(HERE / "recordings" / "triage.json")
        os.environ["EXAMPLES_GITHUB_BASE_URL"] = replay.base_url
        os.environ["EXAMPLES_TRIAGE_REPO"] = "Codertocat/Hello-World"
        os.environ["GITHUB_TOKEN"] = "demo-token-not-a-secret"  # the demo's own, not yours
        payload = json.loads((HERE / "payloads" / "issue_opened.json").read_text())
        print(f"demo: GitHub answered by the replay server at {replay.base_url}")
    os.environ.setdefault("PYTHONPATH", str(HERE.parent))
    os.environ["TRIGGER_CELERY_APP_MODULES"] = "examples.triage"
    try:
        return _run(payload, args.timeout, replay, ui_port=args.ui_port if args.ui else None)
    finally:
        if replay is not None:
            replay.stop()


def _progress(run) -> str:
    """One line: the run's status, and its latest unfinished task with its last error and when
    it runs next (``run run_… WAITING · comment WAITING, attempt 2 failed: ConnectionError:
    …; next attempt at 08:30:14 UTC``)."""
    line = f"run {run.id}: {run.status}"
    pending = [t for t in run.tasks if t.status not in ("COMPLETED", "CANCELED")]
    if pending:
        t = pending[-1]
        line += f" · {t.key} {t.status}"
        if t.errors:
            e = t.errors[-1]
            message = str(e.get("message"))
            message = message if len(message) <= 120 else message[:119] + "…"
            line += f", attempt {e.get('attempt')} failed: {e.get('type')}: {message}"
        if t.retry_at:
            line += f"; next attempt at {datetime.fromtimestamp(t.retry_at, UTC):%H:%M:%S} UTC"
    done = sum(t.status == "COMPLETED" for t in run.tasks)
    return line + f" · {done} task{'s' if done != 1 else ''} done"


def _wait(client, run_id: str, timeout: float):
    """Poll the run until it finishes or ``timeout`` seconds pass, printing a progress line
    each time it changes; returns the run's last record."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        run = client.get_run(run_id)
        if run.finished or time.monotonic() >= deadline:
            return run
        line = _progress(run)
        if line != last:
            print(f"  {line}", flush=True)
            last = line
        time.sleep(0.3)


def _run(payload: dict, timeout: float, replay, ui_port: int | None = None) -> int:
    from trigger_celery.cli import local_stack, print_timeline

    with local_stack("workers.app"):
        from examples.app import client  # built now that the Redis URL is known

        web = None
        if ui_port is not None:
            from trigger_celery.ui import UIServer

            web = UIServer(client, port=ui_port, fallback_port=True).start()
        if replay is not None:
            reset = replay.set_reset_in(RESET_IN_S)
            print("demo: the first comment is answered 403 (rate limit) with a reset at "
                  f"{datetime.fromtimestamp(reset, UTC):%H:%M:%S} UTC")
        handles = client.send_event("github.issues.opened", payload, id=f"demo-{uuid.uuid4()}")
        if not handles:
            print("no job matched the event")
            return 1
        print(f"sent github.issues.opened; run {handles[0].id} started, waiting for it")
        if web is not None:
            print(f"demo: follow it live in a browser: {web.url}/runs/{handles[0].id}")
        run = _wait(client, handles[0].id, timeout)
        print_timeline(run)
        if run.status != "SUCCESS":
            if run.error:
                why = f"ended {run.status}: {run.error.get('type')}: {run.error.get('message')}"
            else:  # not finished: cancel it, or it would retry whenever a worker runs again
                client.cancel_run(run.id)
                why = f"still {run.status} after {timeout:g} s (--timeout); canceled it"
            print(f"error: run {run.id} {why}")
            return 1
        output = run.output
        comment = run.task("comment")
        if comment.errors:
            err = comment.errors[0]
            print(f"rate limited: attempt 1 got {err.get('status')} at "
                  f"{datetime.fromtimestamp(err['at'], UTC):%H:%M:%S} UTC; on_error scheduled "
                  f"the retry, attempt {comment.attempts} completed at "
                  f"{datetime.fromtimestamp(comment.completed_at or 0, UTC):%H:%M:%S.%f} UTC")
        print(f"output: {json.dumps(output)}")
        if web is not None:
            print(f"demo: web UI at {web.url}/runs/{handles[0].id}; Ctrl-C to stop")
            signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop Valkey on SIGTERM too
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
            finally:
                web.stop()
    return 0

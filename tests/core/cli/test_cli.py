"""The ``trigger-celery`` command line against a real Redis and real worker processes.

Fast command tests use typer's ``CliRunner`` in process, with one ``celery worker`` on
``tests.cli_app`` for the module. The ``dev`` tests start the real console script as a child
process, as a user would, and check that Ctrl-C (SIGINT) leaves no process behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
import requests
from typer.testing import CliRunner

from tests.support import ROOT, Worker
from trigger_celery import RunFailedError
from trigger_celery.cli import _dev, app

APP = "tests.cli_app:client"
SCRIPT = str(Path(sys.executable).with_name("trigger-celery"))


@pytest.fixture(scope="module")
def cli_worker(worker_env: dict[str, str]) -> Iterator[Worker]:
    w = Worker("tests.cli_app", {**worker_env, "ECHO_TOKEN": "echo-test-token"},
               name="cli").wait_ready()
    yield w
    w.stop()


@pytest.fixture()
def cli(store_redis: redis.Redis, cli_worker: Worker):
    """``cli(*args)`` -> Result of ``trigger-celery --app tests.cli_app:client *args``."""
    runner = CliRunner()

    def invoke(*args: str, app_spec: str | None = APP, **env: str):
        argv = (["--app", app_spec] if app_spec else []) + list(args)
        return runner.invoke(app, argv, env=env or None)

    return invoke


def _client():
    from tests.cli_app import client

    return client


def _wait_status(run_id: str, statuses: set[str], timeout: float = 20) -> str:
    client = _client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get_run(run_id).status
        if status in statuses:
            return status
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still {client.get_run(run_id).status}")


def _one_error_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines()
             if ln.strip() and not ln.startswith("store: ")]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


# -- trigger and send-event ----------------------------------------------------------------


def test_trigger_wait_prints_the_timeline(cli) -> None:
    result = cli("trigger", "greet", "--payload", '{"name": "Ada"}', "--wait")
    assert result.exit_code == 0, result.output
    run_id = result.stdout.splitlines()[0].strip()
    assert run_id.startswith("run_")
    run = _client().get_run(run_id)
    assert run.status == "SUCCESS" and run.output == {"text": "Hello, Ada!"}
    out = result.stdout
    assert f"run {run_id}" in out and "greet@1.0.0" in out and "SUCCESS" in out
    assert "compose" in out and "Who: Ada" in out  # the task and its properties
    assert "attempt 1 succeeded" in out
    assert "wait 0.5 s · resumed at" in out  # the wait and when it resumed
    assert "composed" in out and '"Hello, Ada!"' in out  # log line and output


def test_trigger_payload_from_file_and_idempotency_key(cli, tmp_path: Path) -> None:
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps({"name": "Bob"}))
    first = cli("trigger", "greet", "--payload", f"@{payload}", "-k", "order-7")
    second = cli("trigger", "greet", "--payload", f"@{payload}", "--idempotency-key", "order-7")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert first.stdout.strip() == second.stdout.strip()
    assert "already used" in second.stderr
    assert _client().get_run(first.stdout.strip()).payload == {"name": "Bob"}
    assert len(_client().list_runs(job_id="greet")) == 1


def test_bad_json_payload_is_one_red_line(cli, store_redis: redis.Redis) -> None:
    line = _one_error_line(cli("trigger", "greet", "--payload", "{name: Ada}"))
    assert "--payload (inline) is not valid JSON" in line and "line 1 column 2" in line
    missing = _one_error_line(cli("trigger", "greet", "--payload", "@/nonexistent/p.json"))
    assert "cannot read '/nonexistent/p.json'" in missing
    assert _client().list_runs() == []  # nothing was started


def test_commands_name_their_store_and_never_fall_back_silently(
        worker_env: dict[str, str], tmp_path: Path, cli) -> None:
    shown = cli("runs", "list")
    store = os.environ["TRIGGER_CELERY_REDIS_URL"]
    assert f"store: {store} (TRIGGER_CELERY_REDIS_URL)" in shown.stderr.splitlines()
    from trigger_celery.cli._app import shown_url

    assert shown_url("redis://:s3cret@db.internal:6379/0") == "redis://***@db.internal:6379/0"
    # Another terminal with nothing configured and no dev running in this folder: an error
    # saying how to configure, not a silent redis://127.0.0.1:6379/0.
    env = {k: v for k, v in worker_env.items() if not k.startswith("TRIGGER_CELERY_")}
    env.update(TRIGGER_CELERY_APP=APP, TRIGGER_CELERY_DEV_DIR=str(tmp_path))
    result = _cli_subprocess(env, "runs", "list")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: no store configured: TRIGGER_CELERY_REDIS_URL is not set and no "
        f"`trigger-celery dev` runs in {tmp_path}; set TRIGGER_CELERY_REDIS_URL (e.g. "
        "redis://127.0.0.1:6379/0) or start `trigger-celery dev` in this folder")


def test_help_shows_no_type_after_flags(cli) -> None:
    for command in (["trigger"], ["dev"], ["runs", "list"]):
        result = cli(*command, "--help", COLUMNS="120")
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.stdout, result.stdout
    assert "<str>" in cli("trigger", "--help", COLUMNS="120").stdout  # options with values do


def test_verbose_adds_the_traceback(cli) -> None:
    result = cli("--verbose", "trigger", "no-such-job")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "UnknownJobError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown job id")


def test_unknown_job_and_bad_payload_are_clear(cli) -> None:
    line = _one_error_line(cli("trigger", "no-such-job"))
    assert "unknown job id 'no-such-job'" in line
    line = _one_error_line(cli("trigger", "greet", "--payload", '{"nom": "x"}'))
    assert "payload invalid" in line and "name" in line


def test_app_is_found_by_option_or_environment(cli) -> None:
    line = _one_error_line(cli("jobs", app_spec="no_such_module.app:client"))
    assert "cannot import 'no_such_module.app'" in line
    line = _one_error_line(cli("jobs", app_spec="tests.cli_app:nothing"))
    assert "has no attribute 'nothing'" in line
    line = _one_error_line(cli("jobs", app_spec="tests.cli_app:side"))
    assert "is not a TriggerClient" in line
    by_env = cli("jobs", app_spec=None, TRIGGER_CELERY_APP="tests.cli_app:celery")
    assert by_env.exit_code == 0, by_env.output
    for job in ("greet", "gated", "notify", "pinged", "sleepy"):
        assert f"{job}@1.0.0" in by_env.stdout
    assert "type=event, name=cli.ping" in by_env.stdout


def test_send_event_wait_and_event_id_dedup(cli) -> None:
    first = cli("send-event", "cli.ping", "--payload", '{"n": 3}', "--id", "evt-1", "--wait")
    assert first.exit_code == 0, first.output
    run_id = first.stdout.splitlines()[0].strip()
    assert run_id.startswith("run_")
    assert '"pong": 3' in first.stdout and "event cli.ping (id evt-1)" in first.stdout
    again = cli("send-event", "cli.ping", "--payload", '{"n": 4}', "--id", "evt-1")
    assert again.exit_code == 0
    assert again.stdout.split()[0] == run_id and "existing" in again.stdout
    assert len(_client().list_runs(job_id="pinged")) == 1
    nobody = cli("send-event", "nobody.listens", "--payload", "{}")
    assert nobody.exit_code == 0 and "no job listens to event 'nobody.listens'" in nobody.stderr


# -- runs ------------------------------------------------------------------------------------


def test_runs_list_filters(cli) -> None:
    client = _client()
    greets = [client.trigger("greet", {"name": f"n{i}"}) for i in range(2)]
    for h in greets:
        h.result(timeout=20)
    sleepy = client.trigger("sleepy", {"seconds": 600})
    _wait_status(sleepy.id, {"WAITING"})

    every = cli("runs", "list")
    assert every.exit_code == 0, every.output
    assert all(h.id in every.stdout for h in [*greets, sleepy])
    only_greet = cli("runs", "list", "--job", "greet")
    assert all(h.id in only_greet.stdout for h in greets) and sleepy.id not in only_greet.stdout
    waiting = cli("runs", "list", "--status", "waiting")
    assert sleepy.id in waiting.stdout and not any(h.id in waiting.stdout for h in greets)
    limited = cli("runs", "list", "--limit", "1")
    assert sum(h.id in limited.stdout for h in [*greets, sleepy]) == 1
    assert "no runs" in cli("runs", "list", "--job", "nothing-here").stdout
    line = _one_error_line(cli("runs", "list", "--status", "DONE"))
    assert "unknown status 'DONE'" in line

    narrow = cli("runs", "list", COLUMNS="80")
    lines = narrow.stdout.splitlines()
    assert lines and all(len(ln) <= 80 for ln in lines), narrow.stdout
    assert "…" not in narrow.stdout  # nothing cut: full ids, statuses, jobs, times
    for h in [*greets, sleepy]:
        (row,) = [ln for ln in lines if h.id in ln]
        assert row.split()[1] == client.get_run(h.id).status
    assert "sleepy@1.0.0" in narrow.stdout and "greet@1.0.0" in narrow.stdout

    as_json = cli("runs", "list", "--json", "--job", "greet")
    records = json.loads(as_json.stdout)
    assert [r["id"] for r in records] == [h.id for h in reversed(greets)]
    assert records[0]["status"] == "SUCCESS" and records[0]["job_version"] == "1.0.0"
    assert "tasks" not in records[0]
    assert json.loads(cli("runs", "list", "--json", "--job", "nothing-here").stdout) == []


def test_runs_show_a_waiting_run_then_cancel_it(cli) -> None:
    handle = _client().trigger("sleepy", {"seconds": 600})
    _wait_status(handle.id, {"WAITING"})
    shown = cli("runs", "show", handle.id)
    assert shown.exit_code == 0, shown.output
    assert "WAITING" in shown.stdout and "long-nap" in shown.stdout
    assert "wait 600 s · resumes at" in shown.stdout and "(in 10 min)" in shown.stdout

    as_json = cli("runs", "show", handle.id, "--json", COLUMNS="40")  # never wrapped
    record = json.loads(as_json.stdout)
    assert record["status"] == "WAITING" and record["tasks"][0]["key"] == "long-nap"

    canceled = cli("runs", "cancel", handle.id)
    assert canceled.exit_code == 0 and f"run {handle.id}: CANCELED" in canceled.stdout
    assert _client().get_run(handle.id).status == "CANCELED"
    again = cli("runs", "cancel", handle.id)
    assert again.exit_code == 0 and "already finished: CANCELED" in again.stdout
    after = cli("runs", "show", handle.id)
    assert "CANCELED" in after.stdout and "resumes at" not in after.stdout
    assert "wait 600 s · canceled with the run: it will not resume" in after.stdout
    with pytest.raises(RunFailedError) as info:
        handle.result(timeout=5)
    assert str(info.value) == f"run {handle.id} ended CANCELED (canceled; it ran no further task)"


def test_trigger_wait_on_a_run_canceled_meanwhile(cli) -> None:
    import threading

    def cancel_when_waiting() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            runs = _client().list_runs(job_id="sleepy", status="WAITING")
            if runs:
                _client().cancel_run(runs[0].id)
                return
            time.sleep(0.05)

    canceler = threading.Thread(target=cancel_when_waiting)
    canceler.start()
    result = cli("trigger", "sleepy", "--payload", '{"seconds": 600}', "--wait", "--timeout", "30")
    canceler.join()
    run_id = result.stdout.splitlines()[0].strip()
    line = _one_error_line(result)
    assert line == f"error: run {run_id} ended CANCELED (canceled; it ran no further task)"


def test_a_run_queued_where_no_worker_consumes_says_so(cli) -> None:
    idle = "tests.cli_idle_app:client"
    result = cli("trigger", "idle", "--wait", "--timeout", "4", app_spec=idle)
    assert result.exit_code == 1
    run_id = result.stdout.splitlines()[0].strip()
    note = ("no worker consumes queue 'cli-idle' (1 message waiting): the run starts when one "
            "does; start one with `trigger-celery -A tests.cli_idle_app:client worker -Q cli-idle`")
    assert f"run {run_id}: {note}" in result.stderr  # said while waiting, once
    assert result.stderr.count(note) == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: run {run_id} not finished after 4 s (still QUEUED: {note})")
    shown = cli("runs", "show", run_id, app_spec=idle, COLUMNS="300")
    assert shown.exit_code == 0 and "QUEUED" in shown.stdout
    assert " ".join(shown.stdout.split()).count(note) == 1
    # A queued run on a consumed queue gets no such note.
    greet = cli("runs", "show", _client().trigger("greet", {"name": "q"}).id)
    assert "no worker consumes" not in greet.stdout


def test_an_inline_task_in_flight_shows_and_cancel_says_when_the_run_stops(
        cli, store_redis: redis.Redis) -> None:
    handle = _client().trigger("slowpoke", {"tag": "fly", "seconds": 4})
    deadline = time.monotonic() + 20
    while "running since" not in (shown := cli("runs", "show", handle.id, COLUMNS="200")).stdout:
        assert time.monotonic() < deadline, shown.stdout
        time.sleep(0.1)
    out = shown.stdout
    assert "EXECUTING" in out and "RUNNING   slow" in out and "Tag: fly" in out
    assert "attempt 1 running since" in out
    record = json.loads(cli("runs", "show", handle.id, "--json").stdout)
    (slow,) = record["tasks"]
    assert slow["status"] == "RUNNING" and slow["started_at"] > record["created_at"]

    canceled = cli("runs", "cancel", handle.id, COLUMNS="200")
    assert canceled.exit_code == 0, canceled.output
    assert f"run {handle.id}: CANCELED" in canceled.stdout
    assert ("an execution is in progress: task 'slow' is running now and finishes first; the "
            "run stops at its next task (no task starts after this)") in canceled.stdout
    time.sleep(5)  # the callback ends; the next task must not start
    assert store_redis.get("side:fly:after") is None
    after = cli("runs", "show", handle.id)
    assert "CANCELED" in after.stdout and "running since" not in after.stdout


def test_retry_now_runs_a_task_waiting_on_backoff_at_once(cli) -> None:
    handle = _client().trigger("backoff", {})
    _wait_status(handle.id, {"WAITING"})
    shown = cli("runs", "show", handle.id)
    assert "retry: next attempt at" in shown.stdout and "(in 10 min)" in shown.stdout
    moved = cli("runs", "retry-now", handle.id, "call", COLUMNS="200")
    assert moved.exit_code == 0, moved.output
    assert f"run {handle.id}: task 'call' runs its next attempt now (it was due at" in moved.stdout
    assert "in 10 min)" in moved.stdout
    assert handle.result(timeout=10) == {"attempts": 2}
    line = _one_error_line(cli("runs", "retry-now", handle.id, "call"))
    assert "task 'call' of run" in line and "is COMPLETED, not waiting to retry" in line
    assert "has no task with key 'nope'" in _one_error_line(
        cli("runs", "retry-now", handle.id, "nope"))


def test_retry_now_of_a_deferred_dispatched_task(cli) -> None:
    handle = _client().trigger("notify", {"channel": "#c", "text": "later on"})
    deadline = time.monotonic() + 20
    while "deferred by on_error" not in (shown := cli("runs", "show", handle.id)).stdout:
        assert time.monotonic() < deadline, shown.stdout
        time.sleep(0.1)
    moved = cli("runs", "retry-now", handle.id, "send")
    assert moved.exit_code == 0, moved.output
    assert handle.result(timeout=15)["sent"] == "later on"
    assert _client().get_run(handle.id).task("send").attempts == 2


def test_a_run_waiting_on_an_unconsumed_integration_queue_says_so(cli, start_worker) -> None:
    start_worker("tests.cli_idle_app", queues="cli-idle", name="idle", MUTE_TOKEN="x")
    idle = "tests.cli_idle_app:client"
    result = cli("trigger", "idle-say", "--wait", "--timeout", "5", app_spec=idle)
    run_id = result.stdout.splitlines()[0].strip()
    note = ("no worker consumes queue 'mute' (1 message waiting): task 'say' runs when one "
            "does; start one with `trigger-celery -A tests.cli_idle_app:client worker -Q mute`")
    assert f"run {run_id}: {note}" in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: run {run_id} not finished after 5 s (still WAITING: {note})")
    shown = cli("runs", "show", run_id, app_spec=idle, COLUMNS="300")
    assert note in shown.stdout


def test_runs_show_and_cancel_of_unknown_runs(cli) -> None:
    assert "no run 'run_nope'" in _one_error_line(cli("runs", "show", "run_nope"))
    assert "no run 'run_nope'" in _one_error_line(cli("runs", "cancel", "run_nope"))


def test_failed_run_shows_its_error_and_reset_task_reruns_it(
        cli, store_redis: redis.Redis) -> None:
    failed = cli("trigger", "gated", "--payload", '{"tag": "g1"}', "--wait")
    assert failed.exit_code == 1
    run_id = failed.stdout.splitlines()[0].strip()
    assert "ERRORED" in failed.stdout and "attempt 1 failed" in failed.stdout
    last = failed.stderr.strip().splitlines()[-1]
    assert last == (f"error: run {run_id} ended FAILURE: TaskFailedError: task 'gate' failed: "
                    "NonRetriableError: gate g1 is closed")

    shown = cli("runs", "show", run_id)
    assert "FAILURE" in shown.stdout and "gate g1 is closed" in shown.stdout

    assert "has no task with key 'nope'" in _one_error_line(
        cli("runs", "reset-task", run_id, "nope"))
    store_redis.set("side:g1:open", "1")  # the "fix" is deployed
    reset = cli("runs", "reset-task", run_id, "gate")
    assert reset.exit_code == 0, reset.output
    assert reset.stdout.strip() == (
        f"run {run_id}: cleared task 'gate'; the run is QUEUED again and runs from the top: "
        "completed tasks return their stored output, the cleared ones run again")
    assert _wait_status(run_id, {"SUCCESS", "FAILURE"}) == "SUCCESS"
    assert _client().get_run(run_id).output == {"gate": "through"}
    assert store_redis.get("side:g1:calls") == "2"


def test_reset_task_message_says_what_happens_next() -> None:
    from trigger_celery.cli._runs import reset_message

    assert reset_message("run_1", "SUCCESS", ["gate"]) == (
        "run run_1: cleared task 'gate'; the run had ended SUCCESS, so nothing runs again "
        "(reset-task re-runs failed runs)")
    assert reset_message("run_1", "WAITING", ["child", "parent"]) == (
        "run run_1: cleared task 'child' and its parent 'parent'; the run runs it again at its "
        "next execution")
    assert "and its parents 'p1', 'p2';" in reset_message("run_1", "FAILURE", ["c", "p1", "p2"])


def test_wait_timeout_is_an_error(cli) -> None:
    result = cli("trigger", "sleepy", "--payload", '{"seconds": 600}', "--wait",
                 "--timeout", "1")
    line = _one_error_line(result)
    assert "not finished after 1 s" in line


def test_dispatched_task_shows_name_and_properties(cli) -> None:
    result = cli("trigger", "notify", "--payload", '{"channel": "#general", "text": "hi"}',
                 "--wait")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Send hi to #general" in out and "(echo.messages.send)" in out
    assert "Channel: #general" in out and "echo-test-token" not in out


# -- worker and beat -------------------------------------------------------------------------


def _log_lines(worker: Worker, text: str, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [ln for ln in worker.output().splitlines() if text in ln]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_worker_logs_run_outcomes_and_failed_attempts(cli, cli_worker: Worker) -> None:
    client = _client()
    ok = client.trigger("flaky", {})
    assert ok.result(timeout=20) == {"call": "ok"}
    (retry,) = _log_lines(cli_worker, f"of run {ok.id} job flaky attempt 1 failed")
    assert "task 'call' (call)" in retry and "RuntimeError: provider hiccup" in retry
    assert "; next attempt 2 at 20" in retry and "Z (in 0.2 s)" in retry
    (done,) = _log_lines(cli_worker, f"run {ok.id} job flaky@1.0.0 SUCCESS in ")
    assert "(executions 2)" in done

    failed = client.trigger("gated", {"tag": "logs"})
    _wait_status(failed.id, {"FAILURE"})
    (attempt,) = _log_lines(cli_worker, f"of run {failed.id} job gated attempt 1 failed")
    assert "NonRetriableError: gate logs is closed; no further attempt" in attempt
    (end,) = _log_lines(cli_worker, f"run {failed.id} job gated@1.0.0 FAILURE")
    assert "TaskFailedError: task 'gate' failed" in end


def test_worker_logs_json_lines(worker_env: dict[str, str], start_worker) -> None:
    from trigger_celery import TriggerClient

    w = start_worker("tests.cli_app", name="json", CLI_TESTS_QUEUE="cli-json",
                     TRIGGER_CELERY_KEY_PREFIX="tcjson", TRIGGER_CELERY_LOG_FORMAT="json",
                     ECHO_TOKEN="x")
    enqueuer = TriggerClient("json-enqueuer", key_prefix="tcjson")  # through the registry
    handle = enqueuer.trigger("flaky", {})
    assert handle.result(timeout=20) == {"call": "ok"}
    _log_lines(w, '"run_finished"')
    records = [json.loads(ln) for ln in w.output().splitlines() if ln.startswith("{")]
    assert records and all("time" in r and "level" in r for r in records)
    ours = [r for r in records if r.get("run_id") == handle.id]
    retry = next(r for r in ours if r.get("event") == "task_retry")
    assert retry["job_id"] == "flaky" and retry["task_key"] == "call" and retry["attempt"] == 1
    assert retry["error_type"] == "RuntimeError" and retry["error"] == "provider hiccup"
    assert retry["next_attempt"] == 2 and retry["next_attempt_at"].endswith("Z")
    finished = next(r for r in ours if r.get("event") == "run_finished")
    assert finished["status"] == "SUCCESS" and finished["executions"] == 2


def test_worker_and_beat_exec_celery_with_extra_args(cli, monkeypatch) -> None:
    calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(_dev, "_exec", lambda argv, env: calls.append((argv, env)))
    assert cli("worker", "-Q", "cli-tests,echo", "-c", "3").exit_code == 0
    assert cli("beat", "-s", "/tmp/sched", "--loglevel=debug").exit_code == 0
    (w_argv, w_env), (b_argv, b_env) = calls
    assert w_argv[1:] == ["-m", "celery", "-A", _dev.CELERY_APP, "worker", "-l", "info",
                          "-Q", "cli-tests,echo", "-c", "3"]
    assert b_argv[1:] == ["-m", "celery", "-A", _dev.CELERY_APP, "beat",
                          "-s", "/tmp/sched", "--loglevel=debug"]
    assert w_env["TRIGGER_CELERY_APP"] == b_env["TRIGGER_CELERY_APP"] == APP
    assert "no_such" in _one_error_line(cli("worker", app_spec="no_such:client"))


def test_worker_command_runs_a_real_worker(worker_env: dict[str, str], tmp_path: Path,
                                           store_redis: redis.Redis) -> None:
    """`trigger-celery worker` becomes a Celery worker of the app (its queues, our tasks)."""
    env = {**worker_env, "TRIGGER_CELERY_APP": APP, "CLI_TESTS_QUEUE": "cli-worker-cmd",
           "TRIGGER_CELERY_KEY_PREFIX": "tcworker", "ECHO_TOKEN": "x"}
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([SCRIPT, "worker", "-c", "1", "-n", f"cmd-{os.getpid()}@%h",
                                 "--without-mingle", "--without-gossip"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while " ready." not in log.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            text = log.read_text()
            assert ".> cli-worker-cmd" in text and ".> echo" in text  # every declared queue
            assert "trigger-celery.run" in text and "echo.messages.send" in text
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            assert proc.wait(30) == 0


# -- dev -------------------------------------------------------------------------------------


def _start_dev(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    out = open(log, "a")  # noqa: SIM115 - the child holds it; closed by the OS after
    try:
        return subprocess.Popen([SCRIPT, "dev", "-c", "1", *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        out.close()


def _wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            raise AssertionError(f"dev exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} from dev:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _ctrl_c(proc: subprocess.Popen, log: Path) -> None:
    """What a terminal does on Ctrl-C: SIGINT to the foreground process group."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        assert proc.wait(45) == 0, log.read_text()[-3000:]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"dev did not stop on SIGINT:\n{log.read_text()[-3000:]}") from None


def _assert_all_gone(procs: list[psutil.Process]) -> None:
    deadline = time.monotonic() + 5
    left = procs
    while left and time.monotonic() < deadline:
        left = [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.1)
    for p in left:  # do not leak them into later tests
        p.kill()
    assert not left, f"left running after Ctrl-C: {[(p.pid, p.cmdline()) for p in left]}"


def _cli_subprocess(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=90)


def test_dev_runs_worker_and_beat_and_stops_cleanly_on_ctrl_c(
        worker_env: dict[str, str], tmp_path: Path, store_redis: redis.Redis) -> None:
    env = {**worker_env, "TRIGGER_CELERY_APP": APP, "TRIGGER_CELERY_DEV_DIR": str(tmp_path),
           "CLI_TESTS_QUEUE": "dev-tests", "TRIGGER_CELERY_KEY_PREFIX": "tcdev"}
    log = tmp_path / "dev.out"
    proc = _start_dev(env, log, "--ui-port", "0", "--metrics-port", "0")
    try:
        _wait_for(log, "web UI http://127.0.0.1:", proc)
        ui_url = re.search(r"web UI (http://127\.0\.0\.1:\d+)/runs", log.read_text()).group(1)
        assert requests.get(f"{ui_url}/runs", timeout=10).status_code == 200
        kids = _descendants(proc.pid)
        cmds = [" ".join(p.cmdline()) for p in kids]
        assert any(" worker " in c for c in cmds) and any(" beat " in c for c in cmds), cmds

        done = _cli_subprocess(env, "trigger", "greet", "--payload", '{"name": "Dev"}', "--wait",
                               "--timeout", "60")
        assert done.returncode == 0, done.stdout + done.stderr
        assert '"Hello, Dev!"' in done.stdout
        assert "Task trigger-celery.run" in log.read_text()  # dev's own worker ran it
        run_id = done.stdout.splitlines()[0].strip()
        deadline = time.monotonic() + 10
        while f"run {run_id} job greet@1.0.0 SUCCESS in " not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]  # the outcome line
            time.sleep(0.1)
        metrics_url = re.search(r"metrics (http://127\.0\.0\.1:\d+/metrics)",
                                log.read_text()).group(1)
        scraped = requests.get(metrics_url, timeout=10).text
        assert 'trigger_celery_runs_finished_total{job="greet",status="SUCCESS"} 1.0' in scraped
        assert "worker |" in log.read_text() and "beat |" in log.read_text()
        kids = _descendants(proc.pid)  # pool processes included
    finally:
        _ctrl_c(proc, log)
    _assert_all_gone(kids)
    assert "stopped" in log.read_text()


def test_dev_with_embedded_valkey_keeps_runs_across_restarts(
        worker_env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in worker_env.items() if not k.startswith("TRIGGER_CELERY_")}
    env.update(TRIGGER_CELERY_APP=APP, TRIGGER_CELERY_DEV_DIR=str(tmp_path),
               CLI_TESTS_QUEUE="dev-tests")
    log = tmp_path / "dev.out"

    proc = _start_dev(env, log, "--no-beat")
    try:
        _wait_for(log, "Ctrl-C to stop", proc)
        assert "embedded Valkey at redis://127.0.0.1:" in log.read_text()
        # Another terminal: no TRIGGER_CELERY_REDIS_URL; the CLI finds the dev's Valkey.
        done = _cli_subprocess(env, "trigger", "greet", "--payload", '{"name": "Val"}',
                               "--wait", "--timeout", "60")
        assert done.returncode == 0, done.stdout + done.stderr
        run_id = done.stdout.splitlines()[0].strip()
        kids = _descendants(proc.pid)
        assert any("valkey" in " ".join(p.cmdline()) for p in kids)
    finally:
        _ctrl_c(proc, log)
    _assert_all_gone(kids)
    assert (tmp_path / "valkey" / "appendonlydir").is_dir()
    assert not (tmp_path / "redis-url").exists()
    stopped = _cli_subprocess(env, "runs", "show", run_id)  # dev stopped: no silent default
    assert stopped.returncode == 1 and "no store configured" in stopped.stderr

    log = tmp_path / "dev-again.out"
    proc = _start_dev(env, log, "--no-beat")
    try:
        _wait_for(log, "Ctrl-C to stop", proc)
        shown = _cli_subprocess(env, "runs", "show", run_id)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert f"(the dev running in {tmp_path})" in shown.stderr
        assert "SUCCESS" in shown.stdout and '"Hello, Val!"' in shown.stdout
    finally:
        _ctrl_c(proc, log)

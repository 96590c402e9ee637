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
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
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


def test_runs_show_a_waiting_run_then_cancel_it(cli) -> None:
    handle = _client().trigger("sleepy", {"seconds": 600})
    _wait_status(handle.id, {"WAITING"})
    shown = cli("runs", "show", handle.id)
    assert shown.exit_code == 0, shown.output
    assert "WAITING" in shown.stdout and "long-nap" in shown.stdout
    assert "wait 600 s · resumes at" in shown.stdout and "(in 10 min)" in shown.stdout

    as_json = cli("runs", "show", handle.id, "--json")
    assert json.loads(as_json.stdout)["status"] == "WAITING"

    canceled = cli("runs", "cancel", handle.id)
    assert canceled.exit_code == 0 and f"run {handle.id}: CANCELED" in canceled.stdout
    assert _client().get_run(handle.id).status == "CANCELED"
    again = cli("runs", "cancel", handle.id)
    assert again.exit_code == 0 and "already finished: CANCELED" in again.stdout


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
    assert "cleared gate" in reset.stdout
    assert _wait_status(run_id, {"SUCCESS", "FAILURE"}) == "SUCCESS"
    assert _client().get_run(run_id).output == {"gate": "through"}
    assert store_redis.get("side:g1:calls") == "2"


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

    log = tmp_path / "dev-again.out"
    proc = _start_dev(env, log, "--no-beat")
    try:
        _wait_for(log, "Ctrl-C to stop", proc)
        shown = _cli_subprocess(env, "runs", "show", run_id)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "SUCCESS" in shown.stdout and '"Hello, Val!"' in shown.stdout
    finally:
        _ctrl_c(proc, log)

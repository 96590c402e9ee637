"""Determinism checks with a real worker: replayed tasks compared with their records, and runs
whose task keys change between executions stopped (see ``trigger_celery._determinism``)."""

from __future__ import annotations

import io as stdio
import time
from collections.abc import Iterator

import pytest
from rich.console import Console

from tests.support import Worker
from trigger_celery import RunFailedError
from trigger_celery._determinism import MAX_FRUITLESS_RESUMES, params_hash
from trigger_celery.cli._timeline import print_timeline


@pytest.fixture(scope="module")
def det_worker(worker_env: dict[str, str]) -> Iterator[Worker]:
    w = Worker("tests.determinism_app", worker_env, name="determinism").wait_ready()
    yield w
    w.stop()


@pytest.fixture()
def det(store_redis, det_worker):
    from tests.determinism_app import client

    return client


def shown(run) -> str:
    out = stdio.StringIO()
    print_timeline(run, Console(file=out, width=400, color_system=None))
    return out.getvalue()


def test_params_hash_ignores_key_order_and_tells_values_apart():
    assert params_hash({"a": 1, "b": [1, 2]}) == params_hash({"b": [1, 2], "a": 1})
    assert params_hash({"a": 1}) != params_hash({"a": 2})
    assert params_hash(None) is None and len(params_hash({}) or "") == 16


def test_replay_with_other_params_or_name_warns_once_per_task(det):
    handle = det.trigger("drifting", {})
    assert handle.result(timeout=30) == "done"
    run = det.get_run(handle.id)
    assert run.executions == 2
    by_key = {w["key"]: w for w in run.replay_warnings}
    assert sorted(by_key) == ["a", "b"]  # "same" replayed the call it recorded
    assert by_key["a"]["recorded"] == {"name": "a", "params": {"n": 1}}
    assert by_key["a"]["now"] == {"name": "a", "params": {"n": 2}}
    assert by_key["b"]["recorded"]["name"] == "step-1"
    assert by_key["b"]["now"]["name"] == "step-2"
    warns = [e for e in run.logs if e.level == "WARN"]
    assert len(warns) == 2
    assert "replay mismatch: task 'a'" in warns[0].message
    assert warns[0].data == {"key": "a", "recorded": by_key["a"]["recorded"],
                             "now": by_key["a"]["now"]}
    assert run.task("a").model_dump().get("params") == {"n": 1}  # the record is kept
    text = shown(run)
    assert "replay warnings (2)" in text
    assert 'a: recorded a {"n": 1} · now a {"n": 2}' in text


def test_strict_replay_fails_the_run_naming_both_calls(det):
    with pytest.raises(RunFailedError) as info:
        det.trigger("drifting-strict", {}).result(timeout=30)
    run = info.value.run
    assert run.error["type"] == "NonDeterminismError"
    message = run.error["message"]
    assert "task 'a' replayed with a different call than recorded" in message
    assert 'recorded \'a\' params {"n":1}, now \'a\' params {"n":2}' in message
    assert "strict replay" in message
    assert [w["key"] for w in run.replay_warnings] == ["a"]
    assert run.executions == 2


def test_strict_replay_error_swallowed_by_the_job_still_fails_the_run(det):
    with pytest.raises(RunFailedError) as info:
        det.trigger("drifting-strict", {"swallow": True}).result(timeout=30)
    assert info.value.run.error["type"] == "NonDeterminismError"


def test_deterministic_job_gets_no_warning(det):
    handle = det.trigger("steady", {})
    assert handle.result(timeout=30) == 3
    run = det.get_run(handle.id)
    assert run.executions == 4 and run.replay_warnings == []
    assert all(t.model_dump().get("status") == "COMPLETED" for t in run.tasks)


def test_key_changing_every_execution_fails_after_a_few_resumes(det):
    """The smallest unstable input a new user writes: ``io.wait(f"w-{time.time_ns()}", ...)``
    made 19 executions in 18 s and never ended; now it fails after a few."""
    started = time.monotonic()
    handle = det.trigger("time-key", {})
    with pytest.raises(RunFailedError) as info:
        handle.result(timeout=30)
    took = time.monotonic() - started
    run = info.value.run
    assert run.status == "FAILURE" and run.error["type"] == "NonDeterminismError"
    assert run.executions == MAX_FRUITLESS_RESUMES + 1
    message = run.error["message"]
    assert "never reached the task or wait they resumed for" in message
    assert "changes between executions" in message
    assert "(pattern 'w-" in message
    waits = [t.key for t in run.tasks]
    assert len(waits) == MAX_FRUITLESS_RESUMES and all(k.startswith("w-") for k in waits)
    for key in waits:
        assert repr(key) in message
    assert took < 15, took


def test_strict_replay_setting_and_option_are_checked():
    from trigger_celery import ConfigurationError, TriggerClient, invoke_trigger

    client = TriggerClient("tests-strict", strict_replay=True)
    assert client.settings.strict_replay is True
    job = client.define_job(id="j", version="1.0.0", trigger=invoke_trigger())(lambda p, i, c: 1)
    assert job.strict_replay is None  # follows the setting
    with pytest.raises(ConfigurationError):
        client.define_job(id="k", version="1.0.0", trigger=invoke_trigger(),
                          strict_replay="yes")(lambda p, i, c: 1)

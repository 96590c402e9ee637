"""Bad input gives a clear error naming the problem, at the earliest point; workers keep serving."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from trigger_celery import (
    ConfigurationError,
    RunFailedError,
    TriggerClient,
    UnknownJobError,
    ValidationError,
    cron_trigger,
    event_trigger,
    interval_trigger,
    invoke_trigger,
)


def test_payload_failing_the_schema_raises_at_trigger_and_creates_no_run(client):
    with pytest.raises(ValidationError, match=r"three-tasks.*tag: Field required"):
        client.trigger("three-tasks", {"tga": "typo"})
    assert client.list_runs(job_id="three-tasks") == []


def test_event_payload_failing_the_schema_records_a_failed_run(client):
    (handle,) = client.send_event("order.placed", {"order_id": "not-a-number", "amount": 1})
    with pytest.raises(RunFailedError) as info:
        handle.result(timeout=10)
    run = info.value.run
    assert run.status == "FAILURE" and run.executions == 0  # no execution, no retry
    assert "order_id" in run.error["message"] and run.error["type"] == "ValidationError"
    good = client.trigger("quick", {"tag": "after-bad-event"})
    assert good.result(timeout=30)["tag"] == "after-bad-event"


def test_output_that_is_not_json_fails_the_run_naming_the_task(client):
    with pytest.raises(RunFailedError) as info:
        client.trigger("bad-output", {}).result(timeout=30)
    run = info.value.run
    assert "task 'makes-a-set'" in run.error["message"]
    assert "not JSON-serializable" in run.error["message"]
    assert run.task("makes-a-set").status == "ERRORED"
    assert client.trigger("quick", {"tag": "ok"}).result(timeout=30)["tag"] == "ok"


def test_duplicate_task_key_is_a_clear_error(client):
    with pytest.raises(RunFailedError) as info:
        client.trigger("duplicate-key", {}).result(timeout=30)
    assert info.value.run.error["type"] == "DuplicateTaskKeyError"
    assert "'same' used twice" in info.value.run.error["message"]


def test_unknown_job_id_raises_to_the_caller(client):
    with pytest.raises(UnknownJobError, match="no-such-job"):
        client.trigger("no-such-job", {})


def test_an_app_that_does_not_import_the_jobs_enqueues_through_the_registry(client):
    client.publish_jobs()  # what a worker does at start (the store was flushed for this test)
    enqueuer = TriggerClient("enqueuer", runs_queue="enqueuer-own-queue")  # not the workers'
    assert enqueuer.jobs == {}
    assert enqueuer.trigger("quick", {"tag": "remote"}).result(timeout=30)["tag"] == "remote"
    (h,) = enqueuer.send_event("order.placed", {"order_id": 3, "amount": 1.5}, id="remote-1")
    assert h.result(timeout=30)["total"] == 3.0


def test_a_remote_enqueuer_validates_against_the_published_schema(store_redis):
    from tests.app import client as defining

    defining.publish_jobs()  # what a worker does at start
    enqueuer = TriggerClient("enqueuer", runs_queue="enqueuer-own-queue")
    assert enqueuer.jobs == {}
    with pytest.raises(ValidationError, match=r"job 'three-tasks': payload invalid: .*'tag'"):
        enqueuer.trigger("three-tasks", {"nom": "x"})
    with pytest.raises(ValidationError, match=r"tag: 5 is not of type 'string'"):
        enqueuer.trigger("three-tasks", {"tag": 5})
    assert enqueuer.list_runs() == []  # nothing was started
    enqueuer.trigger("three-tasks", {"tag": "ok"})  # a valid one is accepted
    assert len(enqueuer.list_runs()) == 1
    # an event: the job gets a FAILURE run recording why, as for a job defined here
    (h,) = enqueuer.send_event("order.placed", {"order_id": "seven"}, id="bad-remote")
    run = h.get()
    assert run.status == "FAILURE" and run.executions == 0
    assert run.error["type"] == "ValidationError"
    assert "order_id: 'seven' is not of type 'integer'" in run.error["message"]
    assert "'amount' is a required property" in run.error["message"]


def test_invalid_job_definitions_fail_at_definition():
    c = TriggerClient("defs")

    def job(payload, io, ctx):
        return None

    with pytest.raises(ConfigurationError, match="not semver"):
        c.define_job(id="a", version="1.0", trigger=invoke_trigger())(job)
    c.define_job(id="a", version="1.0.0", trigger=invoke_trigger())(job)
    with pytest.raises(ConfigurationError, match="duplicate job id 'a'"):
        c.define_job(id="a", version="1.0.1", trigger=invoke_trigger())(job)
    with pytest.raises(ConfigurationError, match="unknown option.*retries"):
        c.define_job(id="b", version="1.0.0", trigger=invoke_trigger(), retries=3)
    with pytest.raises(ConfigurationError, match="trigger must come from"):
        c.define_job(id="c", version="1.0.0", trigger="github.issues.opened")(job)

    async def async_job(payload, io, ctx):
        return None

    with pytest.raises(ConfigurationError, match="async def"):
        c.define_job(id="d", version="1.0.0", trigger=invoke_trigger())(async_job)
    with pytest.raises(ConfigurationError, match="5 fields"):
        cron_trigger("* * *")
    with pytest.raises(ConfigurationError, match="20 to"):
        interval_trigger(5)
    with pytest.raises(ConfigurationError, match="filter.repository.full_name"):
        event_trigger("x", filter={"repository": {"full_name": "octo/hello"}})

    class NotAModel:
        pass

    with pytest.raises(ConfigurationError, match="BaseModel"):
        invoke_trigger(schema=NotAModel)  # type: ignore[arg-type]


def test_unknown_settings_are_errors(monkeypatch):
    with pytest.raises(ConfigurationError, match="max_tires"):
        TriggerClient("s", max_tires=3)
    monkeypatch.setenv("TRIGGER_CELERY_REDIS_ULR", "redis://x")
    with pytest.raises(ConfigurationError, match="TRIGGER_CELERY_REDIS_ULR"):
        TriggerClient("s")
    monkeypatch.delenv("TRIGGER_CELERY_REDIS_ULR")
    with pytest.raises(ConfigurationError, match="eta_window_s"):
        TriggerClient("s", visibility_timeout_s=5, eta_window_s=10)


class Model(BaseModel):
    n: int


def test_event_filter_selects_jobs():
    from trigger_celery._jobs import filter_matches

    flt = {"repository": {"full_name": ["octo/hello"]}, "action": ["opened"]}
    assert filter_matches(flt, {"action": "opened", "repository": {"full_name": "octo/hello"}})
    assert not filter_matches(flt, {"action": "closed", "repository": {"full_name": "octo/hello"}})
    assert not filter_matches(flt, {"action": "opened"})


def test_bad_task_keys_and_waits_fail_the_run_naming_the_problem(store_redis):
    """Executed in this process: the error is recorded on the run."""
    c = TriggerClient("keys", runs_queue="keys-unconsumed")

    @c.define_job(id="empty-key", version="1.0.0", trigger=invoke_trigger())
    def empty_key(payload, io, ctx):
        return io.run_task("", lambda: 1)

    @c.define_job(id="negative-wait", version="1.0.0", trigger=invoke_trigger())
    def negative_wait(payload, io, ctx):
        io.wait("back-in-time", seconds=-5)

    for job_id, message in (("empty-key", "a task key must be a non-empty string"),
                            ("negative-wait", "io.wait('back-in-time'): seconds must be")):
        handle = c.trigger(job_id, {})
        c.executor.execute(handle.id, 0)
        run = c.get_run(handle.id)
        assert run.status == "FAILURE" and message in run.error["message"], run.error


def test_bad_client_id_and_redis_url_are_configuration_errors():
    with pytest.raises(ConfigurationError, match="id must be a non-empty string"):
        TriggerClient("")
    with pytest.raises(ConfigurationError, match="redis_url: .*must be a Redis URL"):
        TriggerClient("x", redis_url="http://127.0.0.1:6379/0")


def test_cli_send_event_with_a_payload_failing_the_schema_exits_1(store_redis, worker_env):
    import subprocess
    import sys

    from tests.support import ROOT

    proc = subprocess.run(
        [sys.executable, "-m", "trigger_celery.cli", "-A", "tests.app:client", "send-event",
         "order.placed", "--payload", '{"order_id": "seven", "amount": 1}'],
        cwd=ROOT, env=worker_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "failed at once" in proc.stderr and "order_id" in proc.stderr


def test_dev_names_an_unreachable_redis_in_one_line_without_its_password(tmp_path, worker_env):
    import subprocess
    import sys

    from tests.support import ROOT

    env = {**worker_env, "TRIGGER_CELERY_REDIS_URL": "redis://nobody:s3cret@127.0.0.1:6379/0",
           "TRIGGER_CELERY_DEV_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "trigger_celery.cli", "-A", "tests.app:client",
                           "dev"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "cannot reach Redis at 127.0.0.1:6379/0" in proc.stderr
    assert "s3cret" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1

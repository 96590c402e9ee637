"""The testing kit's time-skipping example, as a user's test: a job that waits 24 h and retries
with a 10-minute backoff runs through a real worker and Redis in seconds of real time.
README ("Testing your jobs") quotes the test between the ``example`` markers."""

from __future__ import annotations

import time

import pytest


# example: begin
def test_reminder_a_day_later(trigger_redis_url, trigger_worker, trigger_clock, monkeypatch):
    monkeypatch.setenv("TRIGGER_CELERY_REDIS_URL", trigger_redis_url)
    monkeypatch.setenv("TRIGGER_CELERY_BROKER_URL", trigger_redis_url)
    trigger_worker("tests.kit.user_app")  # with the test clock, as trigger_clock is used
    from trigger_celery import TriggerClient

    client = TriggerClient("kit-user", runs_queue="kit-user")
    handle = client.trigger("reminder", {"user": "ada"})
    # skips the clock to each wake-up while the run only waits for it
    assert trigger_clock.run_until_done(handle, timeout=60) == {"sent_to": "ada", "attempt": 3}

    run = handle.get()
    wait, send = run.task("a-day-later"), run.task("send")
    assert wait.completed_at - wait.created_at >= 24 * 3600
    tried = [e["at"] for e in send.errors] + [send.completed_at]
    assert [b - a >= 600 for a, b in zip(tried, tried[1:], strict=False)] == [True, True]
    assert run.finished_at - run.created_at >= 24 * 3600 + 2 * 600  # on the test clock
# example: end


def test_skipped_day_takes_seconds_of_real_time(trigger_redis_url, trigger_worker, trigger_clock,
                                                monkeypatch):
    """The acceptance's time bound (generous: two shared cores), and advance() by hand."""
    monkeypatch.setenv("TRIGGER_CELERY_REDIS_URL", trigger_redis_url)
    monkeypatch.setenv("TRIGGER_CELERY_BROKER_URL", trigger_redis_url)
    trigger_worker("tests.kit.user_app")
    from trigger_celery import RunTimeoutError, TriggerClient

    client = TriggerClient("kit-user", runs_queue="kit-user")
    start = time.monotonic()
    handle = client.trigger("reminder", {"user": "bob"})
    wait_for(handle, "a-day-later", attempts=0)
    with pytest.raises(RunTimeoutError):
        handle.result(timeout=1)  # the clock does not move by itself
    trigger_clock.advance(hours=24)
    for attempts in (1, 2):  # two failed attempts, each retried 10 minutes later
        wait_for(handle, "send", attempts=attempts)
        trigger_clock.advance(minutes=10)
    assert handle.result(timeout=30)["attempt"] == 3
    assert time.monotonic() - start < 30  # a day and 20 minutes of run time


def wait_for(handle, key: str, *, attempts: int) -> None:
    """Until task ``key`` of the run waits (for the clock) after ``attempts`` attempts."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run = handle.get()
        assert not run.finished, run
        task = next((t for t in run.tasks if t.key == key), None)
        if run.status == "WAITING" and task is not None and task.status == "WAITING" \
                and task.attempts == attempts:
            return
        time.sleep(0.02)
    raise AssertionError(f"task {key!r} never waited after {attempts} attempts: {handle.get()}")

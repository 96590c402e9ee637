"""Prometheus metrics scraped from a real prefork worker (two pool processes, multiprocess mode)
while runs execute: counters move as runs start, wait, retry, defer and finish."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.core.ui.support import free_port
from tests.support import Worker
from trigger_celery import RunFailedError

APP = "tests.core.metrics.metrics_app"

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def metrics_worker(worker_env: dict[str, str]) -> Iterator[tuple[Worker, str]]:
    port = free_port()
    env = {k: v for k, v in worker_env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    w = Worker(APP, {**env, "TRIGGER_CELERY_METRICS_PORT": str(port)}, concurrency=2,
               name="metrics").wait_ready()
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url, timeout=2).raise_for_status()
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise AssertionError(f"no metrics endpoint:\n{w.output()[-3000:]}") from None
            time.sleep(0.2)
    yield w, url
    w.stop()


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Samples as ``{(name, frozenset(labels.items())): value}``."""
    text = requests.get(url, timeout=5).text
    out: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_counters_move_while_runs_execute(metrics_worker, store_redis):
    worker, url = metrics_worker
    from tests.core.metrics.metrics_app import client

    before = scrape(url)
    handle = client.trigger("m-flow", {"n": 7, "seconds": 3})

    # While the run waits: started, attempts counted, the wait counted, not finished yet.
    deadline = time.monotonic() + 60
    while not any(t.key == "pause" for t in client.get_run(handle.id).tasks):
        assert time.monotonic() < deadline, client.get_run(handle.id)
        time.sleep(0.1)
    during = scrape(url)
    assert value(during, "trigger_celery_runs_started_total", job="m-flow") == \
        value(before, "trigger_celery_runs_started_total", job="m-flow") + 1
    assert value(during, "trigger_celery_waits_total") == \
        value(before, "trigger_celery_waits_total") + 1
    assert value(during, "trigger_celery_runs_finished_total", job="m-flow", status="SUCCESS") == \
        value(before, "trigger_celery_runs_finished_total", job="m-flow", status="SUCCESS")

    assert handle.result(timeout=60) == {"pong": 7}
    after = scrape(url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("trigger_celery_runs_started_total", job="m-flow") == 1
    assert moved("trigger_celery_runs_finished_total", job="m-flow", status="SUCCESS") == 1
    assert moved("trigger_celery_run_duration_seconds_count", job="m-flow", status="SUCCESS") == 1
    # the plain task: one failure retried by policy, one success
    assert moved("trigger_celery_task_attempts_total", integration="none", outcome="retry") == 1
    assert moved("trigger_celery_task_attempts_total", integration="none", outcome="success") == 1
    # the dispatched call: rate limited once (a retry_at deferral), then a success
    assert moved("trigger_celery_task_attempts_total", integration="limited",
                 outcome="deferred") == 1
    assert moved("trigger_celery_task_attempts_total", integration="limited",
                 outcome="success") == 1
    assert moved("trigger_celery_retry_at_deferrals_total", integration="limited") == 1
    assert moved("trigger_celery_retry_at_delay_seconds_count", integration="limited") == 1
    assert moved("trigger_celery_waits_total") == 1
    assert moved("trigger_celery_wait_seconds_sum") == pytest.approx(3.0)
    # both attempts' messages (the second one an ETA retry) and every run execution message
    assert moved("trigger_celery_dispatch_latency_seconds_count", integration="limited") == 2
    assert moved("trigger_celery_queue_wait_seconds_count", queue="metrics-tests") >= 3
    assert moved("trigger_celery_queue_wait_seconds_sum", queue="metrics-tests") < 30


def test_pool_processes_add_up_and_failures_count(metrics_worker, store_redis):
    worker, url = metrics_worker
    from tests.core.metrics.metrics_app import client

    before = scrape(url)
    handles = [client.trigger("m-quick", {"i": i}) for i in range(12)]
    failing = client.trigger("m-fails", {})
    assert sorted(h.result(timeout=60) for h in handles) == list(range(12))
    with pytest.raises(RunFailedError):
        failing.result(timeout=60)
    after = scrape(url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Two pool processes executed these; the main process's endpoint adds both up.
    assert moved("trigger_celery_runs_started_total", job="m-quick") == 12
    assert moved("trigger_celery_runs_finished_total", job="m-quick", status="SUCCESS") == 12
    assert moved("trigger_celery_runs_finished_total", job="m-fails", status="FAILURE") == 1
    assert moved("trigger_celery_task_attempts_total", integration="none", outcome="failed") == 1
    pids = {line.split("pid ")[-1] for line in worker.output().splitlines()
            if "Task trigger-celery.run" in line and "succeeded" in line and "pid " in line}
    assert moved("trigger_celery_task_attempts_total", integration="none",
                 outcome="success") == 12, pids

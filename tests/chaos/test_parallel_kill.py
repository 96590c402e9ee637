"""Issue 13 item 3: a worker SIGKILLed midway through an ``io.parallel`` batch of GitHub
``issues.add_labels`` calls (``tests/parallel_app.py`` against ``tests/labels_server.py``, which
counts every request per label). The run completes with its results in item order; a call that
had completed at the kill is never made again; one in flight may be, at most once."""

from __future__ import annotations

import json
import random

from tests.chaos._harness import CHAOS_ENV, STATS, finish_all, wait_until
from tests.chaos.conftest import store_settings
from tests.labels_server import LabelsServer


def test_sigkill_midway_through_a_parallel_batch_repeats_no_completed_call(
        clean, effects, workers_for):
    from tests.parallel_app import build

    store, broker = clean.url(0), clean.url(1)
    settings = {k.removeprefix("TRIGGER_CELERY_").lower(): v for k, v in CHAOS_ENV.items()}
    client = build(redis_url=store, broker_url=broker, **settings, **store_settings(store))
    server = LabelsServer()
    try:
        labels = [f"k{i:02d}" for i in range(12)]
        delays = [0.2 + 1.8 * i / 11 for i in range(12)]  # 0.2 to 2.0 s
        random.Random(13).shuffle(delays)
        server.reset(dict(zip(labels, delays, strict=True)))
        ws = workers_for(store, broker, effects.url, GITHUB_TOKEN="ghp_CHAOSparallel0123",
                         TESTS_GITHUB_BASE_URL=server.base_url)
        first = ws.start(app="tests.parallel_app", pool="threads", concurrency=16, name="par1")
        handle = client.trigger("labels", {"issue": 3, "labels": labels})
        STATS["runs"] += 1
        wait_until(lambda: sum(server.answered.values()) >= 4, 30, "four calls answered")
        ws.kill(first)
        tasks_key = client.store.run_keys(handle.id)[1]
        at_kill = [json.loads(t) for t in client.store.redis.hvals(tasks_key)]
        done = {r["output"][0]["name"] for r in at_kill
                if r.get("kind") == "dispatched" and r["status"] == "COMPLETED"}
        in_flight = set(labels) - set(server.answered)
        assert done and in_flight, (done, in_flight)  # midway: some completed, some not
        ws.start(app="tests.parallel_app", pool="threads", concurrency=16, name="par2")
        finish_all(client, [handle.id], timeout=90)
        assert handle.result(timeout=1) == [{"index": i, "names": [label]}
                                             for i, label in enumerate(labels)]
        for label in done:
            assert server.requests[label] == 1, (label, dict(server.requests))
        assert set(server.requests) == set(labels)
        assert all(n <= 2 for n in server.requests.values()), dict(server.requests)
        STATS["raw_repeats"] += sum(n - 1 for n in server.requests.values())
    finally:
        server.stop()

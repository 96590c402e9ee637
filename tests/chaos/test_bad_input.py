"""Item 4: malformed messages on the queues, payloads failing their schema, outputs over the size
limit or not JSON, exceptions that cannot be printed or pickled. Each gives a clear error on the
run or in the worker log; the worker stays up and serves the next run; other runs go on."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.chaos._harness import STATS, finish_all, publish_raw, wait_until
from tests.chaos.conftest import make_client, store_settings
from trigger_celery import TriggerClient, ValidationError


def _headers(task: str, **extra: object) -> dict[str, object]:
    tid = str(uuid.uuid4())
    return {"lang": "py", "task": task, "id": tid, "root_id": tid, "parent_id": None,
            "group": None, "retries": 0, "eta": None, "expires": None, **extra}


def test_malformed_messages_are_refused_and_the_worker_goes_on(clean, effects, workers_for):
    store, broker = clean.url(0), clean.url(1)
    client = make_client(store, broker)
    ws = workers_for(store, broker, effects.url)
    w = ws.start(name="bad-msgs")
    bad: list[tuple[str, bytes, dict[str, object]]] = []
    for queue, task in (("trigger-celery", "trigger-celery.run"),
                        ("sidefx", "sidefx.effects.post")):
        bad += [
            (queue, b"{not json at all", _headers(task)),                       # not JSON
            (queue, b'[[], {}, {}]', _headers("no.such.task")),                 # unknown task
            (queue, b'[[], {}, {}]', _headers(task)),                           # missing fields
            (queue, b'{"no": "shape"}', _headers(task)),                        # wrong shape
            (queue, b'[["run_missing", "x"], {}, {}]', _headers(task)),         # bad values
            (queue, b'[[], {}, {}]', {}),                                       # no task header
        ]
    bad.append(("sidefx", json.dumps([[], {"run_id": "run_nope", "idem": "0" * 64,
                                           "attempt": 1, "connection": "sidefx"}, {}]).encode(),
                _headers("sidefx.effects.post")))                              # unknown run
    ok = client.trigger("five", {"tag": "alongside", "delay": 0.1}).id
    for queue, body, headers in bad:
        publish_raw(broker, queue, body, content_type="application/json", headers=headers)
    STATS["bad_messages"] += len(bad)
    after = client.trigger("quick", {"tag": "after"}).id
    STATS["runs"] += 2
    done = finish_all(client, [ok, after], timeout=60)
    assert {h["status"] for h in done.values()} == {"SUCCESS"}
    assert w.proc.poll() is None, "the worker died"
    log = w.output()
    assert "Received unregistered task of type 'no.such.task'" in log
    assert "Can't decode message body" in log or "decode" in log.lower()
    assert "missing 2 required positional arguments" in log  # trigger-celery.run()
    # valid JSON of the wrong shape: dropped with a log line (Celery alone stops the worker)
    assert "discarding malformed message of task trigger-celery.run" in log
    assert "discarding malformed message of task sidefx.effects.post" in log
    assert "Unrecoverable error" not in log
    assert "missing 4 required positional arguments" in log  # sidefx.effects.post()
    # nothing queued is left behind: every bad message was consumed, none redelivered forever
    r = clean.client(1)
    wait_until(lambda: r.llen("trigger-celery") == 0 and r.llen("sidefx") == 0, 10,
               "queues drained")


def test_payload_failing_its_schema(clean, effects, workers_for):
    store, broker = clean.url(0), clean.url(1)
    client = make_client(store, broker)
    ws = workers_for(store, broker, effects.url)
    ws.start(name="schema")
    with pytest.raises(ValidationError, match="order_id"):
        client.trigger("order", {"order_id": "seven", "amount": 1})
    assert client.list_runs(job_id="order") == []
    # an app that does not import the jobs validates against the JSON schema the workers
    # published: the same refusal, no run
    enqueuer = TriggerClient("enqueuer", redis_url=store, broker_url=broker,
                             **store_settings(store))
    wait_until(lambda: "order" in enqueuer.store.registered_jobs(), 10, "job registry")
    with pytest.raises(ValidationError, match="order_id"):
        enqueuer.trigger("order", {"order_id": "seven", "amount": 1})
    good = enqueuer.trigger("order", {"order_id": 7, "amount": 1.5}).id
    STATS["runs"] += 1
    done = finish_all(client, [good], timeout=30)
    assert done[good]["status"] == "SUCCESS"
    assert [r.id for r in client.list_runs(job_id="order")] == [good]


CASES = [
    # (job, payload, status of the task 'boom' or None, words the run's error must contain)
    ("explode-inline", {"kind": "big", "size": 5000}, "ERRORED",
     ["task 'boom'", "over the 2048-byte limit", "max_output_bytes"]),
    ("explode-op", {"kind": "big", "size": 5000}, "ERRORED",
     ["task 'boom'", "over the 2048-byte limit"]),
    ("explode-run", {"kind": "big", "size": 5000}, None,
     ["run of 'explode-run'", "over the 2048-byte limit"]),
    ("explode-inline", {"kind": "not-json"}, "ERRORED", ["task 'boom'", "not JSON"]),
    ("explode-op", {"kind": "not-json"}, "ERRORED", ["task 'boom'", "not JSON"]),
    ("explode-run", {"kind": "not-json"}, None, ["run of 'explode-run'", "not JSON"]),
    ("explode-inline", {"kind": "unprintable"}, "ERRORED", ["task 'boom'", "Unprintable"]),
    ("explode-op", {"kind": "unprintable"}, "ERRORED", ["task 'boom'", "Unprintable"]),
    ("explode-run", {"kind": "unprintable"}, None, ["Unprintable"]),
    ("explode-inline", {"kind": "socket"}, "ERRORED", ["task 'boom'", "HoldsSocket"]),
    ("explode-op", {"kind": "socket"}, "ERRORED", ["task 'boom'", "HoldsSocket"]),
    ("explode-run", {"kind": "socket"}, None, ["HoldsSocket"]),
]


def test_bad_outputs_and_bad_exceptions_fail_their_run_clearly(clean, effects, workers_for):
    store, broker = clean.url(0), clean.url(1)
    client = make_client(store, broker)
    ws = workers_for(store, broker, effects.url, TRIGGER_CELERY_MAX_OUTPUT_BYTES="2048")
    w = ws.start(concurrency=2, name="explode")
    others = [client.trigger("five", {"tag": f"ok{i}", "delay": 0.02}).id for i in range(5)]
    ids = [client.trigger(job, payload).id for job, payload, _, _ in CASES]
    after = client.trigger("quick", {"tag": "after"}).id
    STATS["runs"] += len(others) + len(ids) + 1
    done = finish_all(client, [*others, *ids, after], timeout=60)
    for rid in [*others, after]:
        assert done[rid]["status"] == "SUCCESS", done[rid]
    for rid, (job, payload, task_status, words) in zip(ids, CASES, strict=True):
        run = client.get_run(rid)
        assert run.status == "FAILURE", (job, payload, run)
        message = f"{run.error['type']}: {run.error['message']}"
        for word in words:
            assert word in message, (job, payload, message)
        if task_status:
            assert run.task("boom").status == task_status
    assert w.proc.poll() is None and "Traceback" not in w.output().split(" ready.")[-1] or \
        w.proc.poll() is None

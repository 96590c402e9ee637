"""Issue 11, item 9: ``async`` callbacks and hooks of one worker process share one event loop.

Every run of ``ask-async`` (tests/chaos/odd_app.py) awaits the real ``openai.AsyncOpenAI`` client
its module made once, in two callbacks; some runs also have an ``async`` callback that fails and an
``async`` on_error hook using the same client. One worker process runs them all, one after the
other; with a fresh loop per callback the second call failed with "Event loop is closed".
"""

from __future__ import annotations

import json

import pytest

from tests.chaos._harness import STATS, finish_all, wait_until
from tests.chaos.conftest import make_client
from trigger_celery.testing import ReplayServer

RUNS = 6


def _completion(n: int) -> bytes:
    return json.dumps({
        "id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": f"answer {n}"}}],
    }).encode()


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_async_callbacks_share_one_loop_per_process(clean, effects, workers_for, pool):
    with ReplayServer(keep_alive=True) as replay:  # connections pooled, as with the real API
        for n in range(2 * RUNS):
            replay.add("POST", "/v1/chat/completions", body=_completion(n))
        fails = range(0, RUNS, 3)
        for _ in fails:
            replay.add("GET", "/v1/models", body={"object": "list", "data": []})
        store, broker = clean.url(0), clean.url(1)
        ws = workers_for(store, broker, effects.url, CHAOS_REPLAY_URL=replay.base_url)
        # prefork with one child: one process runs every callback, one after the other;
        # threads: four threads of one process share the module's client
        w = ws.start(name=f"async-{pool}", app="tests.chaos.odd_app", pool=pool,
                     concurrency=1 if pool == "prefork" else 4)
        client = make_client(store, broker)
        wait_until(lambda: "ask-async" in client.store.registered_jobs(), 10, "job registry")
        ids = [client.trigger("ask-async", {"text": f"q{i}", "fail": i in fails}).id
               for i in range(RUNS)]
        STATS["runs"] += RUNS
        finish_all(client, ids, timeout=60)
        answers = []
        for i, rid in enumerate(ids):
            run = client.get_run(rid)
            assert run.status == "SUCCESS", (run.error, w.output()[-3000:])
            first, second, failed = run.output
            answers += [first, second]
            if i in fails:
                assert failed == "TaskFailedError"
                task = run.task("fails")
                assert task.attempts == 1 and task.error["message"] == \
                    "an async callback failed", task  # the async hook said skip_retrying
            else:
                assert failed is None
        assert sorted(answers) == sorted(f"answer {n}" for n in range(2 * RUNS))
        assert not replay.unexpected and not replay.pending()
        # the second question of each run is the first one's answer: callbacks ran in order
        asked = [r.json()["messages"][0]["content"] for r in replay.requests
                 if r.path.endswith("/chat/completions")]
        assert sum(a.startswith("answer ") for a in asked) == RUNS
        log = w.output()
        assert "Event loop is closed" not in log and "attached to a different loop" not in log
        STATS["async_callbacks"] += 2 * RUNS + 2 * len(fails)

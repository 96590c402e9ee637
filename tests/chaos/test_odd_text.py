"""Issue 11, item 8: text that is not valid Unicode.

A lone UTF-16 surrogate (valid JSON as ``"\\ud83d"``) in a payload, an event, a task output, a log
line, a task key or an API answer round-trips exactly; where it must become UTF-8 bytes (an SDK's
request body, ``str.encode``) the task fails once, without retries. The webhook receivers answer
every body they can be sent with a 2xx or a 4xx, never a 500.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from tests.chaos._harness import STATS, finish_all, wait_until
from tests.chaos.conftest import make_client
from trigger_celery import ValidationError, event_trigger
from trigger_celery.testing import ReplayServer

#: Lone surrogates (high and low), a NUL, non-ASCII text, and an ANSI escape, as JSON decodes them.
ODD: str = json.loads('"\\ud83d lone \\udc00 caf\\u00e9 \\u0000 \\u001b[31m red"')


@pytest.fixture()
def replay() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


def _odd_worker(clean: Any, effects: Any, workers_for: Any, replay: ReplayServer,
                name: str) -> tuple[Any, Any]:
    store, broker = clean.url(0), clean.url(1)
    ws = workers_for(store, broker, effects.url, CHAOS_REPLAY_URL=replay.base_url)
    w = ws.start(name=name, app="tests.chaos.odd_app")
    client = make_client(store, broker)
    wait_until(lambda: "odd-echo" in client.store.registered_jobs(), 10, "job registry")
    return client, w


def test_lone_surrogates_round_trip_or_fail_once(clean, effects, workers_for, replay):
    assert any(0xD800 <= ord(c) <= 0xDFFF for c in ODD)
    issue = b'{"number": 1, "title": "\\ud83d lone \\udc00 caf\\u00e9 \\u0000 \\u001b[31m red"}'
    replay.add("GET", "/repos/octo/hello/issues/1", body=issue)
    client, w = _odd_worker(clean, effects, workers_for, replay, "odd-text")

    echo = client.trigger("odd-echo", {"text": ODD}).id
    sent = client.send_event("chaos.odd", {"text": ODD})  # raised UnicodeEncodeError before
    inline = client.trigger("odd-encode", {"where": "inline", "text": ODD}).id
    sdk = client.trigger("odd-encode", {"where": "openai", "text": ODD}).id
    STATS["runs"] += 5  # and the run its event starts
    done = finish_all(client, [echo, inline, sdk, *(h.id for h in sent)], timeout=60)

    run = client.get_run(echo)
    assert run.status == "SUCCESS", run.error
    assert run.payload == {"text": ODD}
    assert run.output == {"text": ODD, "inline": ODD, "op": ODD, "title": ODD, "events": 1}
    assert run.task("inline").output == {"text": ODD} and run.task("inline").params == {
        "text": ODD}
    assert run.task("op").output["tag"] == ODD and run.task("issue").output["title"] == ODD
    assert run.task(ODD).output == 1
    assert [entry.message for entry in run.logs] == [ODD]
    assert run.logs[0].data == {"text": ODD}
    assert [h["status"] for h in (done[h.id] for h in sent)] == ["SUCCESS"]
    assert client.get_run(sent[0].id).output == ODD
    # the event the run sent started its own run, whose output is the text again
    event_runs = [r for r in client.list_runs(job_id="odd-event") if r.id != sent[0].id]
    assert len(event_runs) == 1
    finish_all(client, [event_runs[0].id], timeout=30)
    assert client.get_run(event_runs[0].id).output == ODD

    # where the text must become UTF-8 it cannot: one attempt, a failed run naming the task
    for rid, key in ((inline, "encode"), (sdk, "ask")):
        failed = client.get_run(rid)
        assert failed.status == "FAILURE"
        task = failed.task(key)
        assert (task.status, task.attempts) == ("ERRORED", 1), task
        assert task.error and task.error["type"] == "NonRetriableError"
        assert f"task {key!r} failed: NonRetriableError: UnicodeEncodeError: 'utf-8' codec " \
            "can't encode character '\\ud83d'" in failed.error["message"], failed.error
        assert "not valid Unicode" in failed.error["message"]
    assert not [r for r in replay.requests if r.path.endswith("/chat/completions")]
    # a name that becomes part of a Redis key is refused at once, naming it
    with pytest.raises(ValidationError, match="send_event: id"):
        client.send_event("chaos.odd", {"text": "ok"}, id="\ud83d")
    with pytest.raises(ValidationError, match="idempotency_key"):
        client.trigger("odd-echo", {"text": "ok"}, idempotency_key="\udc00")
    assert w.proc.poll() is None
    STATS["odd_text_paths"] += 9  # payload, event, inline output, params, task key, log,
    #                                API answer, dispatched output, run output
    STATS["encoding_failures_not_retried"] += 2


# -- webhook receivers ------------------------------------------------------------------------

SECRET = "odd-text-secret"
DEEP = 100_000


def _bodies() -> list[tuple[str, bytes]]:
    """(what, body): every body a receiver might be sent; objects carry an ``event_id``."""
    def obj(inner: str) -> bytes:
        head = f'"event_id": "e-{abs(hash(inner))}", "action": "opened"'
        return ("{" + head + ', "event_type": "form_response", ' + inner + "}").encode()

    return [
        ("empty", b""),
        ("invalid UTF-8", b'{"event_id": "x", "a": "\xff\xfe"}'),
        ("UTF-8 encoded surrogate", b'{"event_id": "x", "a": "\xed\xa0\xbd"}'),
        ("latin-1 text", "{\"event_id\": \"x\", \"a\": \"caf\xe9\"}".encode("latin-1")),
        ("UTF-16", '{"event_id": "x"}'.encode("utf-16")),
        ("lone surrogates", obj('"text": "\\ud83d and \\udc00"')),
        ("surrogate in a key", obj('"\\udfff": 1')),
        ("NUL and ANSI", obj('"text": "\\u0000\\u001b]8;;http://x\\u0007link"')),
        ("huge integer", obj('"n": ' + "9" * 5000)),
        ("big integer", obj('"n": ' + "9" * 4000)),
        ("huge float", obj('"n": 1e999')),
        ("NaN", obj('"n": NaN')),
        ("-Infinity", obj('"n": -Infinity')),
        ("deep arrays", b'{"event_id": "x", "a": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
        ("deep objects", b'{"event_id": "x", "a": ' + b'{"a":' * 5000 + b"1" + b"}" * 5001),
        ("array", b"[]"),
        ("string", b'"\\ud83d"'),
        ("number", b"1"),
        ("null", b"null"),
        ("not JSON", b"{event_id: x}"),
        ("event_id a number", b'{"event_id": 5}'),
        ("event_id a lone surrogate", b'{"event_id": "\\ud83d", "action": "opened"}'),
        ("event_type a list", b'{"event_id": "x", "event_type": []}'),
        ("action an object", obj('"x": 1').replace(b'"opened"', b'{"a": 1}')),
        ("duplicate keys", obj('"a": 1, "a": 2')),
    ]


def _serve(app: Callable[..., Any]) -> tuple[str, Callable[[], None]]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.server_port}/hook", server.shutdown


def test_webhook_receivers_never_answer_500(clean):
    from trigger_celery_github import webhooks as gh
    from trigger_celery_typeform import webhooks as tf

    client = make_client(clean.url(0), clean.url(1))
    seen: dict[str, Any] = {}
    for name in ("github.issues.opened", "typeform.form_response"):
        @client.define_job(id=name.replace(".", "-"), version="1.0.0",
                           trigger=event_trigger(name))
        def job(payload: Any, io: Any, ctx: Any) -> Any:
            return payload
    gh_url, gh_stop = _serve(gh.make_wsgi_app(secret=SECRET, send_event=client.send_event))
    tf_url, tf_stop = _serve(tf.make_wsgi_app(secret=SECRET, send_event=client.send_event))
    answers: dict[tuple[str, str], int] = {}
    try:
        for i, (what, body) in enumerate(_bodies()):
            r = requests.post(gh_url, data=body, timeout=30, headers={
                "X-Hub-Signature-256": gh.sign(SECRET, body), "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": f"d-{i}", "Content-Type": "application/json"})
            answers[("github", what)] = r.status_code
            r2 = requests.post(tf_url, data=body, timeout=30, headers={
                "Typeform-Signature": tf.sign(SECRET, body), "Content-Type": "application/json"})
            answers[("typeform", what)] = r2.status_code
            for resp in (r, r2):
                assert resp.headers["content-type"].startswith("application/json")
                seen[what] = resp.json()  # every answer is JSON, even for odd bodies
    finally:
        gh_stop()
        tf_stop()
    bad = {k: v for k, v in answers.items() if v >= 500 or v < 200}
    assert not bad, bad
    for receiver in ("github", "typeform"):
        for what in ("lone surrogates", "surrogate in a key", "NUL and ANSI", "big integer",
                     "duplicate keys"):
            assert answers[(receiver, what)] in (200, 202), (receiver, what, seen[what])
        for what in ("invalid UTF-8", "huge integer", "huge float", "NaN", "deep arrays",
                     "deep objects", "not JSON", "array", "number"):
            assert answers[(receiver, what)] == 400, (receiver, what)
    # an event id that cannot be a Redis key is refused (GitHub's id is its delivery header)
    assert answers[("typeform", "event_id a lone surrogate")] == 400
    assert answers[("github", "event_id a lone surrogate")] == 202
    # accepted odd text reached the store exactly as JSON decoded it
    runs = client.list_runs(job_id="github-issues-opened", limit=100)
    payloads = [r.payload for r in runs]
    assert json.loads(dict(_bodies())["lone surrogates"]) in payloads
    assert any(isinstance(p, dict) and "\udfff" in p for p in payloads)
    STATS["webhook_bodies"] += len(answers)

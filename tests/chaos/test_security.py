"""Item 5: pickle is refused; credentials never reach Redis, messages or logs; Redis URLs with a
password and ``rediss://`` (TLS) work for both the store and the broker."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.chaos._harness import STATS, RedisServer, finish_all, publish_raw, wait_until
from tests.chaos.conftest import SECRET_API_KEY, SECRET_TOKEN, make_client


class _Exploit:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):  # unpickling this runs a shell command
        return (os.system, (f"touch {self.path}",))


def _headers(task: str) -> dict[str, object]:
    tid = str(uuid.uuid4())
    return {"lang": "py", "task": task, "id": tid, "root_id": tid, "parent_id": None,
            "group": None, "retries": 0, "eta": None, "expires": None}


def test_pickled_messages_are_refused(clean, effects, workers_for, tmp_path):
    store, broker = clean.url(0), clean.url(1)
    client = make_client(store, broker)
    w = workers_for(store, broker, effects.url).start(name="pickle")
    marker = tmp_path / "pwned"
    body = pickle.dumps(((_Exploit(str(marker)),), {}, {}))
    for queue, task in (("trigger-celery", "trigger-celery.run"), ("trigger-celery", "chaos.probe"),
                        ("sidefx", "sidefx.effects.post")):
        publish_raw(broker, queue, body, content_type="application/x-python-serialize",
                    headers=_headers(task))
    # a well-formed pickled probe: it would post to the effect server if it ran
    publish_raw(broker, "trigger-celery", pickle.dumps(((1,), {}, {})),
                content_type="application/x-python-serialize", headers=_headers("chaos.probe"))
    # the same probe in JSON runs: the path works, so its absence above means refusal
    publish_raw(broker, "trigger-celery", json.dumps([[2], {}, {}]).encode(),
                content_type="application/json", headers=_headers("chaos.probe"))
    STATS["bad_messages"] += 4
    wait_until(lambda: effects.probes, 20, "the JSON probe")
    after = client.trigger("quick", {"tag": "after-pickle"}).id
    STATS["runs"] += 1
    finish_all(client, [after], timeout=30)
    assert effects.probes == [{"n": 2}]
    assert not marker.exists(), "a pickled message was unpickled"
    assert w.proc.poll() is None
    log = w.output()
    assert log.count("Refusing to deserialize untrusted content of type pickle") >= 4, log[-3000:]


def _scan_redis(server: RedisServer, db: int) -> str:
    r = server.client(db)
    r_bytes = server.client(db, decode=False)
    out = []
    for key in r.scan_iter(count=1000):
        out.append(key)
        kind = r.type(key)
        if kind == "string":
            out.append(repr(r_bytes.get(key)))
        elif kind == "hash":
            out.append(repr(r_bytes.hgetall(key)))
        elif kind == "list":
            out.append(repr(r_bytes.lrange(key, 0, -1)))
        elif kind == "set":
            out.append(repr(r_bytes.smembers(key)))
        elif kind == "zset":
            out.append(repr(r_bytes.zrange(key, 0, -1, withscores=True)))
        else:
            out.append(repr(r_bytes.dump(key)))
    return "\n".join(out)


def test_credentials_never_reach_redis_messages_or_logs(clean, effects, workers_for, tmp_path,
                                                        monkeypatch):
    store, broker = clean.url(0), clean.url(1)
    capture = tmp_path / "messages.jsonl"
    monkeypatch.setenv("CHAOS_CAPTURE_FILE", str(capture))
    client = make_client(store, broker)
    ws = workers_for(store, broker, effects.url, CHAOS_CAPTURE_FILE=str(capture))
    ws.start(concurrency=2, name="secrets")
    ids = [client.trigger("secrets", {"tag": f"s{i}"}).id for i in range(3)]
    ids += [client.trigger("five", {"tag": f"f{i}"}).id for i in range(3)]
    STATS["runs"] += len(ids)
    done = finish_all(client, ids, timeout=60)
    assert {h["status"] for h in done.values()} == {"SUCCESS"}
    # the credentials were used: the provider saw them
    seen = json.dumps(effects.headers)
    assert f"Bearer {SECRET_TOKEN}" in seen and SECRET_API_KEY in seen
    messages = capture.read_text()
    # every message was captured: run messages (this process) and dispatched tasks (workers)
    tasks = [json.loads(line)["task"] for line in messages.splitlines()]
    assert "trigger-celery.run" in tasks and "sidefx.effects.post" in tasks
    assert "oracle.answers.create" in tasks
    haystacks = {"store": _scan_redis(clean, 0), "broker": _scan_redis(clean, 1),
                 "messages": messages, "worker logs": ws.logs()}
    assert "sidefx" in haystacks["store"]  # the scan does read the records
    for where, text in haystacks.items():
        for secret in (SECRET_TOKEN, SECRET_API_KEY):
            assert secret not in text, f"a credential leaked into the {where}"


def _run_two(store: str, broker: str, effects, workers_for) -> None:
    client = make_client(store, broker)
    ws = workers_for(store, broker, effects.url)
    w = ws.start(name="url")
    ids = [client.trigger("five", {"tag": f"u{i}-{uuid.uuid4().hex[:6]}"}).id for i in range(2)]
    STATS["runs"] += 2
    done = finish_all(client, ids, timeout=60)
    assert {h["status"] for h in done.values()} == {"SUCCESS"}, done
    return w


def test_redis_url_with_a_password(effects, workers_for):
    server = RedisServer(password="chaos-redis-pw-0451")
    try:
        with pytest.raises(__import__("redis").AuthenticationError):
            __import__("redis").Redis(port=server.port).set("x", 1)
        w = _run_two(server.url(0), server.url(1), effects, workers_for)
        assert "chaos-redis-pw-0451" not in w.output()  # Celery masks it in its banner
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("tls")

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=chaos-test-ca")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return {"cert": str(d / "server.pem"), "key": str(d / "server.key"), "ca": str(d / "ca.pem")}


def test_rediss_url_with_tls(effects, workers_for, tls_files):
    server = RedisServer(tls=tls_files)
    try:
        assert server.url(0).startswith("rediss://")
        _run_two(server.url(0), server.url(1), effects, workers_for)
    finally:
        server.stop()
    assert Path(tls_files["ca"]).exists()

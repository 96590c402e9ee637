"""The chaos suite's machinery: an effect server that deduplicates like a provider, our own
``redis-server`` processes, worker supervision and the counters the summary prints."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.support import ROOT, Worker

#: What the session did; printed at its end by ``pytest_terminal_summary``.
STATS: Counter[str] = Counter()
STAT_NAMES = (
    ("runs", "runs started"),
    ("runs_completed", "runs succeeded"),
    ("runs_failed", "runs failed (bad input, as intended)"),
    ("lost_runs", "lost runs"),
    ("kills", "worker SIGKILLs"),
    ("worker_restarts", "worker (re)starts"),
    ("connections_closed", "broker connections closed"),
    ("redis_restarts", "redis-server restarts"),
    ("failovers", "Sentinel failovers (master SIGKILLed)"),
    ("raw_repeats", "raw repeated requests (in flight at a kill)"),
    ("duplicate_effects", "duplicate side effects (after dedup)"),
    ("bad_messages", "malformed messages published"),
    ("store_outages", "store outages survived"),
    ("oom_windows", "store OOM windows survived"),
    ("store_repeats", "repeated side effects from store faults"),
    ("odd_text_paths", "paths lone surrogates round-tripped"),
    ("encoding_failures_not_retried", "encoding errors failed once (no retry)"),
    ("webhook_bodies", "odd webhook bodies answered (none 500)"),
    ("async_callbacks", "async callbacks and hooks on one loop"),
    ("terminal_renders", "CLI renders checked inert"),
    ("unreadable_records", "unreadable records shown as such"),
    ("outage_lines", "poller lines for a store outage (2 each)"),
    ("peak_queue_no_consumer", "peak queue length, no-consumer case"),
    ("peak_queue_held_wait", "peak queue length, held-wait case"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the effect server ----------------------------------------------------------------------


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class EffectServer:
    """HTTP on 127.0.0.1 in a thread. ``POST /effect`` with an ``Idempotency-Key`` header: the
    first request of a key takes effect (counted per (tag, task)) and its answer is replayed for
    later ones, as Stripe or OpenAI do; ``raw`` counts every request per key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True,
                                  request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        with self.lock:
            self.raw: Counter[str] = Counter()
            self.effects: Counter[tuple[str, str]] = Counter()
            self.answers: dict[str, Any] = {}
            self.key_of: dict[tuple[str, str], set[str]] = {}
            self.headers: list[dict[str, str]] = []
            self.probes: list[Any] = []

    @Request.application
    def _app(self, request: Request) -> Response:
        body = json.loads(request.get_data() or b"null")
        if request.path == "/probe":
            with self.lock:
                self.probes.append(body)
            return Response("{}", content_type="application/json")
        key = request.headers.get("Idempotency-Key")
        if request.path != "/effect" or not key:
            return Response('{"error": "an Idempotency-Key is required"}', status=400)
        tag, task = body["tag"], body["task"]
        with self.lock:
            self.raw[key] += 1
            self.headers.append(dict(request.headers))
            self.key_of.setdefault((tag, task), set()).add(key)
            if key not in self.answers:
                self.effects[(tag, task)] += 1
                self.answers[key] = {"id": len(self.answers) + 1, "tag": tag, "task": task}
            answer = self.answers[key]
        if body.get("delay"):
            time.sleep(body["delay"])  # the answer is slow; the effect already happened
        return Response(json.dumps(answer), content_type="application/json")

    def stop(self) -> None:
        self.server.shutdown()


# -- redis-server processes -----------------------------------------------------------------


class RedisServer:
    """Our own ``redis-server`` with AOF in its own directory; restartable on the same port."""

    def __init__(self, *, fsync: str = "everysec", password: str | None = None,
                 tls: dict[str, str] | None = None, extra: list[str] | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-redis-"))
        self.port = free_port()
        self.password = password
        self.tls = tls
        self.args = ["--bind", "127.0.0.1", "--dir", str(self.dir), "--appendonly", "yes",
                     "--appendfsync", fsync, "--save", "", "--maxmemory-policy", "noeviction"]
        if password:
            self.args += ["--requirepass", password]
        self.args += extra or []
        if tls:
            self.args += ["--port", "0", "--tls-port", str(self.port),
                          "--tls-cert-file", tls["cert"], "--tls-key-file", tls["key"],
                          "--tls-ca-cert-file", tls["ca"], "--tls-auth-clients", "no"]
        else:
            self.args += ["--port", str(self.port)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def url(self, db: int) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return (f"rediss://{auth}127.0.0.1:{self.port}/{db}?ssl_cert_reqs=required"
                    f"&ssl_ca_certs={self.tls['ca']}")
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0, *, decode: bool = True) -> redis.Redis:
        return redis.Redis.from_url(self.url(db), decode_responses=decode)

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is needed by the chaos suite"
        self.log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([exe, *self.args], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                pass
            assert self.proc.poll() is None, (self.dir / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.05)

    def shutdown(self) -> None:
        """``SHUTDOWN`` (AOF flushed), as an orderly restart would."""
        try:
            self.client().shutdown()
        except redis.ConnectionError:
            pass
        assert self.proc is not None
        self.proc.wait(20)
        self.log.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(20)
        self.log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            end_process(self.proc)
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def end_process(proc: subprocess.Popen[bytes], grace_s: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``grace_s`` seconds: a test's server that is slow to shut down
    (a replica's AOF rewrite on a loaded machine) is torn down all the same, its folder removed."""
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(20)


# -- workers --------------------------------------------------------------------------------


CHAOS_ENV = {
    "TRIGGER_CELERY_LEASE_S": "3",
    "TRIGGER_CELERY_POLL_INTERVAL_S": "0.5",
    "TRIGGER_CELERY_DISPATCH_CHECK_S": "3",
}


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIGGER_CELERY_", "CHAOS_"))}
    env.update(PYTHONPATH=str(ROOT), **CHAOS_ENV)
    env.update(extra)
    return env


class Workers:
    """Starts, kills and stops ``celery -A tests.chaos.app worker`` processes; counts it all."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.all: list[Worker] = []

    def start(self, *, concurrency: int = 1, name: str = "chaos", wait: bool = True,
              app: str = "tests.chaos.app", pool: str = "prefork", queues: str | None = None,
              **env: str) -> Worker:
        w = Worker(app, {**self.env, **env}, concurrency=concurrency, name=name, pool=pool,
                   queues=queues)
        self.all.append(w)
        STATS["worker_restarts"] += 1
        return w.wait_ready() if wait else w

    def alive(self) -> list[Worker]:
        return [w for w in self.all if w.proc.poll() is None]

    def kill(self, w: Worker) -> None:
        w.kill()
        STATS["kills"] += 1

    def logs(self) -> str:
        return "\n".join(w.output() for w in self.all)

    def stop_all(self) -> None:
        for w in self.all:
            w.stop()


def wait_until(cond: Any, timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out after {timeout} s: {what}"
        time.sleep(step)


def finish_all(client: Any, run_ids: list[str], timeout: float) -> dict[str, dict[str, str]]:
    """Wait until every run finished; returns their hashes. Unfinished runs count as lost."""
    deadline = time.monotonic() + timeout
    pending = set(run_ids)
    done: dict[str, dict[str, str]] = {}
    while pending and time.monotonic() < deadline:
        pipe = client.store.redis.pipeline(transaction=False)
        ids = sorted(pending)
        for rid in ids:
            pipe.hgetall(client.store.run_key(rid))
        for rid, h in zip(ids, pipe.execute(), strict=True):
            if h.get("status") in ("SUCCESS", "FAILURE", "CANCELED"):
                done[rid] = h
                pending.discard(rid)
        if pending:
            time.sleep(0.2)
    STATS["lost_runs"] += len(pending)
    STATS["runs_completed"] += sum(h["status"] == "SUCCESS" for h in done.values())
    STATS["runs_failed"] += sum(h["status"] != "SUCCESS" for h in done.values())
    assert not pending, f"{len(pending)} runs never finished, e.g. " + ", ".join(
        f"{rid}: {client.store.get_run_hash(rid)}" for rid in sorted(pending)[:3])
    return done


def publish_raw(broker_url: str, queue: str, body: bytes, *, content_type: str,
                headers: dict[str, Any] | None = None) -> None:
    """Publish a message as-is (no serializer) to ``queue``, as a buggy or hostile client would."""
    from kombu import Connection, Exchange, Queue

    q = Queue(queue, Exchange(queue), routing_key=queue)
    with Connection(broker_url) as conn:
        conn.Producer().publish(body, exchange=q.exchange, routing_key=queue, declare=[q],
                                content_type=content_type, content_encoding="utf-8",
                                headers=headers or {}, retry=True)

"""The benchmark's surroundings: a local HTTP server, real ``celery worker`` processes, Redis
traffic counters and an RSS sampler."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import redis

from bench import config

ROOT = Path(__file__).resolve().parents[1]
BODY = json.dumps({"id": 1, "ok": True, "items": list(range(10))}).encode()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), for the machine noted with every figure."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real API over a pooled session
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        pass


def start_http_server() -> tuple[ThreadingHTTPServer, str]:
    """A JSON endpoint on 127.0.0.1 (a free port), served from a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="bench-http", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/item"


class Worker:
    """A real ``celery worker`` (prefork, 2 processes by default) in its own process group."""

    def __init__(self, app: str, name: str, *, concurrency: int = 2,
                 cmd: list[str] | None = None, side: redis.Redis | None = None,
                 ready_key: str = config.READY_KEY, env: dict[str, str] | None = None):
        """``cmd`` replaces the ``celery worker`` command (a non-Celery worker that sets the same
        readiness key, e.g. ``bench.dbos_worker``). ``side``: the Redis holding the readiness key
        ``ready_key + name`` (default: the benchmark's side database); ``env``: more environment
        variables for the worker (``BENCH_WORKER_NAME`` and ``LOAD_WORKER_NAME`` are ``name``)."""
        self.name = name
        self.ready_key = ready_key + name
        self.log_path = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
        self.side = side if side is not None else redis.Redis.from_url(config.SIDE_URL)
        self.side.delete(self.ready_key)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGER_CELERY_")} | (
            env or {})
        env.update(PYTHONPATH=str(ROOT), BENCH_WORKER_NAME=name, LOAD_WORKER_NAME=name)
        cmd = cmd or [sys.executable, "-m", "celery", "-A", app, "worker", "-l", "warning",
               "-c", str(concurrency), "-P", "prefork", "-n", f"{name}-{os.getpid()}@%h",
               "--without-mingle", "--without-gossip"]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout_s: float = 60) -> Worker:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.side.exists(self.ready_key):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.output()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"worker {self.name} not ready:\n{self.output()[-3000:]}")

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text()


class RssSampler:
    """Samples the RSS of a worker's pool processes every ``interval_s`` while in a ``with``.

    ``peak_mib``: the largest RSS seen in one pool process; ``growth_mib``: that process's peak
    minus its RSS when sampling began."""

    def __init__(self, worker: Worker, interval_s: float = 0.02):
        self.procs = worker.children()
        self.interval_s = interval_s
        self.start: dict[int, int] = {p.pid: _rss(p) for p in self.procs}
        self.peak: dict[int, int] = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        for p in self.procs:
            self.peak[p.pid] = max(self.peak[p.pid], _rss(p))

    @property
    def peak_mib(self) -> float:
        return max(self.peak.values(), default=0) / 2**20

    @property
    def growth_mib(self) -> float:
        return max((self.peak[p] - self.start[p] for p in self.peak), default=0) / 2**20


def _rss(p: psutil.Process) -> int:
    try:
        return int(p.memory_info().rss)
    except psutil.NoSuchProcess:
        return 0


class Traffic:
    """Bytes into and out of the Redis server between ``with`` entry and exit (``INFO stats``
    ``total_net_input_bytes``/``total_net_output_bytes``). Server-wide: it counts the store, the
    broker and anything else talking to that server meanwhile."""

    def __init__(self, r: redis.Redis):
        self.r = r
        self.input = self.output = 0

    def _now(self) -> tuple[int, int]:
        s = self.r.info("stats")
        return int(s["total_net_input_bytes"]), int(s["total_net_output_bytes"])

    def __enter__(self) -> Traffic:
        self._start = self._now()
        return self

    def __exit__(self, *exc: Any) -> None:
        end = self._now()
        self.input, self.output = end[0] - self._start[0], end[1] - self._start[1]

    @property
    def total(self) -> int:
        return self.input + self.output


def confirm_success(store: Any, ids: list[str], *, what: str, timeout_s: float = 60,
                    pause_s: float = 0.0) -> None:
    """Wait until every run of ``ids`` in ``store`` (a trigger-celery ``Store``) is SUCCESS,
    reading their statuses in one pipeline per look, ``pause_s`` apart (0: at once again, for
    the latency figures). Raises ``RuntimeError`` when one ended FAILURE or CANCELED (``what``
    names the runs in the message), ``TimeoutError`` after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        pipe = store.redis.pipeline(transaction=False)
        for rid in ids:
            pipe.hget(store.run_key(rid), "status")
        statuses = [s.decode() if isinstance(s, bytes) else s for s in pipe.execute()]
        if all(s == "SUCCESS" for s in statuses):
            return
        if bad := [s for s in statuses if s in ("FAILURE", "CANCELED")]:
            raise RuntimeError(f"a {what} run ended {bad[0]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} runs not SUCCESS: {statuses[:5]}")
        if pause_s:
            time.sleep(pause_s)


def other_clients(r: redis.Redis) -> int:
    """Connections to databases other than the benchmark's (they would share the counters)."""
    ours = {config.STORE_DB, config.BROKER_DB, config.SIDE_DB}
    return sum(1 for c in r.client_list() if int(c.get("db", 0)) not in ours
               and c.get("cmd") != "client|list")


_T0 = time.monotonic()


def progress(msg: str) -> None:
    """A progress line on stderr, prefixed with seconds since the benchmark started."""
    print(f"[{time.monotonic() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)

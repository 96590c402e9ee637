"""What ``min_replicas_ack`` costs: ``uv run --frozen --group bench python -m bench.replica_ack``.

Starts its own ``redis-server`` master (AOF ``everysec``, ``noeviction``) and one replica
(``--replicaof``) on free loopback ports, and measures in process, on the engine's own objects
(as :mod:`bench.micro` does), with ``min_replicas_ack`` 0 and 1 side by side, interleaved round by
round:

- **inline task**: a new ``io.run_task`` (the callback, about 20 µs of CPU, and its fenced
  checkpoint), per task, 15 rounds of 500 tasks;
- **run of one inline task**: create the run, take its lease, one inline task, finish (three of
  the four writes are followed by ``WAIT``), per run, 15 rounds of 100 runs.

The sides alternate which goes first each round. Reported per side: the best round (as
``timeit`` does: the least disturbed by other processes) and the median round; **added** is the
median of the per-round differences, so a change in the machine's load hits both sides alike.

Prints a table and writes ``bench/results/replica_ack.json``. About 15 s.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench import config
from bench.micro import new_execution
from trigger_celery import TriggerClient, invoke_trigger

ROUNDS = 15
TASKS = 500
RUNS = 100
OUT = Path(__file__).parent / "results" / "replica_ack.json"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server(folder: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _port()
    exe = shutil.which("redis-server")
    assert exe, "redis-server is needed"
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
         "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction",
         *extra], stdout=subprocess.DEVNULL)
    for _ in range(200):
        try:
            if redis.Redis(port=port).ping():
                return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def _client(port: int, acks: int) -> TriggerClient:
    client = TriggerClient(f"ack{acks}", redis_url=f"redis://127.0.0.1:{port}/0",
                           broker_url=f"redis://127.0.0.1:{port}/1", min_replicas_ack=acks,
                           key_prefix=f"ack{acks}")
    client.define_job(id="bench-inline", version="1.0.0", trigger=invoke_trigger())(
        lambda payload, io, ctx: io.run_task("t0", config.work))
    return client


def _task_us(client: TriggerClient) -> float:
    x = new_execution(client, "bench-inline")
    t = time.perf_counter_ns()
    for i in range(TASKS):
        x.io.run_task(f"t{i}", config.work)
    return (time.perf_counter_ns() - t) / TASKS / 1000


def _run_us(client: TriggerClient) -> float:
    t = time.perf_counter_ns()
    for _ in range(RUNS):
        x = new_execution(client, "bench-inline")  # create_run + acquire
        x.io.run_task("t0", config.work)
        client.executor._finish(x.run_id, x.token, "SUCCESS", "null", None)
    return (time.perf_counter_ns() - t) / RUNS / 1000


def measure() -> dict[str, Any]:
    """Both sides on one master with one replica; returns medians in µs."""
    folder = Path(tempfile.mkdtemp(prefix="bench-ack-"))
    (folder / "m").mkdir()
    (folder / "r").mkdir()
    master, port = _server(folder / "m")
    replica, _ = _server(folder / "r", "--replicaof", "127.0.0.1", str(port))
    try:
        r = redis.Redis(port=port, decode_responses=True)
        while r.info("replication").get("connected_slaves", 0) < 1:
            time.sleep(0.05)
        clients = {0: _client(port, 0), 1: _client(port, 1)}
        samples: dict[str, list[float]] = {f"{k}_{a}": [] for k in ("task", "run")
                                           for a in clients}
        for n in range(ROUNDS):
            for acks in ((0, 1) if n % 2 else (1, 0)):  # alternate: drift hits both sides
                client = clients[acks]
                samples[f"task_{acks}"].append(_task_us(client))
                samples[f"run_{acks}"].append(_run_us(client))
        rtt = []
        for _ in range(2000):
            t = time.perf_counter_ns()
            r.ping()
            rtt.append(time.perf_counter_ns() - t)
        med = {k: round(statistics.median(v), 1) for k, v in samples.items()}
        best = {k: round(min(v), 1) for k, v in samples.items()}
        added = {k: round(statistics.median(b - a for a, b in zip(
            samples[f"{k}_0"], samples[f"{k}_1"], strict=True)), 1) for k in ("task", "run")}
        return {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "redis_version": r.info("server")["redis_version"],
            "ping_us": round(statistics.median(rtt) / 1000, 1),
            "inline_task_us": {"without_wait": med["task_0"], "with_wait": med["task_1"],
                               "best_without_wait": best["task_0"],
                               "best_with_wait": best["task_1"], "added": added["task"]},
            "run_of_one_task_us": {"without_wait": med["run_0"], "with_wait": med["run_1"],
                                   "best_without_wait": best["run_0"],
                                   "best_with_wait": best["run_1"], "added": added["run"]},
            "load_average": round(os.getloadavg()[0], 1), "nproc": os.cpu_count(),
            "rounds": ROUNDS, "tasks_per_round": TASKS, "runs_per_round": RUNS,
        }
    finally:
        for proc in (replica, master):
            proc.terminate()
            proc.wait(20)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    out = measure()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"loopback PING {out['ping_us']} µs, Redis {out['redis_version']}, one replica")
    print(f"{'µs per':<22}{'ack=0 best / median':>22}{'ack=1 best / median':>22}{'added':>9}")
    for label, key in (("inline task", "inline_task_us"), ("run of 1 inline task",
                                                          "run_of_one_task_us")):
        f = out[key]
        print(f"{label:<22}{f['best_without_wait']:>12.0f} / {f['without_wait']:<7.0f}"
              f"{f['best_with_wait']:>12.0f} / {f['with_wait']:<7.0f}{f['added']:>9.0f}")
    print(f"(added: median of per-round differences; load average {out['load_average']} "
          f"on {out['nproc']} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

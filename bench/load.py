"""Many workers: ``uv run --frozen --group bench python -m bench.load`` (issue 15, item 4).

Starts its own store (``redis-server``, AOF ``appendfsync everysec``, ``noeviction``, a free
loopback port) and a second ``redis-server`` for its bookkeeping (done signals, readiness), so
that the store's counters hold the store's traffic alone; RabbitMQ is the broker
(``LOAD_AMQP_URL``, default ``amqp://guest:guest@127.0.0.1:5672//``), on queues named for this
run (``load-runs-<tag>``, ``load-http-<tag>``, deleted at the end). Then 2, 4 and 8 ``celery
worker`` processes (``--pool prefork --concurrency 1``), each in its own process group
(``start_new_session``) with its own node name and hostname (``-n load<i>-<tag>@load-host-<i>``),
added to the running ones step by step.

At each worker count, for each workload (``load-inline``: runs of one inline task;
``load-mixed``: runs of ten tasks, eight inline and two dispatched HTTP calls to a local server,
see :mod:`bench.load_app`), this process keeps ``in-flight-per-worker × workers`` runs submitted
and not yet finished (``client.trigger``; a new one as each finishes), lets ``--warmup``
seconds pass, then counts over ``--window`` seconds (wall clock):

- runs/s and tasks/s finished in the window, p50 latency (submission to the done signal) of the
  runs submitted and finished in it (closed loop: it includes the queueing of ``in_flight``);
- the store's round trips (``INFO stats`` ``total_reads_processed``: one per request or
  pipeline the server read), commands (``total_commands_processed``, including those run inside
  Lua scripts), script calls (``EVALSHA``/``EVAL``/``FCALL``) and bytes in + out
  (``total_net_input_bytes``/``total_net_output_bytes``), per run and per task; everything the
  workers send to the store counts, their pollers' background rounds included;
- CPU, in cores (CPU seconds over wall seconds): the store (``INFO cpu`` ``used_cpu_sys`` +
  ``used_cpu_user``, the whole process), the workers (every process of their groups), this
  client, the side server, RabbitMQ (``beam.smp``, when found) and the whole machine
  (``/proc/stat`` busy time; on a shared machine other users' work counts in it).

Then it drains the runs in flight and checks that every run it submitted ended ``SUCCESS``.

**Capacity model**: per workload, the store's CPU seconds per run (median over the worker
counts); one Redis core carries ``1 / that`` runs/s (× tasks per run: tasks/s); a load of L runs/s
needs ``ceil(L / (0.7 × runs per core))`` stores (shards), each kept at ≤ 70% of a core.

Prints tables and writes ``bench/LOAD.json`` (``--out`` to change it; ``--quick``: 2 workers,
1 s warm-up, 3 s window, written to ``bench/results/load-quick.json``). ``--markdown FILE``
prints the tables ``docs/deploy.md`` quotes from a saved result and exits.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import celery as celery_pkg
import psutil
import redis

from bench.infra import ROOT, Worker, confirm_success, cpu_model, progress, start_http_server
from bench.replica_ack import _server

OUT = Path(__file__).parent / "LOAD.json"
QUICK_OUT = Path(__file__).parent / "results" / "load-quick.json"
AMQP_URL = os.environ.get("LOAD_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
CORE_BUDGET = 0.7  # a store shard is planned at most this busy (fraction of one core)
TARGETS = (1_000, 10_000, 100_000)  # runs/s for the shard table
GAIN = 1.10  # more workers "raise throughput" when the runs/s grow by at least 10%
WORKLOADS = {  # name -> (job id, tasks per run, dispatched tasks per run)
    "inline-1": ("load-inline", 1, 0),
    "mixed-10": ("load-mixed", 10, 2),
}


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _proc_cpu(procs: list[psutil.Process]) -> float:
    """CPU seconds (user + system) of the processes that are still there."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _broker_procs() -> list[psutil.Process]:
    """RabbitMQ's Erlang VM, if this machine runs it (read-only: its CPU time)."""
    out = []
    for p in psutil.process_iter(["name"]):
        if p.info["name"] == "beam.smp":
            out.append(p)
    return out


class Snapshot:
    """Counters at one instant: the store's INFO, CPU times of the parts and of the machine."""

    def __init__(self, store: redis.Redis, parts: dict[str, list[psutil.Process]]):
        self.t = time.perf_counter()
        info = store.info("all")
        self.reads = int(info["total_reads_processed"])
        self.commands = int(info["total_commands_processed"])
        self.scripts = sum(int(info.get(f"cmdstat_{c}", {}).get("calls", 0))
                           for c in ("evalsha", "eval", "fcall", "evalsha_ro", "eval_ro"))
        self.bytes_in = int(info["total_net_input_bytes"])
        self.bytes_out = int(info["total_net_output_bytes"])
        self.store_cpu = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        self.cpu = {name: _proc_cpu(procs) for name, procs in parts.items()}
        m = psutil.cpu_times()
        self.machine_total = sum(m)
        self.machine_idle = m.idle + getattr(m, "iowait", 0.0)


class Load:
    """One load test: servers, workers, the client app, and the measurements."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.tag = uuid.uuid4().hex[:8]
        self.folder = Path(tempfile.mkdtemp(prefix="bench-load-"))
        (self.folder / "store").mkdir()
        (self.folder / "side").mkdir()
        self.store_proc, store_port = _server(self.folder / "store")
        self.side_proc, side_port = _server(self.folder / "side", "--appendonly", "no")
        self.store_url = f"redis://127.0.0.1:{store_port}/0"
        self.side_url = f"redis://127.0.0.1:{side_port}/0"
        os.environ.update(LOAD_STORE_URL=self.store_url, LOAD_SIDE_URL=self.side_url,
                          LOAD_BROKER_URL=AMQP_URL, LOAD_TAG=self.tag)
        from bench import load_app  # reads the environment above at import

        self.app = load_app
        self.store = redis.Redis.from_url(self.store_url)
        self.side = redis.Redis.from_url(self.side_url)
        self.workers: list[Worker] = []
        self.http, self.url = start_http_server()
        self.client_proc = psutil.Process()

    # -- workers -------------------------------------------------------------------------------

    def grow(self, n: int) -> None:
        """Start workers until ``n`` run, each in its own process group, then wait for them."""
        new = []
        while len(self.workers) < n:
            i = len(self.workers) + 1
            name = f"load{i}-{self.tag}"
            cmd = [sys.executable, "-m", "celery", "-A", "bench.load_app:celery", "worker",
                   "-l", "warning", "--pool", "prefork", "--concurrency", "1",
                   "-n", f"{name}@load-host-{i}", "-Q",
                   f"{self.app.RUNS_QUEUE},{self.app.HTTP_QUEUE}",
                   "--without-mingle", "--without-gossip"]
            w = Worker("bench.load_app:celery", name, cmd=cmd, side=self.side,
                       ready_key=self.app.READY_KEY,
                       env={k: os.environ[k] for k in ("LOAD_STORE_URL", "LOAD_SIDE_URL",
                                                       "LOAD_BROKER_URL", "LOAD_TAG")})
            self.workers.append(w)
            new.append(w)
        for w in new:
            w.wait_ready(120)

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        self.http.shutdown()
        self._delete_queues()
        for proc in (self.store_proc, self.side_proc):
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _delete_queues(self) -> None:
        from kombu import Connection, Exchange, Queue

        try:
            with Connection(AMQP_URL, connect_timeout=5) as conn:
                ch = conn.channel()
                for name in (self.app.RUNS_QUEUE, self.app.HTTP_QUEUE):
                    Queue(name, Exchange(name), routing_key=name, channel=ch).delete()
                    Exchange(name, channel=ch).delete()
        except Exception as exc:  # noqa: BLE001 - cleanup: say so and go on
            progress(f"could not delete the RabbitMQ queues of this run: {exc!r}")

    # -- one measurement -----------------------------------------------------------------------

    def _parts(self) -> dict[str, list[psutil.Process]]:
        return {
            "workers": [p for w in self.workers for p in _tree(w.proc.pid)],
            "client": [self.client_proc],
            "side": _tree(self.side_proc.pid),
            "broker": _broker_procs(),
        }

    def measure(self, workload: str) -> dict[str, Any]:
        job, tasks, dispatched = WORKLOADS[workload]
        n = len(self.workers)
        in_flight = self.args.in_flight_per_worker * n
        payload = {"url": self.url}
        self.side.delete(self.app.DONE_KEY)
        submitted: dict[str, float] = {}
        every: list[str] = []
        parts = self._parts()
        load_start = _loadavg()
        t_start = time.perf_counter()
        t_window = t_start + self.args.warmup
        t_end = t_window + self.args.window
        first = last = None
        done_in_window = 0
        latencies: list[float] = []
        last_done = t_start
        while True:
            now = time.perf_counter()
            if first is None and now >= t_window:
                first = Snapshot(self.store, parts)
            if first is not None and now >= t_end:
                last = Snapshot(self.store, parts)
                break
            while len(submitted) < in_flight:
                rid = self.app.client.trigger(job, payload).id
                submitted[rid] = time.perf_counter()
                every.append(rid)
            got = self.side.blpop([self.app.DONE_KEY], timeout=1)
            t = time.perf_counter()
            if got is None:
                if t - last_done > 60:
                    raise TimeoutError("no run finished for 60 s (see the worker logs)")
                continue
            last_done = t
            sent = submitted.pop(got[1].decode(), None)
            if sent is None:
                continue  # a redelivered run's second done signal
            if first is not None:
                done_in_window += 1
                if sent >= first.t:
                    latencies.append((t - sent) * 1000)
        self._drain(submitted)
        self._confirm(every)
        assert first is not None and last is not None
        wall = last.t - first.t
        runs = done_in_window
        per_run = max(runs, 1)
        machine = last.machine_total - first.machine_total
        store = {
            "cores": round((last.store_cpu - first.store_cpu) / wall, 3),
            "round_trips_per_run": round((last.reads - first.reads) / per_run, 1),
            "round_trips_per_task": round((last.reads - first.reads) / per_run / tasks, 2),
            "commands_per_run": round((last.commands - first.commands) / per_run, 1),
            "scripts_per_run": round((last.scripts - first.scripts) / per_run, 1),
            "bytes_in_per_run": round((last.bytes_in - first.bytes_in) / per_run),
            "bytes_out_per_run": round((last.bytes_out - first.bytes_out) / per_run),
        }
        store["bytes_per_run"] = store["bytes_in_per_run"] + store["bytes_out_per_run"]
        store["bytes_per_task"] = round(store["bytes_per_run"] / tasks)
        cpu = {name: round((last.cpu[name] - first.cpu[name]) / wall, 3) for name in parts}
        cpu["machine"] = round((machine - (last.machine_idle - first.machine_idle))
                               / machine * (os.cpu_count() or 1), 3) if machine else 0.0
        # what the machine spent outside this load test (other users' work, the kernel)
        cpu["other"] = round(max(0.0, cpu["machine"] - store["cores"] - sum(
            cpu[name] for name in parts)), 3)
        return {
            "workload": workload, "tasks_per_run": tasks, "dispatched_per_run": dispatched,
            "workers": n, "in_flight": in_flight, "window_s": round(wall, 2), "runs": runs,
            "runs_per_s": round(runs / wall, 1), "tasks_per_s": round(runs * tasks / wall, 1),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "store": store, "cpu_cores": cpu,
            "loadavg_start": load_start, "loadavg_end": _loadavg(),
        }

    def _drain(self, submitted: dict[str, float], timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while submitted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(submitted)} runs did not finish after the window")
            got = self.side.blpop([self.app.DONE_KEY], timeout=1)
            if got is not None:
                submitted.pop(got[1].decode(), None)

    def _confirm(self, ids: list[str], timeout_s: float = 60) -> None:
        """Every run submitted ended SUCCESS (the done signal comes just before the finish)."""
        confirm_success(self.app.client.store, ids, what="load-test", timeout_s=timeout_s,
                        pause_s=0.1)


# -- results -----------------------------------------------------------------------------------


def saturation(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Per workload: where adding workers stopped raising runs/s by ``GAIN``, and why."""
    out: dict[str, Any] = {}
    for workload in WORKLOADS:
        pts = sorted((p for p in points if p["workload"] == workload), key=lambda p: p["workers"])
        if not pts:
            continue
        best = max(pts, key=lambda p: p["runs_per_s"])
        flat_at = next((b["workers"] for a, b in zip(pts, pts[1:], strict=False)
                        if b["runs_per_s"] < a["runs_per_s"] * GAIN), None)
        nproc = os.cpu_count() or 1
        why = []
        if best["cpu_cores"]["machine"] >= 0.9 * nproc:
            why.append(f"machine CPU {best['cpu_cores']['machine']:.2f} of {nproc} cores busy")
        if best["store"]["cores"] >= 0.9:
            why.append(f"store {best['store']['cores']:.2f} of a core")
        out[workload] = {
            "peak_workers": best["workers"], "peak_runs_per_s": best["runs_per_s"],
            "peak_tasks_per_s": best["tasks_per_s"],
            "flat_from_workers": flat_at,
            "limit": "; ".join(why) or "neither the machine's CPU nor the store at 90%",
        }
    return out


def capacity(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Per workload: the store's CPU per run, runs/s and tasks/s one Redis core carries, and
    stores (shards) needed at ``CORE_BUDGET`` of a core each for ``TARGETS`` runs/s."""
    out: dict[str, Any] = {}
    for workload, (_, tasks, _) in WORKLOADS.items():
        pts = [p for p in points if p["workload"] == workload and p["runs_per_s"] > 0]
        if not pts:
            continue
        core_s = statistics.median(p["store"]["cores"] / p["runs_per_s"] for p in pts)
        worker_s = statistics.median(p["cpu_cores"]["workers"] / p["runs_per_s"] for p in pts)
        client_s = statistics.median(p["cpu_cores"]["client"] / p["runs_per_s"] for p in pts)
        runs_per_core = 1 / core_s if core_s > 0 else math.inf
        out[workload] = {
            "store_cpu_us_per_run": round(core_s * 1e6, 1),
            "worker_cpu_us_per_run": round(worker_s * 1e6, 1),
            "client_cpu_us_per_run": round(client_s * 1e6, 1),
            "worker_cores_per_store_core": round(worker_s / core_s, 1) if core_s else None,
            "runs_per_core": round(runs_per_core),
            "tasks_per_core": round(runs_per_core * tasks),
            "shards": {str(t): math.ceil(t / (CORE_BUDGET * runs_per_core)) for t in TARGETS},
        }
    return out


def _n(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def markdown(result: dict[str, Any]) -> str:
    """The tables ``docs/deploy.md`` quotes, rendered from a load test's result."""
    m = result["meta"]
    lines = [
        f"Measured {m['date']} on {m['cpu']}, `nproc` = {m['nproc']} (workers, client, store, "
        f"RabbitMQ and other engineers' tests share the cores), Redis {m['redis_version']}, "
        f"Celery {m['celery_version']}, Python {m['python']}; load average (1/5/15 min) "
        f"{' / '.join(map(str, m['loadavg_start']))} at start, "
        f"{' / '.join(map(str, m['loadavg_end']))} at end. "
        f"{m['warmup_s']:g} s warm-up and {m['window_s']:g} s window per point, "
        f"{m['in_flight_per_worker']} runs in flight per worker.",
        "",
        "| workload | workers | runs/s | tasks/s | p50 ms | store cores | round trips / run "
        "| / task | store bytes / run | / task | cores: workers / client / RabbitMQ / other "
        "| machine cores busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in result["points"]:
        s, c = p["store"], p["cpu_cores"]
        lines.append(
            f"| {p['workload']} | {p['workers']} | {_n(p['runs_per_s'])} | {_n(p['tasks_per_s'])}"
            f" | {p['p50_ms']} | {s['cores']:.2f} | {s['round_trips_per_run']:g} "
            f"| {s['round_trips_per_task']:g} | {s['bytes_per_run']:,} | {s['bytes_per_task']:,} "
            f"| {c['workers']:.2f} / {c['client']:.2f} / {c['broker']:.2f} / {c['other']:.2f} "
            f"| {c['machine']:.2f} |")
    lines += ["", "| workload | CPU µs / run: store / workers / client | runs/s per Redis core "
              "| tasks/s per Redis core | worker cores per Redis core "
              + "".join(f"| shards for {t:,} runs/s " for t in TARGETS) + "|",
              "|---|---:|---:|---:|---:" + "|---:" * len(TARGETS) + "|"]
    for workload, c in result["capacity"].items():
        lines.append(f"| {workload} | {c['store_cpu_us_per_run']:,.0f} / "
                     f"{c['worker_cpu_us_per_run']:,.0f} / {c['client_cpu_us_per_run']:,.0f} "
                     f"| {c['runs_per_core']:,} | {c['tasks_per_core']:,} "
                     f"| {c['worker_cores_per_store_core']} "
                     + "".join(f"| {c['shards'][str(t)]:,} " for t in TARGETS) + "|")
    return "\n".join(lines) + "\n"


def _print(result: dict[str, Any]) -> None:
    print(markdown(result))
    for workload, s in result["saturation"].items():
        flat = (f"no gain of {GAIN - 1:.0%} from {s['flat_from_workers']} workers on"
                if s["flat_from_workers"] else "still rising at the last count")
        print(f"{workload}: peak {s['peak_runs_per_s']:g} runs/s at {s['peak_workers']} workers; "
              f"{flat}; at the peak: {s['limit']}")


@contextmanager
def _load(args: argparse.Namespace) -> Iterator[Load]:
    load = Load(args)
    try:
        yield load
    finally:
        load.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="2,4,8", help="worker counts, comma-separated")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds before each window")
    ap.add_argument("--window", type=float, default=10.0, help="seconds counted per point")
    ap.add_argument("--in-flight-per-worker", type=int, default=4)
    ap.add_argument("--quick", action="store_true",
                    help="2 workers, 1 s warm-up, 3 s window (a smoke test; figures meaningless)")
    ap.add_argument("--out", type=Path, default=None, help="where to write the JSON result")
    ap.add_argument("--markdown", type=Path, default=None, metavar="FILE",
                    help="print the tables of a saved result and exit")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())), end="")
        return 0
    if args.quick:
        args.workers, args.warmup, args.window = "2", 1.0, 3.0
    out_path = args.out or (QUICK_OUT if args.quick else OUT)
    counts = sorted({int(x) for x in args.workers.split(",")})
    workloads = [w.strip() for w in args.workloads.split(",")]
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"--workloads: unknown workload {w!r} (known: {', '.join(WORKLOADS)})")
    started = time.monotonic()
    meta: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": os.cpu_count(),
        "cpu": cpu_model(), "python": sys.version.split()[0],
        "celery_version": celery_pkg.__version__, "command": "python -m bench.load "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "broker": "RabbitMQ", "store": "redis-server, AOF appendfsync everysec, own process",
        "pool": "prefork --concurrency 1 per worker", "warmup_s": args.warmup,
        "window_s": args.window, "in_flight_per_worker": args.in_flight_per_worker,
        "loadavg_start": _loadavg(), "core_budget": CORE_BUDGET,
    }
    if not args.quick and (counts != [2, 4, 8] or workloads != list(WORKLOADS)):
        meta["partial"] = True  # not the full test docs/deploy.md quotes
    points: list[dict[str, Any]] = []
    with _load(args) as load:
        meta["redis_version"] = load.store.info("server")["redis_version"]
        meta["tag"] = load.tag  # the queues were load-runs-<tag> and load-http-<tag>
        for n in counts:
            progress(f"starting workers up to {n} ...")
            load.grow(n)
            for workload in workloads:
                progress(f"  {n} workers, {workload} ...")
                p = load.measure(workload)
                progress(f"    {p['runs_per_s']} runs/s, store {p['store']['cores']} cores, "
                         f"machine {p['cpu_cores']['machine']} cores busy")
                points.append(p)
    meta["loadavg_end"] = _loadavg()
    meta["duration_s"] = round(time.monotonic() - started, 1)
    result = {"meta": meta, "points": points, "saturation": saturation(points),
              "capacity": capacity(points)}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    _print(result)
    print(f"wrote {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path} "
          f"in {meta['duration_s']:g} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``uv run --frozen --group bench python -m bench``: every benchmark, within a 5-minute budget.

Order: in-process costs first (no workers competing for the cores), then the raw Celery
baselines on their own worker, then trigger-celery on its worker with the same settings, then the
runs of many tasks. Results go to stdout, ``bench/results/latest.json`` (+ ``bench/RESULTS.json``)
and ``bench/results/runtime.png`` (+ ``bench/runtime.png``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

import celery
import redis

from bench import config, micro, report, scenarios
from bench.infra import Worker, cpu_model, other_clients, progress, start_http_server

BUDGET_S = 270  # the whole command must stay under 5 minutes
#: left for the DBOS peer when the dispatched runs and the interleaved rounds decide what fits
#: (it took 135 s on a two-core VM where one Celery hop took 3.5 ms, 2026-11-30)
PEER_RESERVE_S = 140
#: trigger-celery's second worker configuration in the peer comparison: pool processes of one
#: ``celery worker`` sized for I/O-bound work (the runs wait on Redis round trips and, under
#: ``appendfsync always``, on its fsync), as DBOS gets its tuned polling and a second process.
PEER_IO_CONCURRENCY = 8


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--in-flight", type=int, default=16, help="runs in flight (throughput)")
    ap.add_argument("--total", type=int, default=200, help="runs per throughput measurement")
    ap.add_argument("--samples", type=int, default=150, help="runs per latency measurement")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of each side")
    ap.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
    ap.add_argument("--max-dispatch", type=int, default=1000, help="largest dispatched run")
    ap.add_argument("--dbos", action=argparse.BooleanOptionalAction, default=None,
                    help="the DBOS Transact peer (default: on when PostgreSQL answers)")
    ap.add_argument("--peer-total", type=int, default=100,
                    help="units per throughput measurement in the peer comparison")
    ap.add_argument("--peer-samples", type=int, default=30,
                    help="latency samples per figure in the peer comparison")
    args = ap.parse_args(argv)
    started = time.monotonic()

    side = redis.Redis.from_url(config.SIDE_URL)
    for db in (config.STORE_DB, config.BROKER_DB, config.SIDE_DB):
        redis.Redis.from_url(f"{config.REDIS_BASE}/{db}").flushdb()
    from bench import app  # the client reads its settings at import

    server, url = start_http_server()
    r: dict[str, Any] = {"meta": {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "nproc": os.cpu_count(),
        "cpu": cpu_model(), "python": sys.version.split()[0], "celery_version": celery.__version__,
        "redis_version": side.info("server")["redis_version"], "concurrency": args.concurrency,
        "in_flight": args.in_flight, "total": args.total, "samples": args.samples,
        "rounds": args.rounds, "peer_total": args.peer_total, "peer_samples": args.peer_samples,
        "command": "uv run --frozen --group bench python -m bench",
        "store": config.STORE_URL, "broker": config.BROKER_URL,
        "loadavg_start": round(os.getloadavg()[0], 2), "other_clients_start": other_clients(side),
    }}

    progress("in-process costs ...")
    r["micro"] = {**micro.redis_rtt(app.client), **micro.inline_costs(app.client),
                  **micro.dispatched_lookup(app.client, url),
                  "tracemalloc_kib": {str(k): v for k, v in
                                      micro.inline_memory(app.client, (10, 100, 1000)).items()}}
    for db in (config.STORE_DB, config.BROKER_DB):  # the runs made in process must not execute
        redis.Redis.from_url(f"{config.REDIS_BASE}/{db}").flushdb()

    progress("raw Celery and trigger-celery side by side ...")
    raw_w = Worker("bench.raw_app:raw", "raw", concurrency=args.concurrency)
    w = Worker("bench.app:celery", "trigger", concurrency=args.concurrency)
    try:
        raw_w.wait_ready()
        w.wait_ready()
        m = scenarios.measure(
            {"raw_task": scenarios.raw_task(), "raw_hop": scenarios.raw_hop(),
             "inline_run": scenarios.inline_run(),
             "raw_chain": scenarios.raw_chain(url), "dispatch_run": scenarios.dispatch_run(url)},
            in_flight=args.in_flight, total=args.total, samples=args.samples,
            rounds=args.rounds)
        r["baseline"] = {k: m[k] for k in ("raw_task", "raw_hop", "raw_chain")}
        r["trigger"] = {k: m[k] for k in ("inline_run", "dispatch_run")}
        progress("runs of many tasks ...")
        cont = _continuation(raw_w, url, args.max_dispatch)
        reserve = PEER_RESERVE_S if args.dbos is not False else 0
        r["scale"] = _scale(w, url, args.max_dispatch, started, reserve_s=reserve)
        r["scale"]["continuation"] = cont
        rounds = _rounds_that_fit(r["scale"]["dispatch"], cont, started, reserve)
        if rounds:
            r["scale"]["long_rounds"] = _long_rounds(w, raw_w, url, rounds)
        elif any(x["n"] == LONG_N for x in r["scale"]["dispatch"]):
            r["scale"]["notes"].append(
                f"interleaved rounds of {LONG_N} skipped: none fits the 5-minute budget; the "
                "ratio is the single pair above")
        raw_w.stop()
        try:
            r["peer"] = _peer(args, w)
        except Exception as e:  # the peer must not cost the rest of the figures
            r["peer"] = {"skipped": f"DBOS peer failed: {' '.join(str(e).split())[:300]!r} "
                                    f"({type(e).__name__})"}
            progress(r["peer"]["skipped"])
    finally:
        raw_w.stop()
        w.stop()
    r["meta"]["other_clients_end"] = other_clients(side)
    r["meta"]["loadavg_end"] = round(os.getloadavg()[0], 2)
    server.shutdown()

    b, t = r["baseline"], r["trigger"]
    hop = scenarios.ratio(b["raw_hop"], b["raw_task"])
    inline = scenarios.ratio(t["inline_run"], b["raw_task"])
    dispatch = scenarios.ratio(t["dispatch_run"], b["raw_chain"])
    for x in b.values():
        x.pop("latency_ms", None)
    r["ratios"] = {
        "inline_throughput": inline["throughput"], "dispatch_throughput": dispatch["throughput"],
        "inline_throughput_rounds": inline["throughput_rounds"],
        "dispatch_throughput_rounds": dispatch["throughput_rounds"],
        "inline_added_p50_ms": inline["added_p50_ms"],
        "dispatch_added_p50_ms": dispatch["added_p50_ms"],
        "celery_hop_p50_ms": hop["added_p50_ms"],
    }
    r["targets"] = report.targets(r)
    r["meta"]["duration_s"] = round(time.monotonic() - started, 1)
    report.print_table(r)
    report.write_json(r, report.HERE / "results" / "latest.json", report.HERE / "RESULTS.json")
    report.plot(r, report.HERE / "results" / "runtime.png", report.HERE / "runtime.png")
    print(f"wrote bench/results/latest.json, bench/RESULTS.json, bench/results/runtime.png, "
          f"bench/runtime.png in {r['meta']['duration_s']} s")
    return 0


DISPATCH_SIZES = (10, 100, 300, 1000)  # 100, 300, 1,000: the Redis bytes growth fit


LONG_N, LONG_ROUNDS = 1000, 3


def _rounds_that_fit(dispatch: list[dict[str, Any]], cont: list[dict[str, Any]],
                     started: float, reserve_s: float) -> int:
    """How many of the ``LONG_ROUNDS`` interleaved rounds of :func:`_long_rounds` fit the
    budget (``BUDGET_S`` less ``reserve_s`` for the peer), a round costing what the single runs
    of ``LONG_N`` dispatched tasks and continuation calls just took, plus their set-up. On a
    slow machine fewer rounds (or none: the report then takes that single pair) keep the whole
    command under 5 minutes."""
    d = next((x["time_s"] for x in dispatch if x["n"] == LONG_N), None)
    c = next((x["time_s"] for x in cont if x["n"] == LONG_N), None)
    if d is None or c is None:
        return 0
    left = BUDGET_S - reserve_s - (time.monotonic() - started)
    return max(0, min(LONG_ROUNDS, int(left // (d + c + 2.0))))


def _long_rounds(w: Worker, raw_w: Worker, url: str, count: int) -> dict[str, Any]:
    """The run of 1,000 dispatched tasks against the raw continuation of 1,000 calls, measured
    again in ``count`` interleaved rounds (one of each per round, which goes first
    alternating): the target's ratio is the median of the per-round ratios, as for throughput,
    so a change in the machine's load weighs on both sides."""
    rounds = []
    for i in range(count):
        progress(f"  round {i + 1} of {count}: run of {LONG_N} dispatched tasks and raw "
                 f"continuation of {LONG_N} calls")
        sides = [("dispatch", scenarios.dispatch_run(url, LONG_N), w),
                 ("continuation", scenarios.raw_continuation(url, LONG_N), raw_w)]
        times = {name: scenarios.scale_run(side, worker, LONG_N)["time_s"]
                 for name, side, worker in (sides if i % 2 == 0 else sides[::-1])}
        rounds.append({**times, "ratio": round(times["dispatch"] / times["continuation"], 3)})
    return {"n": LONG_N, "rounds": rounds,
            "ratio": statistics.median(x["ratio"] for x in rounds)}


def _continuation(raw_w: Worker, url: str, max_dispatch: int) -> list[dict[str, Any]]:
    """Raw Celery's hand-written continuation making the same calls as a dispatched run."""
    out = []
    for n in DISPATCH_SIZES:
        if n > max_dispatch:
            break
        progress(f"  raw continuation of {n} calls")
        out.append(scenarios.scale_run(scenarios.raw_continuation(url, n), raw_w, n,
                                       repeats=3 if n <= 100 else 1))
    return out


def _peer(args: argparse.Namespace, w: Worker) -> dict[str, Any]:
    """trigger-celery inline runs (AOF everysec, always) against DBOS Transact (see
    ``dbos_peer``)."""
    from bench import dbos_peer

    out: dict[str, Any] = {"notes": []}
    why = dbos_peer.pg_unavailable() if args.dbos is not False else "--no-dbos"
    if why:
        out["skipped"] = f"DBOS peer skipped: {why}"
        progress(out["skipped"])
        return out
    sizes = (1, 10)
    # trigger-celery before and after DBOS (half the samples each), so that a change in the
    # machine's load over the DBOS minutes weighs on both sides; two worker configurations
    # (the bench's -c and PEER_IO_CONCURRENCY), taken c, c8 before and c8, c after
    ours: dict[str, Any] = {}
    half = {"before": (args.peer_samples + 1) // 2, "after": args.peer_samples // 2}
    order = {"before": (args.concurrency, PEER_IO_CONCURRENCY),
             "after": (PEER_IO_CONCURRENCY, args.concurrency)}
    for when in ("before", "after"):
        if when == "after":
            progress("peer: DBOS Transact ...")
            with dbos_peer.fresh_database() as db:
                out["dbos"] = dbos_peer.peer(db, in_flight=args.in_flight, total=args.peer_total,
                                             samples=args.peer_samples, sizes=sizes,
                                             scale=(10, 100))
        for c in order[when]:
            progress(f"peer: trigger-celery inline runs, celery -c {c}, appendfsync everysec / "
                     f"always ({when}) ...")
            if c == args.concurrency and w.proc.poll() is None:
                own = w
            else:
                w.stop()  # one trigger worker at a time: the runs go to the one measured
                own = Worker("bench.app:celery", f"trigger-c{c}", concurrency=c).wait_ready()
            try:
                _, notes = dbos_peer.ours(in_flight=args.in_flight, total=args.peer_total,
                                          samples=half[when], sizes=sizes, acc=ours,
                                          config=f"celery -c {c}")
            finally:
                if own is not w:
                    own.stop()
            out["notes"] += [n for n in notes if n not in out["notes"]]
    out["trigger"] = {k: dbos_peer.summary(v) if "/" in k else v for k, v in ours.items()}
    import dbos

    out["dbos_version"] = getattr(dbos, "__version__", None) or _dist_version("dbos")
    out["best"] = {str(n): dbos_peer.best(out["dbos"], n) for n in sizes}
    out["ours_best"] = {f"{mode}/{n}": dbos_peer.ours_best(out["trigger"], mode, n)
                        for mode in ("everysec", "always", "as found") for n in sizes
                        if any(k.endswith(f"|{mode}/{n}") for k in out["trigger"])}
    return out


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _scale(w: Worker, url: str, max_dispatch: int, started: float,
           reserve_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"inline": [], "dispatch": [], "notes": []}
    for n in (10, 100, 1000):
        progress(f"  run of {n} inline tasks")
        out["inline"].append(scenarios.scale_run(scenarios.inline_run(n), w, n, repeats=5))
    for n in DISPATCH_SIZES:
        if n > max_dispatch:
            out["notes"].append(f"dispatched run of {n} skipped (--max-dispatch {max_dispatch})")
            break
        if out["dispatch"]:  # estimate from the last size: per-task cost grows as n^0.5 (replay)
            prev = out["dispatch"][-1]
            estimate = prev["per_task_ms"] / 1000 * n * (n / prev["n"]) ** 0.5
            left = BUDGET_S - reserve_s - (time.monotonic() - started)
            if estimate > left:
                out["notes"].append(f"dispatched run of {n} skipped: estimated {estimate:.0f} s "
                                    f"with {left:.0f} s of the 5-minute budget left")
                break
        progress(f"  run of {n} dispatched tasks")
        out["dispatch"].append(scenarios.scale_run(scenarios.dispatch_run(url, n), w, n,
                                                   repeats=3 if n <= 100 else 1))
    return out


if __name__ == "__main__":
    raise SystemExit(main())

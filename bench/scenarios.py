"""Measurements through real worker processes: throughput and latency of each side, and runs
of many tasks (time, worker memory, Redis traffic, replay share of each resume)."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from bench import app, config, raw_app
from bench.infra import RssSampler, Traffic, Worker, confirm_success

Submit = Callable[[], str]
Confirm = Callable[[list[str]], None]


@dataclass
class Side:
    """How to start one unit of work and how to know it finished."""

    name: str
    submit: Submit
    confirm: Confirm


def _no_confirm(ids: list[str]) -> None:
    pass


def _confirm_runs(ids: list[str], timeout_s: float = 60) -> None:
    """Wait until every run is SUCCESS (the done signal comes just before ``finish.lua``)."""
    confirm_success(app.client.store, ids, what="benchmark", timeout_s=timeout_s)


def raw_task() -> Side:
    def submit() -> str:
        token = uuid.uuid4().hex
        raw_app.raw_work.apply_async(args=[token])
        return token
    return Side("raw task", submit, _no_confirm)


def raw_chain(url: str) -> Side:
    def submit() -> str:
        token = uuid.uuid4().hex
        (raw_app.raw_fetch.s(url) | raw_app.raw_cont.s(token)).apply_async()
        return token
    return Side("raw chain", submit, _no_confirm)


def raw_hop() -> Side:
    def submit() -> str:
        token = uuid.uuid4().hex
        raw_app.raw_hop.apply_async(args=[token])
        return token
    return Side("raw hop", submit, _no_confirm)


def raw_continuation(url: str, n: int) -> Side:
    def submit() -> str:
        token = uuid.uuid4().hex
        raw_app.raw_step.apply_async(args=[url, 0, n, token])
        return token
    return Side(f"raw continuation ({n})", submit, _no_confirm)


def inline_run(n: int = 1) -> Side:
    return Side(f"inline run ({n})", lambda: app.client.trigger("bench-inline", {"n": n}).id,
                _confirm_runs)


def dispatch_run(url: str, n: int = 1) -> Side:
    return Side(f"dispatched run ({n})",
                lambda: app.client.trigger("bench-dispatch", {"n": n, "url": url}).id,
                _confirm_runs)


def _take(side_r: redis.Redis, timeout_s: float = 120) -> str:
    """The next finished unit's id (BLPOP in short slices: redis-py's socket timeout is 5 s)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = side_r.blpop([config.DONE_KEY], timeout=2)
        if got is not None:
            return str(got[1].decode())
    raise TimeoutError("no unit of work finished in time (see the worker log)")


def throughput(s: Side, *, in_flight: int, total: int) -> float:
    """Units per second with ``in_flight`` submitted and not yet finished at any time."""
    side_r = config.side
    side_r.delete(config.DONE_KEY)
    t0 = time.perf_counter()
    ids = [s.submit() for _ in range(min(in_flight, total))]
    for _ in range(total):
        _take(side_r)
        if len(ids) < total:
            ids.append(s.submit())
    s.confirm(ids)
    return total / (time.perf_counter() - t0)


def latency(s: Side, *, samples: int) -> list[float]:
    """Milliseconds of one unit at a time, submission to confirmed end."""
    side_r = config.side
    side_r.delete(config.DONE_KEY)
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        uid = s.submit()
        _take(side_r)
        s.confirm([uid])
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure(sides: dict[str, Side], *, in_flight: int, total: int, samples: int,
            rounds: int) -> dict[str, dict[str, Any]]:
    """Throughput and latency of each side, interleaved so that a change in the machine's load
    hits every side alike: throughput in ``rounds`` rounds (each side once per round; ratios are
    taken within a round), latency one sample of each side in turn."""
    for s in sides.values():
        throughput(s, in_flight=4, total=20)  # warm-up: connections, imports, pool processes
    rps: dict[str, list[float]] = {k: [] for k in sides}
    lat: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(rounds):
        for k, s in sides.items():
            rps[k].append(throughput(s, in_flight=in_flight, total=total))
    for _ in range(samples):
        for k, s in sides.items():
            lat[k] += latency(s, samples=1)
    out = {}
    for k in sides:
        q = statistics.quantiles(lat[k], n=20)
        out[k] = {"throughput_rps": round(statistics.median(rps[k]), 1),
                  "throughput_rounds": [round(x, 1) for x in rps[k]],
                  "p50_ms": round(statistics.median(lat[k]), 3), "p95_ms": round(q[18], 3),
                  "latency_ms": lat[k]}
    return out


def ratio(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """``a`` against its baseline ``b``: the median of per-round throughput ratios, and the
    median of per-sample latency differences (samples were taken in turn)."""
    rounds = [x / y for x, y in zip(a["throughput_rounds"], b["throughput_rounds"], strict=True)]
    added = [x - y for x, y in zip(a.pop("latency_ms"), b["latency_ms"], strict=True)]
    return {"throughput": round(statistics.median(rounds), 3),
            "throughput_rounds": [round(x, 3) for x in rounds],
            "added_p50_ms": round(statistics.median(added), 3)}


def scale_run(s: Side, worker: Worker, n: int, *, repeats: int = 1) -> dict[str, Any]:
    """``repeats`` runs of ``n`` tasks, one at a time; the one with the median time is kept."""
    runs = sorted((_one_run(s, worker, n) for _ in range(repeats)), key=lambda x: x["time_s"])
    return runs[len(runs) // 2]


def _one_run(s: Side, worker: Worker, n: int) -> dict[str, Any]:
    """One run of ``n`` tasks: wall time, worker RSS, Redis traffic, and for dispatched runs the
    replay's share of each resume (from the stats ``bench.app`` pushes per execution)."""
    side_r = config.side
    side_r.delete(config.DONE_KEY, config.RESUMES_KEY)
    with RssSampler(worker) as rss, Traffic(side_r) as traffic:
        t0 = time.perf_counter()
        uid = s.submit()
        _take(side_r, timeout_s=300)
        s.confirm([uid])
        elapsed = time.perf_counter() - t0
    out: dict[str, Any] = {
        "n": n, "time_s": round(elapsed, 4), "per_task_ms": round(elapsed * 1000 / n, 4),
        "rss_peak_mib": round(rss.peak_mib, 1), "rss_growth_mib": round(rss.growth_mib, 2),
        "redis_in_bytes": traffic.input, "redis_out_bytes": traffic.output,
        "redis_bytes": traffic.total, "redis_bytes_per_task": round(traffic.total / n),
    }
    stats = [json.loads(x) for x in side_r.lrange(config.RESUMES_KEY, 0, -1)]
    if stats:
        out.update(_replay_share(stats, elapsed))
    return out


def _replay_share(stats: list[list[int]], elapsed_s: float) -> dict[str, Any]:
    """Per execution ``[whole_us, load_us, lookup_us, replayed, final, new]``. A resume is an
    execution that replayed completed tasks and then did new work: dispatched a new task, or
    (the short hold) got new results in place. The first execution replays nothing; a final one
    that only replays and finishes is left out. No resume at all (the whole run went on in place
    in its first execution) is a replay share of 0."""
    resumes = [s for s in stats if s[3] > 0 and (not s[4] or (len(s) > 5 and s[5] > 0))]
    first = [s for s in stats if s[3] == 0]
    if not first:
        return {}
    if not resumes:
        return {"executions": len(stats), "resumes": 0, "replay_share_mean": 0.0,
                "replay_share_max": 0.0, "replay_share_last_decile": 0.0,
                "replay_share_of_executions": 0.0, "replay_share_of_wall_time": 0.0,
                "replay_share_10pct_at_k": None}
    # Starting any execution (lease, acquire round trip, setup) costs what the first execution
    # paid with nothing to replay; the rest of the time before the first new task is replay.
    base_us = first[0][1]
    replay = [max(0, s[1] - base_us) + s[2] for s in resumes]
    shares = [rp / s[0] for rp, s in zip(replay, resumes, strict=True)]
    last_n = max(1, len(resumes) // 10)
    by_k = sorted(zip((s[3] for s in resumes), shares, replay, resumes, strict=True))
    last = by_k[-last_n:]
    replay_us = sum(replay)
    over = [k for k, share, _, _ in by_k if share >= 0.10]
    return {
        "executions": len(stats),
        "resumes": len(resumes),
        "replay_share_mean": round(statistics.fmean(shares), 4),
        "replay_share_max": round(max(shares), 4),
        "replay_share_last_decile": round(statistics.fmean(x[1] for x in last), 4),
        "replay_share_of_executions": round(replay_us / sum(s[0] for s in resumes), 4),
        "replay_share_of_wall_time": round(replay_us / 1e6 / elapsed_s, 4),
        "start_ms": round(base_us / 1000, 3),
        "last_resume_ms": {k: round(v / 1000, 3) for k, v in
                           zip(("whole", "load", "lookup"), last[-1][3][:3], strict=True)},
        "execution_ms_mean": round(statistics.fmean(s[0] for s in resumes) / 1000, 3),
        # completed tasks replayed by the first resume whose replay took 10% or more
        "replay_share_10pct_at_k": over[0] if over else None,
    }

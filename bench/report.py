"""Targets (from DESIGN.md, section Targets), the printed table, the JSON file and the plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent


def _slope_ratio(points: list[tuple[int, float]]) -> float:
    """Cost per extra item between the two largest sizes over that between the two smallest
    (1.0 = linear; 10 = quadratic over a tenfold step)."""
    (n0, y0), (n1, y1), (n2, y2) = points[:3]
    return ((y2 - y1) / (n2 - n1)) / max((y1 - y0) / (n1 - n0), 1e-12)


NAN = float("nan")
FIT_SIZES = (100, 300, 1000)


def growth_exponent(runs: list[dict[str, Any]], key: str = "redis_bytes") -> float:
    """Least-squares slope of log(``key``) against log(n) over the runs at n = 100, 300, 1,000
    (1.0 = linear, 2.0 = quadratic); NaN with fewer than two of those sizes."""
    pts = [(math.log(x["n"]), math.log(x[key])) for x in runs
           if x["n"] in FIT_SIZES and x[key] > 0]
    if len(pts) < 2:
        return NAN
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return (sum((p[0] - mx) * (p[1] - my) for p in pts)
            / sum((p[0] - mx) ** 2 for p in pts))


def _at(runs: list[dict[str, Any]], n: int) -> dict[str, Any] | None:
    return next((x for x in runs if x["n"] == n), None)


def _div(a: float | None, b: float | None) -> float:
    return a / b if a is not None and b else NAN


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value; ``pass`` is None for figures shown for reference."""
    m, t, s = r["micro"], r["ratios"], r["scale"]
    hop = t["celery_hop_p50_ms"]
    i100, i1000 = _at(s["inline"], 100), _at(s["inline"], 1000)
    mem = sorted((int(k), v) for k, v in r["micro"]["tracemalloc_kib"].items())
    disp, cont = s["dispatch"], s.get("continuation", [])
    dmax = disp[-1] if disp else None
    share = dmax.get("replay_share_max", NAN) if dmax else NAN
    d1000, c1000 = _at(disp, 1000), _at(cont, 1000)
    long_rounds = (s.get("long_rounds") or {}).get("rounds", [])
    long_ratio = (s["long_rounds"]["ratio"] if long_rounds
                  else _div(d1000 and d1000["time_s"], c1000 and c1000["time_s"]))
    rows: list[tuple[str, str, float, bool | None, str]] = [
        ("run of 1 dispatched task: throughput / raw chain", "≥ 0.9×",
         t["dispatch_throughput"], t["dispatch_throughput"] >= 0.9, "×"),
        ("one Celery hop (p50: raw task sending a task − raw task)", "reference", hop, None,
         "ms"),
        ("run of 1 dispatched task: latency added (p50) over raw chain",
         f"≤ 1 hop ({hop:.2f} ms)", t["dispatch_added_p50_ms"],
         t["dispatch_added_p50_ms"] <= hop, "ms"),
        ("run of 1 inline task: throughput / raw task", "≥ 0.9×", t["inline_throughput"],
         t["inline_throughput"] >= 0.9, "×"),
        ("run of 1,000 dispatched: time / raw continuation of 1,000 (median of "
         f"{len(long_rounds) or 1} interleaved round(s))", "≤ 1.2×", long_ratio,
         long_ratio <= 1.2, "×"),
        (f"replay share of a resume, max over resumes, run of {dmax['n'] if dmax else '?'} "
         "dispatched", "≤ 10%", share * 100, share <= 0.10, "%"),
        ("dispatched runs: Redis bytes growth exponent (fit n = 100, 300, 1,000)", "≤ 1.1",
         growth_exponent(disp), growth_exponent(disp) <= 1.1, ""),
        ("raw continuation: Redis bytes growth exponent (same fit)", "reference",
         growth_exponent(cont), None, ""),
        ("run of 1,000 dispatched: Redis bytes / raw continuation's", "reference",
         _div(d1000 and d1000["redis_bytes"], c1000 and c1000["redis_bytes"]), None, "×"),
        ("replay lookup, completed inline task / Redis PING", "≤ 0.05×",
         m["lookup_us"] / m["ping_us"], m["lookup_us"] / m["ping_us"] <= 0.05, "×"),
        ("replay lookup, completed dispatched task / Redis PING", "≤ 0.05×",
         m["dispatched_lookup_us"] / m["ping_us"],
         m["dispatched_lookup_us"] / m["ping_us"] <= 0.05, "×"),
        ("new inline task over its callback, in Redis round trips (PING)", "≤ 1.3",
         m["new_task_overhead_us"] / m["ping_us"],
         m["new_task_overhead_us"] / m["ping_us"] <= 1.3, "×"),
        ("inline runs: time per task at 1,000 / at 100", "≤ 1.2×",
         _div(i1000 and i1000["per_task_ms"], i100 and i100["per_task_ms"]),
         _div(i1000 and i1000["per_task_ms"], i100 and i100["per_task_ms"]) <= 1.2, "×"),
        ("inline runs: memory per extra task, 1,000 vs 10..100", "linear (≤ 1.5)",
         _slope_ratio(mem), _slope_ratio(mem) <= 1.5, "×"),
    ]
    rows += _peer_targets(r.get("peer") or {}, r["baseline"]["raw_task"]["throughput_rps"])
    return [{"name": a, "target": b, "value": None if math.isnan(c) else round(c, 3),
             "pass": d, "unit": e}
            for a, b, c, d, e in rows]


def _peer_targets(p: dict[str, Any],
                  raw_task_rps: float) -> list[tuple[str, str, float, bool | None, str]]:
    """trigger-celery's best worker configuration against DBOS's best, per size and fsync mode;
    and, for reference, raw Celery's own throughput (one task per unit, the main section's
    ``-c 2`` worker) over DBOS's best: what a run, which is at least one Celery message, can
    reach at most."""
    if "best" not in p:
        return []
    best = p.get("ours_best") or {}
    rows: list[tuple[str, str, float, bool | None, str]] = []
    for n, b in p["best"].items():
        rows.append((f"vs DBOS, {n} task(s)/step(s): raw Celery task throughput / DBOS best",
                     "reference", raw_task_rps / b["throughput_rps"], None, "×"))
    for mode, goal in (("everysec", 5.0), ("always", 3.0)):
        for n, b in p["best"].items():
            ours = best.get(f"{mode}/{n}")
            if ours is None:
                continue
            tp = ours["throughput_rps"] / b["throughput_rps"]
            lat = ours["p50_ms"] / b["p50_ms"]
            rows.append((f"vs DBOS, {n} task(s)/step(s), AOF {mode}: throughput / DBOS best",
                         f"≥ {goal:.0f}×", tp, tp >= goal, "×"))
            rows.append((f"vs DBOS, {n} task(s)/step(s), AOF {mode}: p50 / DBOS best p50",
                         "≤ 1/3" if mode == "everysec" else "reference", lat,
                         lat <= 1 / 3 if mode == "everysec" else None, "×"))
    return rows


def print_table(r: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=120)
    meta = r["meta"]
    console.print(f"[bold]trigger-celery benchmarks[/] {meta['date']}  {meta['cpu']} "
                  f"× {meta['nproc']}  Redis {meta['redis_version']}  Celery "
                  f"{meta['celery_version']}  workers: prefork -c {meta['concurrency']}")
    console.print(f"machine load (1-min average) {meta['loadavg_start']} at start, "
                  f"{meta['loadavg_end']} at end; connections to other Redis databases "
                  f"{meta['other_clients_start']} at start, {meta['other_clients_end']} at end "
                  "(other load skews absolute figures; ratios are taken side by side)")

    tp = Table(title=f"Through workers: throughput with {meta['in_flight']} in flight (median "
               f"of {meta['rounds']} interleaved rounds; × baseline = median per-round ratio); "
               "latency one at a time, sides in turn")
    for col in ("work", "runs/s", "× baseline", "p50 ms", "p95 ms", "added p50 ms"):
        tp.add_column(col, justify="right" if col != "work" else "left")
    b, tr = r["baseline"], r["trigger"]
    ra = r["ratios"]
    pairs = (("raw task (baseline)", b["raw_task"], None),
             ("raw hop: task sending raw task", b["raw_hop"], "hop"),
             ("run of 1 inline task", tr["inline_run"], "inline"),
             ("raw chain fetch | cont (baseline)", b["raw_chain"], None),
             ("run of 1 dispatched task", tr["dispatch_run"], "dispatch"))
    for name, x, k in pairs:
        tp.add_row(name, f"{x['throughput_rps']:.0f}",
                   "" if k == "hop" else f"{ra[k + '_throughput']:.2f}" if k else "1.00",
                   f"{x['p50_ms']:.2f}", f"{x['p95_ms']:.2f}",
                   f"{ra['celery_hop_p50_ms']:+.2f}" if k == "hop"
                   else f"{ra[k + '_added_p50_ms']:+.2f}" if k else "")
    console.print(tp)

    m = r["micro"]
    ti = Table(title="In process (µs)")
    ti.add_column("cost")
    ti.add_column("µs", justify="right")
    ti.add_column("× PING", justify="right")
    for label, key in (("Redis PING round trip", "ping_us"), ("Redis GET round trip", "get_us"),
                       ("replay lookup, completed inline task", "lookup_us"),
                       ("replay lookup, completed dispatched task", "dispatched_lookup_us"),
                       ("loading records (acquire), per task", "load_per_task_us"),
                       ("callback alone", "callback_us"),
                       ("new inline task (callback + checkpoint)", "new_task_us"),
                       ("new inline task over its callback", "new_task_overhead_us")):
        ti.add_row(label, f"{m[key]:.2f}", f"{m[key] / m['ping_us']:.2f}")
    console.print(ti)

    ts = Table(title="Runs of n tasks (one run, one worker; raw cont. = raw Celery's "
               "hand-written continuation, each task makes the HTTP call and sends the next)")
    for col in ("run", "n", "time s", "ms/task", "RSS peak MiB", "RSS +MiB", "tracemalloc KiB",
                "Redis MB", "B/task", "replay mean / last 10% / max", "≥10% from k"):
        ts.add_column(col, justify="left" if col == "run" else "right")
    for kind in ("inline", "dispatch", "continuation"):
        for x in r["scale"].get(kind, []):
            kib = r["micro"]["tracemalloc_kib"].get(str(x["n"])) if kind == "inline" else None
            share = (f"{x['replay_share_mean'] * 100:.1f}% / "
                     f"{x['replay_share_last_decile'] * 100:.1f}% / "
                     f"{x['replay_share_max'] * 100:.1f}%"
                     + (f" ({x['resumes']} of {x['executions']} exec.)" if "resumes" in x else "")
                     if "replay_share_mean" in x else "")
            ts.add_row("raw cont." if kind == "continuation" else kind, str(x["n"]),
                       f"{x['time_s']:.3f}", f"{x['per_task_ms']:.3f}",
                       f"{x['rss_peak_mib']:.1f}", f"{x['rss_growth_mib']:.2f}",
                       "" if kib is None else f"{kib:.0f}", f"{x['redis_bytes'] / 1e6:.2f}",
                       f"{x['redis_bytes_per_task']}", share,
                       str(x.get("replay_share_10pct_at_k") or ""))
    console.print(ts)
    for note in r["scale"].get("notes", []):
        console.print(f"note: {note}")
    _print_peer(r.get("peer") or {}, console)

    tt = Table(title="Targets")
    for col in ("target", "goal", "measured", ""):
        tt.add_column(col)
    for t in r["targets"]:
        mark = ("" if t["pass"] is None else "[yellow]n/a[/]" if t["value"] is None
                else "[green]PASS[/]" if t["pass"] else "[red]MISS[/]")
        value = "n/a" if t["value"] is None else f"{t['value']} {t['unit']}".strip()
        tt.add_row(t["name"], t["target"], value, mark)
    console.print(tt)


def _print_peer(p: dict[str, Any], console: Console) -> None:
    if not p:
        return
    if "skipped" in p:
        console.print(f"[yellow]{p['skipped']}[/]")
        return
    tp = Table(title="Peer: trigger-celery inline runs vs DBOS Transact "
               f"{p.get('dbos_version', '')} workflows on PostgreSQL (throughput: measurements of "
               "'units', in flight as above, median; trigger-celery measured before and after "
               "DBOS; p50/p95 over 'samples' one at a time)")
    for col in ("side", "configuration", "tasks/steps", "runs/s", "p50 ms", "p95 ms", "units",
                "samples"):
        tp.add_column(col, justify="left" if col in ("side", "configuration") else "right")
    for key, x in p["trigger"].items():
        if "/" not in key:
            continue
        config, _, size = key.partition("|")
        mode, n = size.split("/")
        tp.add_row("trigger-celery", f"AOF appendfsync {mode}, {config}", n,
                   f"{x['throughput_rps']:.0f}", f"{x['p50_ms']:.2f}",
                   f"{x['p95_ms']:.2f}" if x["p95_ms"] is not None else "",
                   str(x["total"]), str(x["samples"]))
    for name, c in p["dbos"]["configs"].items():
        for n, x in c["sizes"].items():
            tp.add_row("DBOS", name, n, f"{x['throughput_rps']:.1f}", f"{x['p50_ms']:.2f}",
                       f"{x['p95_ms']:.2f}" if x["p95_ms"] is not None else "",
                       str(x["total"]), str(x["samples"]))
    console.print(tp)
    if p["dbos"].get("scale"):
        console.print("DBOS, one workflow of n steps (10 ms polling, 1 worker), time per step: "
                      + ", ".join(f"n = {x['n']}: {x['per_task_ms']:.2f} ms"
                                  for x in p["dbos"]["scale"]))
    for n, b in p["best"].items():
        console.print(f"DBOS best at {n}: {b['throughput_rps']:.1f} runs/s "
                      f"({b['throughput_config']}), p50 {b['p50_ms']:.2f} ms ({b['p50_config']})")
    for key, b in (p.get("ours_best") or {}).items():
        mode, n = key.split("/")
        console.print(f"trigger-celery best at {n}, AOF {mode}: {b['throughput_rps']:.0f} runs/s "
                      f"({b['throughput_config']}), p50 {b['p50_ms']:.2f} ms ({b['p50_config']})")
    for note in p.get("notes", []):
        console.print(f"note: {note}")


def write_json(r: dict[str, Any], *paths: Path) -> None:
    text = json.dumps(r, indent=2) + "\n"
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def plot(r: dict[str, Any], *paths: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    sc = r["scale"]
    series = [("inline", "trigger-celery, inline tasks (io.run_task, the callback)", "o-"),
              ("dispatch", "trigger-celery, dispatched tasks (io.bench.http.get)", "s-"),
              ("continuation", "raw Celery, hand-written continuation (HTTP call, send next)",
               "^-")]
    for kind, label, style in series:
        pts = sc.get(kind, [])
        if pts:
            ax.plot([p["n"] for p in pts], [p["per_task_ms"] for p in pts], style, label=label)
    dbos_pts = ((r.get("peer") or {}).get("dbos") or {}).get("scale", [])
    if dbos_pts:
        ax.plot([p["n"] for p in dbos_pts], [p["per_task_ms"] for p in dbos_pts], "d--",
                label="DBOS, steps of one workflow, each the callback (queue polling 10 ms, "
                      "1 worker)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tasks in the run")
    ax.set_ylabel("time per task (ms), submission to confirmed end")
    ax.set_title(f"Time per task vs tasks in one run ({r['meta']['date'][:10]}, "
                 f"{r['meta']['nproc']} cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p)
    plt.close(fig)

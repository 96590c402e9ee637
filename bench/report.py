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


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    m, t, s = r["micro"], r["ratios"], r["scale"]
    inline = [(x["n"], x["time_s"]) for x in s["inline"]]
    mem = sorted((int(k), v) for k, v in r["micro"]["tracemalloc_kib"].items())
    disp = [x for x in s["dispatch"] if "replay_share_last_decile" in x]
    share = max((x["replay_share_last_decile"] for x in disp), default=float("nan"))
    d100 = next((x for x in s["dispatch"] if x["n"] == 100), None)
    dmax = s["dispatch"][-1]
    growth = (math.log(dmax["redis_bytes"] / d100["redis_bytes"]) / math.log(dmax["n"] / 100)
              if d100 and dmax["n"] > 100 else float("nan"))
    rows = [
        ("replay lookup, inline task", "< 5 µs", m["lookup_us"], m["lookup_us"] < 5, "µs"),
        ("replay lookup, dispatched task", "< 5 µs", m["dispatched_lookup_us"],
         m["dispatched_lookup_us"] < 5, "µs"),
        ("new inline task over its callback", "≤ 100 µs", m["new_task_overhead_us"],
         m["new_task_overhead_us"] <= 100, "µs"),
        ("inline run throughput / raw task", "≥ 0.8×", t["inline_throughput"],
         t["inline_throughput"] >= 0.8, "×"),
        ("dispatched run throughput / raw chain", "≥ 0.6×", t["dispatch_throughput"],
         t["dispatch_throughput"] >= 0.6, "×"),
        ("latency added per dispatched task (p50)", "< 5 ms", t["dispatch_added_p50_ms"],
         t["dispatch_added_p50_ms"] < 5, "ms"),
        ("inline runs: time per extra task, 1,000 vs 10..100", "linear (≤ 1.5)",
         round(_slope_ratio(inline), 2), _slope_ratio(inline) <= 1.5, "×"),
        ("inline runs: memory per extra task, 1,000 vs 10..100", "linear (≤ 1.5)",
         round(_slope_ratio(mem), 2), _slope_ratio(mem) <= 1.5, "×"),
        (f"replay share of a resume, up to {dmax['n']} dispatched", "< 10%",
         round(share * 100, 1), share < 0.10, "%"),
        (f"dispatched runs: Redis bytes growth exponent, 100 → {dmax['n']}", "< 1.5 (not n²)",
         round(growth, 2), growth < 1.5, ""),
    ]
    return [{"name": a, "target": b, "value": c, "pass": bool(d), "unit": e}
            for a, b, c, d, e in rows]


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
             ("run of 1 inline task", tr["inline_run"], "inline"),
             ("raw chain fetch | cont (baseline)", b["raw_chain"], None),
             ("run of 1 dispatched task", tr["dispatch_run"], "dispatch"))
    for name, x, k in pairs:
        tp.add_row(name, f"{x['throughput_rps']:.0f}",
                   f"{ra[k + '_throughput']:.2f}" if k else "1.00",
                   f"{x['p50_ms']:.2f}", f"{x['p95_ms']:.2f}",
                   f"{ra[k + '_added_p50_ms']:+.2f}" if k else "")
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

    ts = Table(title="Runs of n tasks (one run, one worker)")
    for col in ("run", "n", "time s", "ms/task", "RSS peak MiB", "RSS +MiB", "tracemalloc KiB",
                "Redis MB", "B/task", "replay share mean / last 10%", "≥10% from k"):
        ts.add_column(col, justify="left" if col == "run" else "right")
    for kind in ("inline", "dispatch"):
        for x in r["scale"][kind]:
            kib = r["micro"]["tracemalloc_kib"].get(str(x["n"])) if kind == "inline" else None
            share = (f"{x['replay_share_mean'] * 100:.1f}% / "
                     f"{x['replay_share_last_decile'] * 100:.1f}%"
                     if "replay_share_mean" in x else "")
            ts.add_row(kind, str(x["n"]), f"{x['time_s']:.3f}", f"{x['per_task_ms']:.3f}",
                       f"{x['rss_peak_mib']:.1f}", f"{x['rss_growth_mib']:.2f}",
                       "" if kib is None else f"{kib:.0f}", f"{x['redis_bytes'] / 1e6:.2f}",
                       f"{x['redis_bytes_per_task']}", share,
                       str(x.get("replay_share_10pct_at_k") or ""))
    console.print(ts)
    for note in r["scale"].get("notes", []):
        console.print(f"note: {note}")

    tt = Table(title="Targets")
    for col in ("target", "goal", "measured", ""):
        tt.add_column(col)
    for t in r["targets"]:
        mark = "[green]PASS[/]" if t["pass"] else "[red]MISS[/]"
        tt.add_row(t["name"], t["target"], f"{t['value']} {t['unit']}".strip(), mark)
    console.print(tt)


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
    for kind, label, style in (("inline", "inline tasks (io.run_task)", "o-"),
                               ("dispatch", "dispatched tasks (io.bench.http.get)", "s-")):
        pts = r["scale"][kind]
        ns = [p["n"] for p in pts]
        ax.plot(ns, [p["time_s"] for p in pts], style, label=label)
        if pts:  # linear growth through the middle run (the smallest one is mostly fixed cost)
            mid = pts[len(pts) // 2]
            k = mid["time_s"] / mid["n"]
            ax.plot(ns, [k * n for n in ns], ":", color=ax.lines[-1].get_color(), alpha=0.6,
                    label=f"linear through n={mid['n']}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tasks in the run")
    ax.set_ylabel("run time (s)")
    ax.set_title(f"trigger-celery run time vs task count ({r['meta']['date'][:10]}, "
                 f"{r['meta']['nproc']} cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p)
    plt.close(fig)

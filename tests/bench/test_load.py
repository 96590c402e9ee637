"""The load test (``python -m bench.load``, issue 15 item 4): a short real run with 2 workers on
RabbitMQ checks its output's shape and clean-up, and ``docs/deploy.md`` quotes exactly the
figures of the committed ``bench/LOAD.json``. RabbitMQ must answer on 127.0.0.1:5672 (as for
the chaos suite's RabbitMQ tests): if it does not, the smoke test fails; it never skips."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from kombu import Connection, Queue
from kombu.exceptions import OperationalError

from bench.load import AMQP_URL, TARGETS, WORKLOADS, capacity, markdown
from tests.support import ROOT


def _amqp() -> None:
    try:
        with Connection(AMQP_URL, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=2)
    except Exception as exc:  # noqa: BLE001 - any failure is the same failure here
        pytest.fail(f"RabbitMQ does not answer at {AMQP_URL}: {exc!r}", pytrace=False)


def _queue_exists(name: str) -> bool:
    with Connection(AMQP_URL) as conn:
        try:
            Queue(name, channel=conn.channel()).queue_declare(passive=True)
        except OperationalError:
            return False
        except Exception as exc:  # amqp's NotFound (404) closes the channel
            if "NOT_FOUND" in str(exc) or "404" in str(exc):
                return False
            raise
    return True


def test_quick_load_test_measures_both_workloads_and_cleans_up(tmp_path: Path) -> None:
    _amqp()
    out = tmp_path / "load.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGER_CELERY_")}
    proc = subprocess.run([sys.executable, "-m", "bench.load", "--quick", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [(p["workload"], p["workers"]) for p in result["points"]] == [
        (w, 2) for w in WORKLOADS]
    for p in result["points"]:
        tasks = WORKLOADS[p["workload"]][1]
        assert p["runs"] > 0 and p["runs_per_s"] > 0, p
        assert p["tasks_per_s"] == pytest.approx(p["runs_per_s"] * tasks, rel=0.01)
        assert p["p50_ms"] is not None and p["p50_ms"] > 0
        s = p["store"]
        # create, acquire, checkpoint(s), finish: at least four store round trips per run
        assert s["round_trips_per_run"] >= 4, p
        assert s["scripts_per_run"] >= 3, p
        assert s["bytes_per_run"] == s["bytes_in_per_run"] + s["bytes_out_per_run"] > 0
        assert 0 < s["cores"] < 2 and 0 < p["cpu_cores"]["workers"]
        assert 0 < p["cpu_cores"]["machine"] <= (os.cpu_count() or 1) * 1.05
    inline, mixed = result["points"]
    assert mixed["store"]["round_trips_per_run"] > inline["store"]["round_trips_per_run"]
    for workload in WORKLOADS:
        c = result["capacity"][workload]
        assert c["runs_per_core"] > 0 and c["tasks_per_core"] >= c["runs_per_core"]
        shards = [c["shards"][str(t)] for t in TARGETS]
        assert shards == sorted(shards) and shards[0] >= 1
    assert markdown(result) in proc.stdout
    # the run's RabbitMQ queues are gone and its worker processes too
    tag = result["meta"]["tag"]
    assert not _queue_exists(f"load-runs-{tag}") and not _queue_exists(f"load-http-{tag}")
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"-{tag}@load-host-" not in ps


def test_capacity_model_from_store_cpu_per_run() -> None:
    point = {"workload": "inline-1", "runs_per_s": 1000.0,
             "store": {"cores": 0.5}, "cpu_cores": {"workers": 2.0, "client": 0.25}}
    c = capacity([point])["inline-1"]
    assert c["store_cpu_us_per_run"] == 500  # 0.5 core-seconds per second over 1,000 runs
    assert c["runs_per_core"] == 2000 and c["tasks_per_core"] == 2000
    assert c["worker_cores_per_store_core"] == 4.0
    # at most 70% of a core per shard: 1,400 runs/s each
    assert c["shards"] == {"1000": 1, "10000": math.ceil(10_000 / 1400),
                           "100000": math.ceil(100_000 / 1400)}



def test_deploy_md_quotes_the_committed_load_test() -> None:
    result = json.loads((ROOT / "bench" / "LOAD.json").read_text())
    assert not result["meta"].get("partial")
    assert sorted({p["workers"] for p in result["points"]}) == [2, 4, 8]
    assert {p["workload"] for p in result["points"]} == set(WORKLOADS)
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert markdown(result) in deploy, "re-run python -m bench.load --markdown bench/LOAD.json"
    for workload, c in result["capacity"].items():  # the prose quotes the same figures
        assert f"{c['runs_per_core']:,} runs/s" in deploy, workload
        assert f"({c['tasks_per_core']:,} tasks/s)" in deploy, workload
        peak = result["saturation"][workload]["peak_runs_per_s"]
        assert f"{workload} peaked at {peak:g} runs/s" in deploy or (
            f"{workload} at {peak:g} runs/s" in deploy), workload
    inline = [p["store"]["bytes_per_run"] for p in result["points"] if p["workload"] == "inline-1"]
    mixed = [p["store"]["bytes_per_task"] for p in result["points"] if p["workload"] == "mixed-10"]
    assert f"about {statistics.median(inline) / 1000:.1f} KB per inline-1 run" in deploy
    assert f"{statistics.median(mixed) / 1000:.1f} KB per task of a mixed-10 run" in deploy

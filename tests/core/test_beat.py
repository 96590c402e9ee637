"""Celery beat schedules interval and cron jobs: one run per job and slot, however many beats.

Slow on purpose (45 to 90 s: an interval trigger cannot be shorter than 20 s) and part of the
normal suite: it is the only proof that two real ``celery beat`` processes, each with its own
schedule file, start one run per slot between them.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import redis

from trigger_celery.cli._services import celery_process


def _sends(log: Path, job: str = "every-20s") -> int:
    text = log.read_text(errors="replace") if log.exists() else ""
    return text.count(f"Sending due task trigger-celery:{job}")


def test_two_beats_start_one_run_per_interval_slot(
        start_worker, store_redis: redis.Redis, worker_env: dict[str, str],
        tmp_path: Path) -> None:
    from tests.beat_app import client

    start_worker("tests.beat_app", name="beat")
    logs = [tmp_path / f"beat{i}.log" for i in (1, 2)]
    beats = [celery_process("tests.beat_app", "beat", worker_env, "-s", str(tmp_path / f"s{i}"),
                            log=log) for i, log in enumerate(logs, 1)]
    try:
        deadline = time.monotonic() + 90
        while True:
            runs = client.list_runs(job_id="every-20s", limit=100)
            sends = [_sends(log) for log in logs]
            cron_runs = client.list_runs(job_id="every-minute")
            cron_sent = min(_sends(log, "every-minute") for log in logs) >= 1
            if (min(sends) >= 2 and runs and all(r.finished for r in [*runs, *cron_runs])
                    and cron_sent and cron_runs):
                slots = Counter(r.payload["ts"] for r in runs)
                if len(slots) >= 2:
                    break
            for b, log in zip(beats, logs, strict=True):
                assert b.alive(), log.read_text()
            assert time.monotonic() < deadline, (sends, [r.payload for r in runs])
            time.sleep(0.5)
    finally:
        for b in beats:
            b.stop()
    time.sleep(1)  # a last tick's schedule task still in flight
    runs = client.list_runs(job_id="every-20s", limit=100)
    slots = Counter(r.payload["ts"] for r in runs)
    sends = [_sends(log) for log in logs]
    # Each beat sent every tick (4+ schedule messages) yet each slot has exactly one run.
    assert sum(sends) >= 4 and len(slots) >= 2
    assert all(n == 1 for n in slots.values()), slots
    assert len(runs) < sum(sends)
    for r in runs:
        assert r.status == "SUCCESS" and r.output == r.payload["ts"]
        assert r.payload["ts"].endswith(("00+00:00", "20+00:00", "40+00:00"))  # 20 s slots
    # The cron job (UTC, every minute): both beats sent its tick, one run per minute.
    cron_runs = client.list_runs(job_id="every-minute")
    minutes = Counter(r.payload["ts"] for r in cron_runs)
    assert min(_sends(log, "every-minute") for log in logs) >= 1
    assert minutes and all(n == 1 for n in minutes.values()), minutes
    for r in cron_runs:
        assert r.status == "SUCCESS" and r.payload["ts"].endswith(":00+00:00")

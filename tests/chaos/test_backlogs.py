"""Issue 11, items 4 and 5: backlogs stay bounded. A dispatched task whose queue has no consumer
is not re-sent while its message is known to be queued, and a re-send never undoes an attempt
that finished meanwhile; held waits never stall new runs, and 2,000 waits at once keep the queue
and the worker's memory bounded."""

from __future__ import annotations

import io
import re
import threading
import time
from collections import Counter
from typing import Any

import psutil
import redis
from rich.console import Console

from tests.chaos._harness import STATS, finish_all, wait_until
from tests.chaos.conftest import make_client
from trigger_celery.cli._timeline import render


def _shown(client: Any, run_id: str) -> str:
    """``runs show RUN_ID`` as plain text."""
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(render(client.get_run(run_id)))
    return out.getvalue()


def _sample_peak(broker: redis.Redis, queue: str, seconds: float) -> int:
    """The largest length of the broker's list ``queue`` seen over ``seconds`` seconds."""
    peak = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, int(broker.llen(queue)))
        time.sleep(0.05)
    return peak


def test_no_consumer_queue_holds_one_message_per_waiting_task(clean, effects, workers_for):
    """10 runs dispatch to a queue no worker consumes: over 8 dispatch_check_s periods the queue
    holds their 10 messages and no more, and `runs show` says what each waits for; then a
    worker on that queue appears and every run completes, each side effect once."""
    store, broker_url = clean.url(0), clean.url(1)
    check = 1.0
    client = make_client(store, broker_url, dispatch_check_s=check)
    ws = workers_for(store, broker_url, effects.url, TRIGGER_CELERY_DISPATCH_CHECK_S=str(check))
    ws.start(name="runs-only", queues=client.settings.runs_queue)
    queue = client.jobs["slow-op"].integrations["sidefx"].queue
    broker = clean.client(1)
    n = 10
    ids = [client.trigger("slow-op", {"tag": f"nc{i}", "delay": 0}).id for i in range(n)]
    STATS["runs"] += n
    wait_until(lambda: broker.llen(queue) >= n, 30, "every run dispatched its task")
    peak = _sample_peak(broker, queue, 8 * check)
    STATS["peak_queue_no_consumer"] = max(STATS["peak_queue_no_consumer"], peak)
    assert peak <= n + 2, f"{peak} messages on {queue} for {n} waiting tasks"
    text = _shown(client, ids[0])
    assert re.search(rf"waiting for a worker on queue {queue} since \d\d:\d\d:\d\d", text), text
    assert all(t.resends == 0 for rid in ids for t in client.get_run(rid).tasks)

    ws.start(name="consumer", queues=queue)
    finish_all(client, ids, timeout=60)
    assert sorted(effects.effects) == sorted((f"nc{i}", "slow") for i in range(n))
    assert all(c == 1 for c in effects.effects.values()), effects.effects
    assert all(c == 1 for c in effects.raw.values()), effects.raw
    received = Counter(re.findall(r"Task sidefx\.effects\.post\[([0-9a-f-]{36})\] received",
                                  ws.logs()))
    assert len(received) == n and max(received.values()) == 1, received  # never re-sent
    assert broker.llen(queue) == 0


class _Peak:
    """Samples a broker queue's length (and optionally a worker's RSS) in a thread."""

    def __init__(self, broker: redis.Redis, queue: str, pid: int | None = None):
        self.broker, self.queue, self.pid = broker, queue, pid
        self.queue_len = 0
        self.rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self.queue_len = max(self.queue_len, int(self.broker.llen(self.queue)))
            if self.pid is not None:
                self.rss_mb = max(self.rss_mb, worker_rss_mb(self.pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def worker_rss_mb(pid: int) -> float:
    """Resident memory of a worker's main process and its pool, in MiB."""
    main = psutil.Process(pid)
    procs = [main, *main.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def test_held_waits_never_stall_new_runs(clean, effects, workers_for):
    """One worker holding at most 5 ETA messages; 7 runs wait 120 s; then 50 new runs all start
    promptly (waits ride no ETA message), and the runs queue never holds more than the runs."""
    store, broker_url = clean.url(0), clean.url(1)
    client = make_client(store, broker_url, worker_eta_task_limit=5)
    ws = workers_for(store, broker_url, effects.url, TRIGGER_CELERY_WORKER_ETA_TASK_LIMIT="5")
    ws.start(name="held")
    broker = clean.client(1)
    peak = _Peak(broker, client.settings.runs_queue)
    try:
        waiting = [client.trigger("nap", {"tag": f"w{i}", "wait": 120}).id for i in range(7)]
        wait_until(lambda: all(client.store.get_run_hash(r)["status"] == "WAITING"
                               for r in waiting), 30, "7 runs waiting")
        fresh = [client.trigger("quick", {"tag": f"q{i}"}).id for i in range(50)]
        STATS["runs"] += 57
        done = finish_all(client, fresh, timeout=30)
    finally:
        peak.stop()
    delays = sorted(float(h["started_at"]) - float(h["created_at"]) for h in done.values())
    print(f"50 new runs beside 7 held waits: start delay median {delays[25]:.3f} s, "
          f"max {delays[-1]:.3f} s; peak runs queue {peak.queue_len}")
    STATS["peak_queue_held_wait"] = max(STATS["peak_queue_held_wait"], peak.queue_len)
    assert delays[-1] < 3.0, delays  # a second or less when the machine is not shared
    assert peak.queue_len <= 57 + 3
    assert all(client.store.get_run_hash(r)["status"] == "WAITING" for r in waiting)
    for r in waiting:
        client.cancel_run(r)


def test_many_waits_keep_queue_and_worker_memory_bounded(clean, effects, workers_for):
    """2,000 runs each waiting 10 to 19 s: the runs queue holds at most one message per run, the
    worker's memory stays flat (no wait is a message held in it), every run resumes once."""
    store, broker_url = clean.url(0), clean.url(1)
    client = make_client(store, broker_url)
    ws = workers_for(store, broker_url, effects.url)
    w = ws.start(name="many", concurrency=2)
    time.sleep(1)
    rss_before = worker_rss_mb(w.proc.pid)
    broker = clean.client(1)
    peak = _Peak(broker, client.settings.runs_queue, w.proc.pid)
    n = 2000
    try:
        ids = [client.trigger("nap", {"tag": f"m{i}", "wait": 10 + i % 10}).id for i in range(n)]
        STATS["runs"] += n
        finish_all(client, ids, timeout=240)
    finally:
        peak.stop()
    late = sorted(
        t.completed_at - (t.created_at + t.params["seconds"])
        for t in (client.get_run(r).task("nap") for r in ids[::20])
        if t.completed_at is not None and t.created_at is not None)
    print(f"{n} waits: peak runs queue {peak.queue_len}, worker RSS {rss_before:.0f} -> "
          f"peak {peak.rss_mb:.0f} MiB; wake-up lateness median {late[len(late) // 2]:.2f} s, "
          f"max {late[-1]:.2f} s")
    assert peak.queue_len <= n + 10
    assert peak.rss_mb - rss_before < 60, (rss_before, peak.rss_mb)
    assert all(client.get_run(r).executions == 2 for r in ids[::50])


def test_a_resend_never_overwrites_an_attempt_settled_meanwhile(clean, effects, workers_for):
    """The run checks on its queued task after dispatch_check_s; a worker settles the attempt
    between the run loading its records and re-sending: the run sees the outcome, the task
    runs once, and its queued message does nothing."""
    store, broker_url = clean.url(0), clean.url(1)
    client = make_client(store, broker_url, dispatch_check_s=1.0)
    ws = workers_for(store, broker_url, effects.url, TRIGGER_CELERY_DISPATCH_CHECK_S="1")
    ws.start(name="runs-only", queues=client.settings.runs_queue)
    queue = client.jobs["settle-race"].integrations["sidefx"].queue
    rid = client.trigger("settle-race", {"tag": "race"}).id
    STATS["runs"] += 1
    finish_all(client, [rid], timeout=30)
    task = client.get_run(rid).task("op")
    assert task.status == "COMPLETED" and task.attempts == 1 and task.resends == 0, task
    ws.start(name="consumer", queues=queue)
    broker = clean.client(1)
    wait_until(lambda: broker.llen(queue) == 0, 30, "the queued message consumed")
    time.sleep(1)
    assert list(effects.raw.values()) == [1], effects.raw

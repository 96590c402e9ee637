"""The kill supervisor shared by the Redis-broker and RabbitMQ variants of the kill test."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from tests.chaos._harness import STATS, EffectServer, Workers, finish_all

N_TASKS = 5


def count_finished(client: Any, ids: list[str]) -> int:
    pipe = client.store.redis.pipeline(transaction=False)
    for rid in ids:
        pipe.hget(client.store.run_key(rid), "status")
    return sum(s in ("SUCCESS", "FAILURE", "CANCELED") for s in pipe.execute())


def run_under_kills(client: Any, ws: Workers, effects: EffectServer, *, runs: int, workers: int,
                    max_kills: int, delay: float, seed: int,
                    disrupt: Callable[[random.Random], int] | None = None) -> dict[str, Any]:
    """Start ``runs`` runs of the five-task job while a supervisor SIGKILLs a random worker at
    random moments (and starts a replacement); then check the promise. ``disrupt`` (another
    interruption, e.g. closing a worker's broker connection, which cancels its task in flight)
    returns how many workers it interrupted. Returns the counts."""
    rng = random.Random(seed)
    for i in range(workers):
        ws.start(name=f"k{i}")
    ids = [client.trigger("five", {"tag": f"r{i}", "delay": delay}).id for i in range(runs)]
    STATS["runs"] += runs
    kills_before = STATS["kills"]
    n = disrupted = 0
    while n < max_kills and count_finished(client, ids) < runs * 0.97:
        time.sleep(rng.uniform(0.3, 2.0))
        if disrupt is not None and rng.random() < 0.3:
            disrupted += disrupt(rng)
            continue
        victim = rng.choice(ws.alive())
        ws.kill(victim)
        n += 1
        ws.start(name=f"k{workers + n}")
    kills = STATS["kills"] - kills_before
    interruptions = kills + disrupted
    done = finish_all(client, ids, timeout=120)
    failed = {rid: h.get("error") for rid, h in done.items() if h["status"] != "SUCCESS"}
    assert not failed, f"runs failed: {list(failed.items())[:3]}"

    # deduplicated by the provider, every task's effect happened exactly once
    expected = {(f"r{i}", f"t{t}") for i in range(runs) for t in range(N_TASKS)}
    assert set(effects.effects) == expected
    dup = {k: c for k, c in effects.effects.items() if c != 1}
    STATS["duplicate_effects"] += sum(c - 1 for c in dup.values())
    assert not dup, f"effects that happened more than once: {dup}"
    # one idempotency key per task, the same in every execution and attempt
    assert all(len(keys) == 1 for keys in effects.key_of.values())

    # raw repeats: only tasks in flight at a kill (workers run one task at a time), each
    # recorded on its run; completed tasks never ran again
    repeated = {k: c - 1 for k, c in effects.raw.items() if c > 1}
    repeats = sum(repeated.values())
    STATS["raw_repeats"] += repeats
    assert repeats <= interruptions, (
        f"{repeats} repeated requests for {kills} kills and {disrupted} other interruptions: "
        f"{repeated}")
    flagged: set[str] = set()
    lost = 0
    for rid in ids:
        run = client.get_run(rid)
        lost += run.lost_executions
        assert [t.status for t in run.tasks] == ["COMPLETED"] * N_TASKS
        answers = [effects.answers[t.idem] for t in run.tasks]
        assert run.output == answers  # the run's output is the provider's first answer
        flagged |= {t.idem for t in run.tasks if t.rerun_after_loss}
    unrecorded = set(repeated) - flagged
    assert not unrecorded, f"repeated tasks not recorded on their run: {unrecorded}"
    assert lost <= interruptions
    return {"kills": kills, "disrupted": disrupted, "repeats": repeats, "flagged": len(flagged),
            "lost": lost}

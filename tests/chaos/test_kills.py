"""Item 1: workers SIGKILLed at random moments during 200 runs of a five-task job (three inline
tasks, two dispatched to an integration queue); every side effect goes to a provider that
deduplicates by ``Idempotency-Key``."""

from __future__ import annotations

import os

from tests.chaos._chaos_run import run_under_kills
from tests.chaos.conftest import make_client


def test_sigkill_at_random_moments_loses_no_run_and_repeats_no_completed_task(
        clean, effects, workers_for):
    store, broker = clean.url(0), clean.url(1)
    client = make_client(store, broker)
    ws = workers_for(store, broker, effects.url)
    seed = int(os.environ.get("CHAOS_SEED", "0")) or int.from_bytes(os.urandom(2), "big")
    print(f"chaos seed {seed}")
    out = run_under_kills(client, ws, effects, runs=200, workers=3, max_kills=10, delay=0.05,
                          seed=seed)
    print(out)
    assert out["kills"] >= 5

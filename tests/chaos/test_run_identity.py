"""A finished or canceled run is never brought back, and each scheduled slot starts one run.

Item 6: a run whose id derives from an event id is canceled during a wait; after its idempotency
record expired, the same event id arrives again: nothing is created, the canceled run stays
canceled and its side effects do not run. Item 7: a beat sending late in a long slot (an interval
of two days, a monthly cron) finds the slot's run; a catch-up tick fires only a real tick.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.chaos._harness import STATS, wait_until
from tests.chaos.conftest import make_client


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def test_an_event_seen_again_after_its_retention_never_revives_a_canceled_run(
        clean, effects, workers_for) -> None:
    store, broker = clean.url(0), clean.url(1)
    client = make_client(store, broker, idempotency_retention_s=1)
    ws = workers_for(store, broker, effects.url, TRIGGER_CELERY_IDEMPOTENCY_RETENTION_S="1")
    ws.start(name="identity")
    (first,) = client.send_event("chaos.wait", {"tag": "e1", "wait": 3}, id="e1")
    assert first.created
    wait_until(lambda: client.get_run(first.id).status == "WAITING", 30, "the run to wait")
    client.cancel_run(first.id)
    time.sleep(2)  # the event id's idempotency record expires (retention 1 s)
    assert not list(clean.client(0).scan_iter(match="*:event:*"))

    (again,) = client.send_event("chaos.wait", {"tag": "e1", "wait": 3}, id="e1")
    assert again.id == first.id and not again.created
    time.sleep(5)  # past the original wake-up: nothing may resume the canceled run
    run = client.get_run(first.id)
    assert run.status == "CANCELED"
    assert effects.effects[("e1", "before")] == 1 and effects.effects[("e1", "after")] == 0
    STATS["runs"] += 1


def test_one_run_per_slot_however_late_the_second_beat(clean) -> None:
    client = make_client(clean.url(0), clean.url(1))
    interval, monthly = client.jobs["every-2-days"], client.jobs["monthly"]
    slot = (ts(2026, 11, 29) // (2 * 86400)) * 2 * 86400
    first = client.trigger_slot(interval, slot + 5)
    late = client.trigger_slot(interval, slot + 30 * 3600)   # a second beat 30 h into the slot
    assert first is not None and late is not None
    assert first.created and not late.created and late.id == first.id
    (key,) = clean.client(0).scan_iter(match="*:trigger:every-2-days:*")
    assert clean.client(0).ttl(key) > 2 * 86400 - 30   # the record outlives the slot

    # a catch-up tick on the 29th fires the 10th's real tick (13:07), once
    a = client.trigger_slot(monthly, ts(2026, 11, 29, 20, 0))
    b = client.trigger_slot(monthly, ts(2026, 12, 9, 23, 0))   # later in the same slot
    assert a is not None and b is not None and a.created and not b.created
    assert client.get_run(a.id).payload == {"ts": "2026-11-10T13:07:00+00:00"}
    c = client.trigger_slot(monthly, ts(2026, 12, 10, 13, 7))  # the next tick: a new slot
    assert c is not None and c.created

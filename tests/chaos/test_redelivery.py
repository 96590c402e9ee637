"""Item 3 on the Redis broker: messages published twice, redelivery after a short
``visibility_timeout``, two workers racing for one run: one execution each."""

from __future__ import annotations

import time

from tests.chaos._dup import duplicates_run_once, redelivery_runs_once, restore_unacked
from tests.chaos.conftest import make_client


def test_messages_published_twice_race_to_one_execution(clean, effects, workers_for):
    store, broker = clean.url(0), clean.url(1)
    duplicates_run_once(make_client(store, broker), workers_for(store, broker, effects.url),
                        effects)


def test_redelivery_after_visibility_timeout_does_not_execute_twice(clean, effects, workers_for):
    store, broker = clean.url(0), clean.url(1)
    env = {"TRIGGER_CELERY_VISIBILITY_TIMEOUT_S": "3", "TRIGGER_CELERY_ETA_WINDOW_S": "1"}
    client = make_client(store, broker, visibility_timeout_s=3, eta_window_s=1)
    def redeliver() -> None:  # past the visibility timeout, while both still run
        time.sleep(4)
        restore_unacked(broker, 3)

    received = redelivery_runs_once(client, workers_for(store, broker, effects.url, **env),
                                    effects, redeliver=redeliver)
    # the broker did redeliver: some message was received more than once
    assert max(received.values()) >= 2, received

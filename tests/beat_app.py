"""An interval and a cron job for the two-beats test (``celery -A tests.beat_app beat``)."""

from __future__ import annotations

from trigger_celery import TriggerClient, cron_trigger, interval_trigger

client = TriggerClient("beat-tests", runs_queue="beat-tests", key_prefix="tcbeat")
celery = client.celery


@client.define_job(id="every-20s", version="1.0.0", trigger=interval_trigger(20))
def every_20s(payload, io, ctx):
    return io.run_task("tick", lambda: payload["ts"])


@client.define_job(id="every-minute", version="1.0.0", trigger=cron_trigger("* * * * *"))
def every_minute(payload, io, ctx):
    return payload["ts"]

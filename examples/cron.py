"""A cron example: a daily report at 09:00 UTC, scheduled by Celery beat (one run per slot even
with two beats running). Its payload is ``{"ts": "<slot time, ISO 8601>"}``."""

from __future__ import annotations

from examples.app import client
from trigger_celery import cron_trigger


@client.define_job(id="daily-report", name="Daily report", version="1.0.0",
                   trigger=cron_trigger("0 9 * * *"))
def daily_report(payload, io, ctx):
    counts = io.run_task("count", lambda: {"runs": len(client.list_runs(limit=100))})
    io.logger.info("report", slot=payload["ts"], **counts)
    return {"slot": payload["ts"], **counts}

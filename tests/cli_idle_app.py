"""An app whose runs queue no worker consumes (``cli-idle``): the CLI says so."""

from __future__ import annotations

from trigger_celery import TriggerClient, invoke_trigger

client = TriggerClient("cli-idle", runs_queue="cli-idle", key_prefix="tcidle")


@client.define_job(id="idle", version="1.0.0", trigger=invoke_trigger())
def idle(payload, io, ctx):
    return {"ran": True}

"""An app whose runs queue no worker consumes (``cli-idle``), and whose integration's queue
(``mute``) none does either (a test starts a worker on ``cli-idle`` only): the CLI says so."""

from __future__ import annotations

from pydantic import BaseModel

from trigger_celery import TriggerClient, invoke_trigger
from trigger_celery.integration import Integration, Namespace, TaskInfo, operation

client = TriggerClient("cli-idle", runs_queue="cli-idle", key_prefix="tcidle")
celery = client.celery


@client.define_job(id="idle", version="1.0.0", trigger=invoke_trigger())
def idle(payload, io, ctx):
    return {"ran": True}


class Say(BaseModel):
    text: str


class Lines(Namespace):
    name = "lines"

    @operation(params=Say, display="Say {text}")
    def say(client: str, params: Say, task: TaskInfo) -> str:
        return params.text


class Mute(Integration):
    id = "mute"
    namespaces = (Lines,)
    credential_env = "MUTE_TOKEN"

    def create_client(self, credential: str) -> str:
        return credential


@client.define_job(id="idle-say", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"mute": Mute()})
def idle_say(payload, io, ctx):
    return io.mute.lines.say("say", text="hi")

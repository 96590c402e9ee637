"""A user's app, as the testing kit's docs show it: a job calling GitHub through the replay
server named by ``KIT_GITHUB_URL``."""

import os

from trigger_celery import TriggerClient, invoke_trigger
from trigger_celery_github import GitHub

client = TriggerClient("kit-user", runs_queue="kit-user")
celery = client.celery
github = GitHub(base_url=os.environ.get("KIT_GITHUB_URL", "http://127.0.0.1:9"), queue="kit-github")


@client.define_job(id="who", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"github": github})
def who(payload, io, ctx):
    return io.github.users.get_by_username("user", username=payload["user"])["login"]

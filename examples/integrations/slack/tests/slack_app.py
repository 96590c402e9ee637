"""A job posting then editing a Slack message, for the real worker of ``test_slack_worker``.

The Web API root comes from ``TESTS_SLACK_BASE_URL`` (the test's replay server); the bot token
from ``SLACK_BOT_TOKEN``, on the worker only.
"""

from __future__ import annotations

import os
from typing import Any

from trigger_celery import TriggerClient, invoke_trigger
from trigger_celery_slack import Slack

client = TriggerClient("tests-slack", runs_queue="tests-slack")
celery = client.celery

slack = Slack(base_url=os.environ.get("TESTS_SLACK_BASE_URL", "http://127.0.0.1:9/api/"))


@client.define_job(id="slack-announce", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"slack": slack})
def announce(payload: dict[str, Any], io: Any, ctx: Any) -> str:
    posted = io.slack.chat.post_message("post", channel=payload["channel"], text=payload["text"])
    io.slack.chat.update("done", channel=posted["channel"], ts=posted["ts"],
                         text=f"{payload['text']} (done)")
    return str(posted["ts"])

"""Jobs calling GitHub through the integration, run by real workers against a replay server.

The replay server's URL comes from ``TESTS_GITHUB_BASE_URL``; the token from ``GITHUB_TOKEN``
(set on the worker only). With ``TESTS_CAPTURE_MESSAGES`` every published Celery message is kept
in Redis (``captured:messages``) so a test can scan it for secrets.
"""

from __future__ import annotations

import json
import os
import time

import redis
from celery.signals import before_task_publish

from trigger_celery import TriggerClient, invoke_trigger
from trigger_celery_github import GitHub

client = TriggerClient("tests-github", runs_queue="tests-github")
celery = client.celery
side = redis.Redis.from_url(client.settings.redis_url, decode_responses=True)

github = GitHub(
    base_url=os.environ.get("TESTS_GITHUB_BASE_URL", "http://127.0.0.1:9"),
    secondary_limit_floor_s=float(os.environ.get("TESTS_GITHUB_SECONDARY_FLOOR_S", "60")),
)
REPO = {"owner": "octo", "repo": "hello"}


@client.define_job(id="create-issue", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"github": github})
def create_issue(payload, io, ctx):
    issue = io.github.issues.create("create", **REPO, title=payload["title"],
                                    labels=payload.get("labels"))
    io.logger.info("created issue", number=issue["number"])
    return {"number": issue["number"], "title": issue["title"]}


@client.define_job(id="quick", version="1.0.0", trigger=invoke_trigger())
def quick(payload, io, ctx):
    return io.run_task("only", lambda: {"t": time.time()})


@client.define_job(id="comment-react", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"github": github})
def comment_react(payload, io, ctx):
    return io.github.issues.create_comment_with_reaction(
        "comment-react", **REPO, issue_number=1, body="Thanks!", reaction="heart")


@client.define_job(id="sdk-client", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"github": github})
def sdk_client(payload, io, ctx):
    return io.github.run_task(
        "login", lambda gh, task: {"login": gh.get_user(payload["user"]).login,
                                   "attempts": task.attempts})


@client.define_job(id="triage", version="1.0.0",
                   trigger=github.triggers.on_issue_opened(owner="Codertocat", repo="Hello-World"),
                   integrations={"github": github})
def triage(payload, io, ctx):
    issue = payload["issue"]
    io.github.issues.add_labels("label", owner="Codertocat", repo="Hello-World",
                                issue_number=issue["number"], labels=["triage"])
    return {"labeled": issue["number"], "delivery": ctx.event_id}


if os.environ.get("TESTS_CAPTURE_MESSAGES"):
    @before_task_publish.connect
    def _capture(body=None, headers=None, **kwargs):
        side.rpush("captured:messages", json.dumps({"headers": headers, "body": body},
                                                   default=repr))

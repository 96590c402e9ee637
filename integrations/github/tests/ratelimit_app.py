"""Jobs posting GitHub comments under a scaled rate limit, for ``test_github_ratelimit.py``.

``TESTS_RL_LIMIT`` calls per ``TESTS_RL_PERIOD_S`` seconds on content-creating operations (GitHub's
80 per minute, scaled down so a test sees many windows in a minute); the replay server's URL
comes from ``TESTS_GITHUB_BASE_URL``.
"""

from __future__ import annotations

import os

from trigger_celery import RateLimit, TriggerClient, invoke_trigger
from trigger_celery_github import CONTENT_CREATING_OPERATIONS, GitHub

client = TriggerClient("tests-github-rl", runs_queue="tests-github-rl")
celery = client.celery

LIMIT = int(os.environ.get("TESTS_RL_LIMIT", "5"))
PERIOD_S = float(os.environ.get("TESTS_RL_PERIOD_S", "5"))
github = GitHub(
    base_url=os.environ.get("TESTS_GITHUB_BASE_URL", "http://127.0.0.1:9"), queue="github-rl",
    rate_limits=[RateLimit(limit=LIMIT, period_s=PERIOD_S, scope="content-creation",
                           operations=CONTENT_CREATING_OPERATIONS)],
)
REPO = {"owner": "octo", "repo": "hello"}


@client.define_job(id="comments", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"github": github})
def comments(payload, io, ctx):
    ids = []
    for i in range(payload["n"]):
        comment = io.github.issues.create_comment(
            f"comment-{i}", **REPO, issue_number=1, body=f"{payload['tag']} #{i}")
        ids.append(comment["id"])
    return ids


@client.define_job(id="read-then-comment", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"github": github})
def read_then_comment(payload, io, ctx):
    number = io.github.issues.get("get", **REPO, issue_number=1)["number"]
    comment = io.github.issues.create_comment("comment", **REPO, issue_number=1, body="after")
    return [number, comment["id"]]


@client.define_job(id="limited-reads", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"github": github},
                   rate_limits=[RateLimit(limit=2, period_s=2, scope="reads")])
def limited_reads(payload, io, ctx):
    """Reads are not content-creating: only the job's own limit (2 per 2 s) holds them."""
    return [io.github.issues.get(f"get-{i}", **REPO, issue_number=1)["number"] for i in range(2)]


#: No GITHUB_TOKEN_NOKEY on the workers: calls fail with a ConfigurationError, not a hang.
github_nokey = GitHub(connection_key="nokey", queue="github-rl",
                      base_url=os.environ.get("TESTS_GITHUB_BASE_URL", "http://127.0.0.1:9"))


@client.define_job(id="no-token", version="1.0.0", trigger=invoke_trigger(),
                   integrations={"github": github_nokey})
def no_token(payload, io, ctx):
    return io.github.issues.create_comment("comment", **REPO, issue_number=1, body="x")


# A second app whose ETA window (0.5 s) is shorter than its limit's waits (1 call per 2 s): a
# waiting call is not a countdown message; its run wakes at the slot (the schedule) and sends it.
short = TriggerClient("tests-github-rl-short", runs_queue="tests-github-rl-short",
                      eta_window_s=0.5, poll_interval_s=0.5)
short_celery = short.celery
github_short = GitHub(
    base_url=os.environ.get("TESTS_GITHUB_BASE_URL", "http://127.0.0.1:9"), queue="github-rl-short",
    connection_key="short", credential=os.environ.get("GITHUB_TOKEN"),
    rate_limits=[RateLimit(limit=1, period_s=2, scope="content-creation",
                           operations=CONTENT_CREATING_OPERATIONS)],
)


@short.define_job(id="two-comments", version="1.0.0", trigger=invoke_trigger(),
                  integrations={"github": github_short})
def two_comments(payload, io, ctx):
    return [io.github.issues.create_comment(f"c-{i}", **REPO, issue_number=1, body=f"#{i}")["id"]
            for i in range(2)]

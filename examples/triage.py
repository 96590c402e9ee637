"""The main example: triage new GitHub issues.

A GitHub ``issues.opened`` event (a webhook, or ``trigger-celery send-event``) starts the job. It
labels the issue, posts a comment, waits, reacts to the issue and logs what it did. Each GitHub
call is a Celery task (``github.issues.add_labels``, ...) on the ``github`` queue; a rate-limited
call runs again at GitHub's reset time.

    uv run --frozen python -m examples            # demo: the replay server, no network
    uv run --frozen python -m examples --live --repo OWNER/NAME --issue N
                                                  # live: GitHub, with GITHUB_TOKEN
"""

from __future__ import annotations

from examples.app import TRIAGE_REPO, client, github

OWNER, REPO = TRIAGE_REPO.split("/", 1)
COOL_DOWN_S = 2


@client.define_job(
    id="issue-triage", name="Triage new issues", version="1.0.0",
    trigger=github.triggers.on_issue_opened(owner=OWNER, repo=REPO),
    integrations={"github": github},
)
def triage(payload, io, ctx):
    issue = payload["issue"]
    repo = {"owner": payload["repository"]["owner"]["login"],
            "repo": payload["repository"]["name"]}
    number = issue["number"]
    io.logger.info("triaging", issue=number, title=issue.get("title"))
    io.github.issues.add_labels("label", **repo, issue_number=number, labels=["triage"])
    comment = io.github.issues.create_comment(
        "comment", **repo, issue_number=number,
        body=f"Thanks @{issue['user']['login']}! A maintainer will look at this soon.")
    io.wait("cool-down", seconds=COOL_DOWN_S)
    io.github.reactions.create_for_issue("react", **repo, issue_number=number, content="eyes")
    io.logger.info("triaged", issue=number, comment=comment["id"])
    return {"issue": number, "comment_id": comment["id"], "label": "triage"}


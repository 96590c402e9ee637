"""GitHub operations through a real PyGithub client against the local replay server.

Each operation must make exactly the one request that does its work (no GETs of the repository or
issue first), send the body GitHub documents, and return the API's JSON. Fixtures are our own
(tests/fixtures/github/*.json); the conformance tests replay PyGithub's recordings from
../shared/fixtures when that folder exists.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import github
import pytest

from tests.support import SHARED_FIXTURES
from trigger_celery import ValidationError
from trigger_celery.integration import TaskInfo
from trigger_celery.testing import ReplayServer
from trigger_celery_github import GitHub
from trigger_celery_github.reactions import REACTION_CONTENTS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECORDINGS = SHARED_FIXTURES / "github" / "replay"
TOKEN = "ghp_test_token_not_real"
REPO = {"owner": "octo-org", "repo": "hello-world"}


def task_info(attempts: int = 1) -> TaskInfo:
    return TaskInfo(run_id="run_1", key="k", idempotency_key="0" * 64, name="github.test",
                    attempts=attempts)


@pytest.fixture
def server():
    with ReplayServer() as srv:
        yield srv


@pytest.fixture
def gh(server: ReplayServer) -> GitHub:
    return GitHub(credential=TOKEN, base_url=server.base_url)


@pytest.fixture
def client(gh: GitHub):
    c = gh.client()
    yield c
    c.close()


def call(op_name: str, client: Any, params: dict[str, Any], attempts: int = 1) -> Any:
    op = GitHub.operations()[op_name]
    return op.fn(client, op.validate(f"github.{op_name}", params), task_info(attempts))


def rewritten(server: ReplayServer, value: Any) -> Any:
    return json.loads(json.dumps(value).replace("https://api.github.com", server.base_url))


# (operation, params, expected display name, expected properties)
CASES: list[tuple[str, dict[str, Any], str, list[dict[str, str]]]] = [
    ("issues.create",
     {**REPO, "title": "Found a bug", "body": "I'm having a problem with this.",
      "labels": ["bug"], "assignees": ["octocat"], "milestone": 1},
     "Create issue Found a bug",
     [{"label": "Repo", "text": "octo-org/hello-world"},
      {"label": "Title", "text": "Found a bug"}]),
    ("issues.get", {**REPO, "issue_number": 1347}, "Get issue #1347",
     [{"label": "Repo", "text": "octo-org/hello-world"}, {"label": "Issue", "text": "#1347"}]),
    ("issues.update",
     {**REPO, "issue_number": 1347, "state": "closed", "state_reason": "completed",
      "milestone": None},
     "Update issue #1347",
     [{"label": "Repo", "text": "octo-org/hello-world"}, {"label": "Issue", "text": "#1347"}]),
    ("issues.create_comment", {**REPO, "issue_number": 1347, "body": "Me too"},
     "Comment on issue #1347",
     [{"label": "Repo", "text": "octo-org/hello-world"}, {"label": "Issue", "text": "#1347"}]),
    ("issues.add_labels", {**REPO, "issue_number": 1347, "labels": ["bug", "good first issue"]},
     "Add labels to issue #1347",
     [{"label": "Repo", "text": "octo-org/hello-world"}, {"label": "Issue", "text": "#1347"},
      {"label": "Labels", "text": "bug, good first issue"}]),
    ("issues.add_assignees", {**REPO, "issue_number": 1347, "assignees": ["hubot"]},
     "Assign issue #1347",
     [{"label": "Repo", "text": "octo-org/hello-world"}, {"label": "Issue", "text": "#1347"},
      {"label": "Assignees", "text": "hubot"}]),
    ("reactions.create_for_issue", {**REPO, "issue_number": 1347, "content": "heart"},
     "React heart to issue #1347",
     [{"label": "Repo", "text": "octo-org/hello-world"}, {"label": "Issue", "text": "#1347"},
      {"label": "Reaction", "text": "heart"}]),
    ("reactions.create_for_issue_comment", {**REPO, "comment_id": 42, "content": "+1"},
     "React +1 to comment 42",
     [{"label": "Repo", "text": "octo-org/hello-world"}, {"label": "Comment", "text": "42"},
      {"label": "Reaction", "text": "+1"}]),
    ("repos.get", REPO, "Get repo octo-org/hello-world",
     [{"label": "Repo", "text": "octo-org/hello-world"}]),
    ("repos.create_webhook",
     {**REPO, "config": {"url": "https://example.com/webhook", "secret": "s3cr3t",
                         "insecure_ssl": "0"},
      "events": ["issues", "issue_comment"]},
     "Create webhook on octo-org/hello-world",
     [{"label": "Repo", "text": "octo-org/hello-world"},
      {"label": "URL", "text": "https://example.com/webhook"},
      {"label": "Events", "text": "issues, issue_comment"}]),
    ("repos.list_webhooks", {**REPO, "per_page": 2}, "List webhooks of octo-org/hello-world",
     [{"label": "Repo", "text": "octo-org/hello-world"}]),
    ("pulls.create",
     {**REPO, "head": "octocat:new-feature", "base": "main", "title": "Amazing new feature",
      "body": "Please pull these awesome changes in!", "draft": False},
     "Create pull request Amazing new feature",
     [{"label": "Repo", "text": "octo-org/hello-world"},
      {"label": "Branches", "text": "octocat:new-feature -> main"}]),
    ("pulls.get", {**REPO, "pull_number": 1347}, "Get pull request #1347",
     [{"label": "Repo", "text": "octo-org/hello-world"}, {"label": "Pull", "text": "#1347"}]),
    ("git.get_ref", {**REPO, "ref": "heads/featureA"}, "Get ref heads/featureA",
     [{"label": "Repo", "text": "octo-org/hello-world"},
      {"label": "Ref", "text": "heads/featureA"}]),
    ("git.create_ref",
     {**REPO, "ref": "refs/heads/featureA", "sha": "aa218f56b14c9653891f9e74264a383fa43fefbd"},
     "Create ref refs/heads/featureA",
     [{"label": "Repo", "text": "octo-org/hello-world"},
      {"label": "Ref", "text": "refs/heads/featureA"}]),
    ("users.get_by_username", {"username": "octocat"}, "Get user octocat",
     [{"label": "User", "text": "octocat"}]),
    ("rate_limit.get", {}, "Get rate limit", []),
]


def test_every_operation_has_a_case_and_a_fixture() -> None:
    ops = set(GitHub.operations())
    covered = {name for name, *_ in CASES} | {"issues.list_for_repo"}
    assert ops == covered
    assert {p.stem for p in FIXTURES.glob("*.json")} == ops


@pytest.mark.parametrize(("op_name", "params", "display", "properties"), CASES,
                         ids=[c[0] for c in CASES])
def test_operation_makes_exactly_its_one_request(
    server: ReplayServer, client: Any, op_name: str, params: dict[str, Any], display: str,
    properties: list[dict[str, str]],
) -> None:
    (exchange,) = server.load(FIXTURES / f"{op_name}.json")

    output = call(op_name, client, params)

    assert len(server.requests) == 1, server.requests
    (request,) = server.requests
    assert request.method == exchange.method
    assert request.full_path == exchange.path
    assert request.json() == exchange.request_json()
    assert request.headers["authorization"] == f"token {TOKEN}"
    assert server.unexpected == []
    # the API's own JSON, with the recorded host rewritten to the replay server
    assert output == rewritten(server, json.loads(exchange.body))

    op = GitHub.operations()[op_name]
    validated = op.validate(op_name, params)
    assert op.display_name(validated) == display
    assert op.display_properties(validated) == properties


def test_issues_create_sends_only_what_is_given(server: ReplayServer, client: Any) -> None:
    server.add("POST", "/repos/octo-org/hello-world/issues", status=201,
               body={"number": 1, "title": "t"})
    out = call("issues.create", client, {**REPO, "title": "t"})
    assert out == {"number": 1, "title": "t"}
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/repos/octo-org/hello-world/issues")
    ]
    assert server.requests[0].json() == {"title": "t"}


def test_a_non_lazy_client_still_makes_one_request(server: ReplayServer) -> None:
    eager = github.Github(auth=github.Auth.Token(TOKEN), base_url=server.base_url, retry=None,
                          seconds_between_requests=None, seconds_between_writes=None)
    try:
        server.load(FIXTURES / "issues.create_comment.json")
        call("issues.create_comment", eager, {**REPO, "issue_number": 1347, "body": "Me too"})
    finally:
        eager.close()
    assert [r.method for r in server.requests] == ["POST"]


def test_list_for_repo_follows_pages_only_when_asked(server: ReplayServer, client: Any) -> None:
    params = {**REPO, "state": "open", "labels": ["bug", "ui"], "per_page": 1}
    first, second = server.load(FIXTURES / "issues.list_for_repo.json")

    one_page = call("issues.list_for_repo", client, params)
    assert [i["number"] for i in one_page] == [1347]
    assert len(server.requests) == 1
    assert server.requests[0].query == {"state": ["open"], "labels": ["bug,ui"], "per_page": ["1"]}

    server.clear()
    server.load(FIXTURES / "issues.list_for_repo.json")
    every_page = call("issues.list_for_repo", client, {**params, "all_pages": True})
    assert [i["number"] for i in every_page] == [1347, 1348]
    assert [r.query.get("page") for r in server.requests] == [None, ["2"]]
    assert every_page[1]["url"] == f"{server.base_url}/repos/octo-org/hello-world/issues/1348"
    assert server.pending() == []


@pytest.mark.parametrize(
    ("op_name", "params", "field"),
    [
        ("issues.create", {**REPO, "title": "x", "colour": "red"}, "colour"),
        ("issues.create", {**REPO, "title": ""}, "title"),
        ("issues.create", {"owner": "a/b", "repo": "r", "title": "x"}, "owner"),
        ("issues.get", {"owner": "octo", "repo": "..", "issue_number": 1}, "repo"),
        ("reactions.create_for_issue", {**REPO, "issue_number": 1, "content": "thumbsup"},
         "content"),
        ("issues.list_for_repo", {**REPO, "per_page": 101}, "per_page"),
        ("git.create_ref", {**REPO, "ref": "heads/x", "sha": "a" * 40}, "ref"),
        ("pulls.create", {**REPO, "head": "a", "base": "b"}, "(params)"),
        ("rate_limit.get", {"resource": "core"}, "resource"),
    ],
)
def test_bad_params_fail_before_any_request(
    server: ReplayServer, client: Any, op_name: str, params: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError, match=field.replace("(", r"\(").replace(")", r"\)")):
        call(op_name, client, params)
    assert server.requests == []


def test_reaction_set_is_githubs() -> None:
    assert set(REACTION_CONTENTS) == {
        "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"
    }


def test_webhook_secret_is_redacted_and_token_never_in_repr(gh: GitHub) -> None:
    assert GitHub.operations()["repos.create_webhook"].redact == ("config.secret",)
    assert TOKEN not in repr(gh)
    assert gh.credential() == TOKEN


def test_integration_shape() -> None:
    from trigger_celery import retry

    assert GitHub.id == "github" and GitHub.icon == "github"
    assert GitHub.retry == retry.standard_backoff
    assert GitHub.credential_env == "GITHUB_TOKEN"
    assert [ns.name for ns in GitHub.namespaces] == [
        "issues", "reactions", "repos", "pulls", "git", "users", "rate_limit"
    ]
    gh = GitHub(connection_key="work", credential="x", secondary_limit_floor_s=5)
    assert gh.credential_env_var == "GITHUB_TOKEN_WORK"
    assert gh.secondary_limit_floor_s == 5.0
    assert gh.base_url == "https://api.github.com"


def test_client_settings(gh: GitHub, server: ReplayServer) -> None:
    c = gh.create_client(TOKEN)
    try:
        assert c.requester.is_lazy
        assert c.requester.base_url == server.base_url
    finally:
        c.close()


# -- conformance: PyGithub's own recordings -------------------------------------------------

needs_recordings = pytest.mark.skipif(
    not RECORDINGS.is_dir(), reason=f"recorded GitHub exchanges not found at {RECORDINGS}"
)


def recording(name: str) -> Path:
    return RECORDINGS / f"{name}.txt"


@needs_recordings
@pytest.mark.parametrize(
    ("file", "op_name", "params", "expect"),
    [
        ("Repository.testCreateIssue", "issues.create",
         {"owner": "PyGithub", "repo": "PyGithub", "title": "Issue created by PyGithub"},
         {"number": 28}),
        ("Issue.testCreateComment", "issues.create_comment",
         {"owner": "PyGithub", "repo": "PyGithub", "issue_number": 28,
          "body": "Comment created by PyGithub"},
         {"id": 5808311}),
        ("Issue.testCreateReaction", "reactions.create_for_issue",
         {"owner": "PyGithub", "repo": "PyGithub", "issue_number": 28, "content": "hooray"},
         {"content": "hooray"}),
        ("Repository.setUp", "repos.get", {"owner": "PyGithub", "repo": "PyGithub"},
         {"full_name": "PyGithub/PyGithub"}),
        ("Issue.setUp", "issues.get",
         {"owner": "PyGithub", "repo": "PyGithub", "issue_number": 28}, {"number": 28}),
        ("RateLimiting.testGetRateLimit", "rate_limit.get", {}, {}),
    ],
)
def test_conformance_single_request(
    server: ReplayServer, client: Any, file: str, op_name: str, params: dict[str, Any],
    expect: dict[str, Any],
) -> None:
    exchanges = server.load(recording(file))
    output = call(op_name, client, params)

    (request,) = server.requests
    served = [ex for ex in exchanges if ex.served]
    assert len(served) == 1
    assert (request.method, request.full_path) == (served[0].method, served[0].path)
    assert request.json() == served[0].request_json()
    assert output == rewritten(server, json.loads(served[0].body))
    assert {k: output[k] for k in expect} == expect
    assert "https://api.github.com" not in json.dumps(output)


@needs_recordings
def test_conformance_add_labels_with_odd_names(server: ReplayServer, client: Any) -> None:
    odd = "Label with spaces and strange characters (&*#$)"
    exchanges = server.load(recording("Issue50.testAddLabelToIssue"))
    labels = call("issues.add_labels", client,
                  {"owner": "jacquev6", "repo": "PyGithub", "issue_number": 50, "labels": [odd]})

    # only the POST: the recorded setUp GET of the label (a URL-quoted path) is not needed
    (request,) = server.requests
    assert (request.method, request.full_path) == (
        "POST", "/repos/jacquev6/PyGithub/issues/50/labels"
    )
    assert request.json() == [odd] == exchanges[1].request_json()
    assert odd in [label["name"] for label in labels]
    quoted = "Label+with+spaces+and+strange+characters+%28%26%2A%23%24%29"
    assert f"{server.base_url}/repos/jacquev6/PyGithub/labels/{quoted}" in [
        label["url"] for label in labels
    ]
    # the unused GET stays queued and is still served at its URL-quoted path
    assert [ex.method for ex in server.pending()] == ["GET"]


@needs_recordings
def test_conformance_primary_rate_limit_without_reset(
    server: ReplayServer, gh: GitHub, client: Any
) -> None:
    server.load(recording("SpecificExceptions.testRateLimitExceeded"))
    params = {"username": "jacquev6"}
    assert call("users.get_by_username", client, params)["login"] == "jacquev6"
    with pytest.raises(github.RateLimitExceededException) as info:
        call("users.get_by_username", client, params)
    assert [(r.method, r.full_path) for r in server.requests] == [("GET", "/users/jacquev6")] * 2

    now = datetime(2030, 1, 1, tzinfo=UTC)
    decision = gh.on_error(info.value, task_info(attempts=1), None, now=now)
    assert decision is not None and not decision.skip_retrying
    # no x-ratelimit-reset in the recording: the standard_backoff preset's first delay
    assert 0.5 <= (decision.retry_at - now).total_seconds() < 1.0
    later = gh.on_error(info.value, task_info(attempts=4), None, now=now)
    assert later is not None and later.retry_at - now > decision.retry_at - now

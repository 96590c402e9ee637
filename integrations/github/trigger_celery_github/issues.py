"""``io.github.issues.*``: octokit's ``rest.issues`` methods in snake_case, over PyGithub.

Each operation returns the API's JSON (GitHub REST docs, "Issues" and "Issue comments" and
"Labels" and "Assignees" pages) and makes exactly the one request named in its docstring.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import github
from github.GithubObject import NotSet
from pydantic import Field

from trigger_celery.integration import Namespace, TaskInfo, compound, operation
from trigger_celery_github._common import (
    RepoParams,
    lazy_repo,
    list_json,
    repo_property,
    request_json,
)


class CreateIssue(RepoParams):
    title: str = Field(min_length=1)
    body: str | None = None
    labels: list[str] | None = None
    assignees: list[str] | None = None
    milestone: int | None = Field(default=None, ge=1, description="milestone number")


class IssueRef(RepoParams):
    issue_number: int = Field(ge=1)


class UpdateIssue(IssueRef):
    """Fields left out are not sent; ``milestone=None`` sent explicitly clears the milestone."""

    title: str | None = None
    body: str | None = None
    state: Literal["open", "closed"] | None = None
    state_reason: Literal["completed", "not_planned", "reopened"] | None = None
    labels: list[str] | None = None
    assignees: list[str] | None = None
    milestone: int | None = Field(default=None, ge=1)


class CreateComment(IssueRef):
    body: str = Field(min_length=1)


class AddLabels(IssueRef):
    labels: list[str] = Field(min_length=1)


class AddAssignees(IssueRef):
    assignees: list[str] = Field(min_length=1)


class CreateCommentWithReaction(IssueRef):
    body: str = Field(min_length=1)
    reaction: Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]


class ListForRepo(RepoParams):
    state: Literal["open", "closed", "all"] | None = None
    labels: list[str] | None = None
    per_page: int | None = Field(default=None, ge=1, le=100)
    page: int | None = Field(default=None, ge=1)
    all_pages: bool = False


def _issue_props(p: IssueRef) -> list[dict[str, str]]:
    return [repo_property(p), {"label": "Issue", "text": f"#{p.issue_number}"}]


def _lazy_issue(client: github.Github, p: IssueRef) -> github.Issue.Issue:
    """An ``Issue`` that has made no request (url ``/repos/{owner}/{repo}/issues/{n}``)."""
    return lazy_repo(client, p).get_issue(p.issue_number)


class Issues(Namespace):
    """GitHub issues (octokit ``issues``)."""

    name = "issues"

    @operation(
        params=CreateIssue,
        display="Create issue {title}",
        properties=lambda p: [repo_property(p), {"label": "Title", "text": p.title}],
    )
    def create(client: github.Github, params: CreateIssue, task: TaskInfo) -> dict[str, Any]:
        """``POST /repos/{owner}/{repo}/issues`` (one request); returns the new issue."""
        repo = lazy_repo(client, params)
        milestone: Any = NotSet
        if params.milestone is not None:
            # a lazy Milestone carrying only its number: PyGithub sends milestone._identity
            milestone = github.Milestone.Milestone(
                repo.requester, attributes={"number": params.milestone}, completed=False
            )
        issue = repo.create_issue(
            title=params.title,
            body=NotSet if params.body is None else params.body,
            labels=NotSet if params.labels is None else params.labels,
            assignees=NotSet if params.assignees is None else params.assignees,
            milestone=milestone,
        )
        return issue.raw_data

    @operation(params=IssueRef, display="Get issue #{issue_number}", properties=_issue_props)
    def get(client: github.Github, params: IssueRef, task: TaskInfo) -> dict[str, Any]:
        """``GET /repos/{owner}/{repo}/issues/{issue_number}``; returns the issue."""
        return _lazy_issue(client, params).raw_data

    @operation(params=UpdateIssue, display="Update issue #{issue_number}", properties=_issue_props)
    def update(client: github.Github, params: UpdateIssue, task: TaskInfo) -> dict[str, Any]:
        """``PATCH /repos/{owner}/{repo}/issues/{issue_number}`` with only the fields given.

        Sent through PyGithub's Requester: ``Issue.edit`` does not keep the response JSON.
        """
        body = params.model_dump(
            exclude_unset=True, exclude={"owner", "repo", "issue_number"}
        )
        _, data = request_json(client, "PATCH", _lazy_issue(client, params).url, input=body)
        return cast("dict[str, Any]", data)

    @operation(
        params=CreateComment,
        display="Comment on issue #{issue_number}",
        properties=_issue_props,
    )
    def create_comment(
        client: github.Github, params: CreateComment, task: TaskInfo
    ) -> dict[str, Any]:
        """``POST /repos/{owner}/{repo}/issues/{issue_number}/comments``; returns the comment."""
        return _lazy_issue(client, params).create_comment(params.body).raw_data

    @operation(
        params=AddLabels,
        display="Add labels to issue #{issue_number}",
        properties=lambda p: [*_issue_props(p), {"label": "Labels", "text": ", ".join(p.labels)}],
    )
    def add_labels(client: github.Github, params: AddLabels, task: TaskInfo) -> list[Any]:
        """``POST /repos/{owner}/{repo}/issues/{issue_number}/labels`` with the label names as
        a JSON list (PyGithub's ``add_to_labels`` body); returns all labels of the issue.

        Sent through PyGithub's Requester: ``add_to_labels`` returns ``None``.
        """
        issue = _lazy_issue(client, params)
        _, data = request_json(client, "POST", f"{issue.url}/labels", input=list(params.labels))
        return cast("list[Any]", data)

    @operation(
        params=AddAssignees,
        display="Assign issue #{issue_number}",
        properties=lambda p: [
            *_issue_props(p), {"label": "Assignees", "text": ", ".join(p.assignees)}
        ],
    )
    def add_assignees(
        client: github.Github, params: AddAssignees, task: TaskInfo
    ) -> dict[str, Any]:
        """``POST /repos/{owner}/{repo}/issues/{issue_number}/assignees`` with
        ``{"assignees": [...]}``; returns the issue.

        Sent through PyGithub's Requester: ``add_to_assignees`` does not keep the response JSON.
        """
        issue = _lazy_issue(client, params)
        _, data = request_json(
            client, "POST", f"{issue.url}/assignees", input={"assignees": list(params.assignees)}
        )
        return cast("dict[str, Any]", data)

    @operation(
        params=ListForRepo,
        display="List issues of {owner}/{repo}",
        properties=lambda p: [repo_property(p)],
    )
    def list_for_repo(client: github.Github, params: ListForRepo, task: TaskInfo) -> list[Any]:
        """``GET /repos/{owner}/{repo}/issues?state=&labels=a,b&per_page=&page=``; with
        ``all_pages`` the ``Link: rel="next"`` pages follow (one GET each). Returns the issues.
        """
        query: dict[str, Any] = {}
        if params.state is not None:
            query["state"] = params.state
        if params.labels is not None:
            query["labels"] = ",".join(params.labels)
        if params.per_page is not None:
            query["per_page"] = params.per_page
        if params.page is not None:
            query["page"] = params.page
        url = f"{lazy_repo(client, params).url}/issues"
        return list_json(client, url, query, all_pages=params.all_pages)

    @compound(
        params=CreateCommentWithReaction,
        display="Comment on #{issue_number} and react {reaction}",
        properties=lambda p: [*_issue_props(p), {"label": "Reaction", "text": p.reaction}],
    )
    def create_comment_with_reaction(github_io: Any, params: CreateCommentWithReaction) -> Any:
        """A parent task with two subtasks (Trigger.dev's ``createIssueCommentWithReaction``):
        ``issues.create_comment`` then ``reactions.create_for_issue_comment`` on the new comment.
        Returns ``{"comment": <comment JSON>, "reaction": <reaction JSON>}``.
        """
        repo = {"owner": params.owner, "repo": params.repo}
        comment = github_io.issues.create_comment(
            "comment", **repo, issue_number=params.issue_number, body=params.body)
        reaction = github_io.reactions.create_for_issue_comment(
            "reaction", **repo, comment_id=comment["id"], content=params.reaction)
        return {"comment": comment, "reaction": reaction}

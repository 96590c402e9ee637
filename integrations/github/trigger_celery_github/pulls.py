"""``io.github.pulls.*``: octokit's ``rest.pulls`` methods in snake_case, over PyGithub.

GitHub REST docs, "Pull requests": ``title`` is required unless ``issue`` converts an existing
issue into the pull request.
"""

from __future__ import annotations

from typing import Any

import github
from github.GithubObject import NotSet
from pydantic import Field, model_validator

from trigger_celery.integration import Namespace, TaskInfo, operation
from trigger_celery_github._common import RepoParams, lazy_repo, repo_property


class CreatePull(RepoParams):
    head: str = Field(min_length=1, description="branch, or 'owner:branch' across forks")
    base: str = Field(min_length=1)
    title: str | None = None
    body: str | None = None
    draft: bool | None = None
    maintainer_can_modify: bool | None = None
    head_repo: str | None = None
    issue: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _title_or_issue(self) -> CreatePull:
        if (self.title is None) == (self.issue is None):
            raise ValueError("give exactly one of title or issue")
        return self


class PullRef(RepoParams):
    pull_number: int = Field(ge=1)


def _opt(value: Any) -> Any:
    return NotSet if value is None else value


class Pulls(Namespace):
    """Pull requests (octokit ``pulls``)."""

    name = "pulls"

    @operation(
        params=CreatePull,
        display=lambda p: f"Create pull request {p.title or f'from issue #{p.issue}'}",
        properties=lambda p: [
            repo_property(p), {"label": "Branches", "text": f"{p.head} -> {p.base}"}
        ],
    )
    def create(client: github.Github, params: CreatePull, task: TaskInfo) -> dict[str, Any]:
        """``POST /repos/{owner}/{repo}/pulls``; returns the pull request."""
        repo = lazy_repo(client, params)
        issue: Any = NotSet
        if params.issue is not None:
            # a lazy Issue carrying only its number: PyGithub sends issue._identity
            issue = github.Issue.Issue(
                repo.requester, attributes={"number": params.issue}, completed=False
            )
        pull = repo.create_pull(
            base=params.base,
            head=params.head,
            title=_opt(params.title),
            body=_opt(params.body),
            draft=_opt(params.draft),
            maintainer_can_modify=_opt(params.maintainer_can_modify),
            head_repo=_opt(params.head_repo),
            issue=issue,
        )
        return pull.raw_data

    @operation(
        params=PullRef,
        display="Get pull request #{pull_number}",
        properties=lambda p: [repo_property(p), {"label": "Pull", "text": f"#{p.pull_number}"}],
    )
    def get(client: github.Github, params: PullRef, task: TaskInfo) -> dict[str, Any]:
        """``GET /repos/{owner}/{repo}/pulls/{pull_number}``; returns the pull request."""
        return lazy_repo(client, params).get_pull(params.pull_number).raw_data

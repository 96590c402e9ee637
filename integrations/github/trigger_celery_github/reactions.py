"""``io.github.reactions.*``: octokit's ``rest.reactions`` methods in snake_case, over PyGithub.

``content`` is one of GitHub's reaction types (REST docs, "Reactions":
``+1, -1, laugh, confused, heart, hooray, rocket, eyes``); anything else fails validation before
any request.
"""

from __future__ import annotations

from typing import Any, Literal

import github
from pydantic import Field

from trigger_celery.integration import Namespace, TaskInfo, operation
from trigger_celery_github._common import RepoParams, lazy, lazy_repo, repo_property

ReactionContent = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]
REACTION_CONTENTS: tuple[str, ...] = ReactionContent.__args__  # type: ignore[attr-defined]


class CreateForIssue(RepoParams):
    issue_number: int = Field(ge=1)
    content: ReactionContent


class CreateForIssueComment(RepoParams):
    comment_id: int = Field(ge=1)
    content: ReactionContent


class Reactions(Namespace):
    """Reactions to issues and issue comments (octokit ``reactions``)."""

    name = "reactions"

    @operation(
        params=CreateForIssue,
        display="React {content} to issue #{issue_number}",
        properties=lambda p: [
            repo_property(p),
            {"label": "Issue", "text": f"#{p.issue_number}"},
            {"label": "Reaction", "text": p.content},
        ],
    )
    def create_for_issue(
        client: github.Github, params: CreateForIssue, task: TaskInfo
    ) -> dict[str, Any]:
        """``POST /repos/{owner}/{repo}/issues/{issue_number}/reactions`` with
        ``{"content": ...}``; returns the reaction (GitHub answers 200 if it already existed).
        """
        issue = lazy_repo(client, params).get_issue(params.issue_number)
        return issue.create_reaction(params.content).raw_data

    @operation(
        params=CreateForIssueComment,
        display="React {content} to comment {comment_id}",
        properties=lambda p: [
            repo_property(p),
            {"label": "Comment", "text": str(p.comment_id)},
            {"label": "Reaction", "text": p.content},
        ],
    )
    def create_for_issue_comment(
        client: github.Github, params: CreateForIssueComment, task: TaskInfo
    ) -> dict[str, Any]:
        """``POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions``; returns the
        reaction.
        """
        repo = lazy_repo(client, params)
        comment = github.IssueComment.IssueComment(
            lazy(client).requester, url=f"{repo.url}/issues/comments/{params.comment_id}"
        )
        return comment.create_reaction(params.content).raw_data

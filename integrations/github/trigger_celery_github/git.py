"""``io.github.git.*``: octokit's ``rest.git`` reference methods in snake_case, over PyGithub.

GitHub REST docs, "Git references": ``get_ref`` takes ``heads/<branch>`` or ``tags/<tag>``
(a leading ``refs/`` is accepted and dropped); ``create_ref`` takes the full ``refs/...`` name and
a 40-hex SHA.
"""

from __future__ import annotations

from typing import Any

import github
from pydantic import Field, field_validator

from trigger_celery.integration import Namespace, TaskInfo, operation
from trigger_celery_github._common import RepoParams, lazy_repo, repo_property


class GetRef(RepoParams):
    ref: str = Field(min_length=1)

    @field_validator("ref")
    @classmethod
    def _short(cls, value: str) -> str:
        value = value.removeprefix("refs/")
        if not value or value.startswith("/") or ".." in value:
            raise ValueError("ref must look like 'heads/<branch>' or 'tags/<tag>'")
        return value


class CreateRef(RepoParams):
    ref: str = Field(pattern=r"^refs/[^/]+/.+$")
    sha: str = Field(pattern=r"^[0-9a-fA-F]{40}$")


class Git(Namespace):
    """Git database references (octokit ``git``)."""

    name = "git"

    @operation(params=GetRef, display="Get ref {ref}",
               properties=lambda p: [repo_property(p), {"label": "Ref", "text": p.ref}])
    def get_ref(client: github.Github, params: GetRef, task: TaskInfo) -> dict[str, Any]:
        """``GET /repos/{owner}/{repo}/git/ref/{ref}``; returns the reference."""
        return lazy_repo(client, params).get_git_ref(params.ref).raw_data

    @operation(params=CreateRef, display="Create ref {ref}",
               properties=lambda p: [repo_property(p), {"label": "Ref", "text": p.ref}])
    def create_ref(client: github.Github, params: CreateRef, task: TaskInfo) -> dict[str, Any]:
        """``POST /repos/{owner}/{repo}/git/refs`` with ``{ref, sha}``; returns the reference."""
        return lazy_repo(client, params).create_git_ref(ref=params.ref, sha=params.sha).raw_data

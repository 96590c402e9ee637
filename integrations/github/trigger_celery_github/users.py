"""``io.github.users.*``: octokit's ``rest.users`` methods in snake_case, over PyGithub."""

from __future__ import annotations

from typing import Any

import github
from pydantic import Field

from trigger_celery.integration import Namespace, TaskInfo, operation
from trigger_celery_github._common import OWNER_PATTERN, Params, lazy


class GetByUsername(Params):
    username: str = Field(pattern=OWNER_PATTERN)


class Users(Namespace):
    """GitHub users (octokit ``users``)."""

    name = "users"

    @operation(params=GetByUsername, display="Get user {username}",
               properties=lambda p: [{"label": "User", "text": p.username}])
    def get_by_username(
        client: github.Github, params: GetByUsername, task: TaskInfo
    ) -> dict[str, Any]:
        """``GET /users/{username}``; returns the user (PyGithub completes it in that one GET)."""
        return lazy(client).get_user(params.username).raw_data

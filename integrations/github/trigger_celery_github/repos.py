"""``io.github.repos.*``: octokit's ``rest.repos`` methods in snake_case, over PyGithub.

Webhook registration (``create_webhook``) is how a job sets up the GitHub side of a webhook
trigger; its ``config.secret`` is redacted from the stored params (GitHub REST docs,
"Repository webhooks").
"""

from __future__ import annotations

from typing import Any, Literal

import github
from pydantic import Field

from trigger_celery.integration import Namespace, TaskInfo, operation
from trigger_celery_github._common import (
    Params,
    RepoParams,
    lazy_repo,
    list_json,
    repo_property,
)


class WebhookConfig(Params):
    """GitHub's webhook ``config``: where and how deliveries are sent."""

    url: str = Field(pattern=r"^https?://")
    content_type: Literal["json", "form"] = "json"
    secret: str | None = None
    insecure_ssl: Literal["0", "1"] | None = None


class CreateWebhook(RepoParams):
    config: WebhookConfig
    events: list[str] = Field(default_factory=lambda: ["push"], min_length=1)
    active: bool = True
    name: Literal["web"] = "web"


class ListWebhooks(RepoParams):
    per_page: int | None = Field(default=None, ge=1, le=100)
    page: int | None = Field(default=None, ge=1)
    all_pages: bool = False


class Repos(Namespace):
    """Repositories and their webhooks (octokit ``repos``)."""

    name = "repos"

    @operation(params=RepoParams, display="Get repo {owner}/{repo}",
               properties=lambda p: [repo_property(p)])
    def get(client: github.Github, params: RepoParams, task: TaskInfo) -> dict[str, Any]:
        """``GET /repos/{owner}/{repo}``; returns the repository."""
        return lazy_repo(client, params).raw_data

    @operation(
        params=CreateWebhook,
        display="Create webhook on {owner}/{repo}",
        properties=lambda p: [
            repo_property(p),
            {"label": "URL", "text": p.config.url},
            {"label": "Events", "text": ", ".join(p.events)},
        ],
        redact=("config.secret",),
    )
    def create_webhook(
        client: github.Github, params: CreateWebhook, task: TaskInfo
    ) -> dict[str, Any]:
        """``POST /repos/{owner}/{repo}/hooks`` with ``{name, config, events, active}``; returns
        the webhook (GitHub masks the secret in it).
        """
        config = params.config.model_dump(exclude_none=True)
        hook = lazy_repo(client, params).create_hook(
            name=params.name, config=config, events=params.events, active=params.active
        )
        return hook.raw_data

    @operation(params=ListWebhooks, display="List webhooks of {owner}/{repo}",
               properties=lambda p: [repo_property(p)])
    def list_webhooks(client: github.Github, params: ListWebhooks, task: TaskInfo) -> list[Any]:
        """``GET /repos/{owner}/{repo}/hooks?per_page=&page=``; with ``all_pages`` the
        ``Link: rel="next"`` pages follow. Returns the webhooks.
        """
        query: dict[str, Any] = {}
        if params.per_page is not None:
            query["per_page"] = params.per_page
        if params.page is not None:
            query["page"] = params.page
        url = f"{lazy_repo(client, params).url}/hooks"
        return list_json(client, url, query, all_pages=params.all_pages)



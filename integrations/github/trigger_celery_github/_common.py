"""Shared pieces of the GitHub namespaces: owner/repo params, lazy PyGithub objects, pagination.

Every operation makes only the request that does its work (``issues.create`` is one POST): PyGithub
objects are built lazily (``Github(lazy=True)``, PyGithub >= 2.4) so that no GET runs to fetch a
repository or an issue before acting on it. Where PyGithub throws away the response of the call
(``Issue.add_to_labels`` returns ``None``, ``Issue.edit`` keeps only parsed attributes), the
operation sends the same request through PyGithub's own ``Requester`` (its documented way to reach
endpoints directly) so the API's JSON can be returned.
"""

from __future__ import annotations

from typing import Any

import github
from pydantic import Field, field_validator

from trigger_celery.integration import StrictModel

# GitHub logins: alphanumerics and hyphens (enterprise-managed users add "_"); repository names:
# alphanumerics, ".", "-" and "_" (".github" is valid). Neither may hold "/" or be "." / "..",
# so params can never reach another path than the one the operation names.
OWNER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
REPO_PATTERN = r"^[A-Za-z0-9_.-]{1,100}$"


class Params(StrictModel):
    """Base of every param model: unknown fields are errors."""


class RepoParams(Params):
    """A repository: ``owner`` (user or organization login) and ``repo`` (its name)."""

    owner: str = Field(pattern=OWNER_PATTERN)
    repo: str = Field(pattern=REPO_PATTERN)

    @field_validator("repo")
    @classmethod
    def _not_dots(cls, value: str) -> str:
        if value in (".", ".."):
            raise ValueError("not a repository name")
        return value

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"


def repo_property(p: RepoParams) -> dict[str, str]:
    return {"label": "Repo", "text": p.full_name}


def lazy(client: github.Github) -> github.Github:
    """``client`` itself when it builds lazy objects, else a lazy copy (same auth and base URL)."""
    return client if client.requester.is_lazy else client.withLazy(True)


def lazy_repo(client: github.Github, p: RepoParams) -> github.Repository.Repository:
    """A ``Repository`` that has made no request (its url is ``/repos/{owner}/{repo}``)."""
    return lazy(client).get_repo(p.full_name)


def request_json(
    client: github.Github,
    verb: str,
    url: str,
    *,
    parameters: dict[str, Any] | None = None,
    input: Any = None,  # noqa: A002 - PyGithub's name
    headers: dict[str, str] | None = None,
) -> tuple[dict[str, Any], Any]:
    """One request through PyGithub's Requester; returns ``(response headers, JSON)``.

    Raises PyGithub's exceptions (``GithubException`` and subclasses) on 4xx/5xx.
    """
    return client.requester.requestJsonAndCheck(
        verb, url, parameters=parameters, input=input, headers=headers
    )


def _next_link(headers: dict[str, Any]) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header (GitHub's pagination), or ``None``."""
    link = headers.get("link")
    if not isinstance(link, str):
        return None
    for part in link.split(","):
        segments = [s.strip() for s in part.split(";")]
        if len(segments) < 2:
            continue
        url = segments[0]
        if url.startswith("<") and url.endswith(">") and 'rel="next"' in segments[1:]:
            return url[1:-1]
    return None


def list_json(
    client: github.Github,
    url: str,
    parameters: dict[str, Any],
    *,
    all_pages: bool,
) -> list[Any]:
    """GET a list endpoint; with ``all_pages``, follow ``Link: rel="next"`` to the last page.

    Returns the items of every page fetched, concatenated, as the API sent them. The first
    request carries ``parameters``; the next-page URLs carry their own query (GitHub's docs:
    "Using pagination in the REST API").
    """
    headers, data = request_json(client, "GET", url, parameters=parameters or None)
    items = list(data or [])
    next_url = _next_link(headers) if all_pages else None
    while next_url:
        headers, data = request_json(client, "GET", next_url)
        items.extend(data or [])
        next_url = _next_link(headers)
    return items

"""The GitHub integration: PyGithub underneath, octokit's REST method names on top.

``io.github.issues.create("key", owner=..., repo=..., title=...)`` becomes the Celery task
``github.issues.create``. Namespaces and their operations mirror octokit's ``rest`` groups in
snake_case (Trigger.dev v2's ``@trigger.dev/github`` did the same over octokit). PyGithub's own
retries and request throttling are off: the framework decides when to retry, using
:func:`trigger_celery_github.errors.decide` in :meth:`GitHub.on_error`.

The token comes from ``credential=`` or ``GITHUB_TOKEN`` (``GITHUB_TOKEN_<KEY>`` with a
``connection_key``); it stays in the worker process and never shows in reprs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

import github
from github.GithubException import GithubException

from trigger_celery import ConfigurationError, OnErrorResult, RetryOptions, retry
from trigger_celery.integration import Integration, Namespace, TaskInfo, utc_now
from trigger_celery.integration import RateLimit as Limit
from trigger_celery_github import errors, triggers
from trigger_celery_github.git import Git
from trigger_celery_github.issues import Issues
from trigger_celery_github.pulls import Pulls
from trigger_celery_github.rate_limit import RateLimit
from trigger_celery_github.reactions import Reactions
from trigger_celery_github.repos import Repos
from trigger_celery_github.users import Users

__all__ = [
    "CONTENT_CREATING_OPERATIONS", "CONTENT_CREATION_LIMITS", "GitHub", "Git", "Issues", "Pulls",
    "RateLimit", "Reactions", "Repos", "Users",
]

#: Operations that send POST, PATCH, PUT or DELETE: GitHub counts them as content-creating
#: requests for its secondary rate limits.
CONTENT_CREATING_OPERATIONS = frozenset({
    "issues.create", "issues.update", "issues.create_comment", "issues.add_labels",
    "issues.add_assignees", "reactions.create_for_issue", "reactions.create_for_issue_comment",
    "repos.create_webhook", "pulls.create", "git.create_ref",
})

#: GitHub's documented secondary limits on content-creating requests, per token: "no more than
#: 80 content-generating requests per minute and no more than 500 content-generating requests
#: per hour" (docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
CONTENT_CREATION_LIMITS = (
    Limit(limit=80, period_s=60, scope="content-creation",
          operations=CONTENT_CREATING_OPERATIONS),
    Limit(limit=500, period_s=3600, scope="content-creation",
          operations=CONTENT_CREATING_OPERATIONS),
)


class GitHub(Integration):
    """GitHub over PyGithub.

    Parameters (besides :class:`Integration`'s ``connection_key``, ``credential``, ``queue``):
        base_url: REST API root; ``https://api.github.com``, or ``https://HOST/api/v3`` for
            GitHub Enterprise Server, or a local replay server in tests.
        secondary_limit_floor_s: least wait after a secondary rate limit, in seconds (GitHub's
            docs say at least one minute; tests lower it).
        rate_limits: limits enforced before each call, per token, shared by every worker
            (default :data:`CONTENT_CREATION_LIMITS`: 80 per minute and 500 per hour on
            content-creating operations); ``()`` turns them off.

    A response with ``x-ratelimit-remaining: 0`` (PyGithub keeps the last one's headers) holds
    every call of this token, on every worker, until its ``x-ratelimit-reset``.
    """

    id = "github"
    icon = "github"
    retry: ClassVar[RetryOptions] = retry.standard_backoff
    namespaces: ClassVar[tuple[type[Namespace], ...]] = (
        Issues, Reactions, Repos, Pulls, Git, Users, RateLimit
    )
    credential_env = "GITHUB_TOKEN"
    default_rate_limits: ClassVar[tuple[Limit, ...]] = CONTENT_CREATION_LIMITS
    #: Webhook triggers: ``github.triggers.on_issue_opened(owner=..., repo=...)`` and friends.
    triggers = triggers

    def __init__(
        self,
        *,
        connection_key: str | None = None,
        credential: str | None = None,
        queue: str | None = None,
        base_url: str = "https://api.github.com",
        secondary_limit_floor_s: float = 60.0,
        rate_limits: Sequence[Limit] | None = None,
    ) -> None:
        super().__init__(connection_key=connection_key, credential=credential, queue=queue,
                         rate_limits=rate_limits)
        if not base_url.startswith(("https://", "http://")):
            raise ConfigurationError(f"github: base_url must be an http(s) URL, got {base_url!r}")
        if secondary_limit_floor_s < 0:
            raise ConfigurationError("github: secondary_limit_floor_s must be >= 0 seconds")
        self.base_url = base_url.rstrip("/")
        self.secondary_limit_floor_s = float(secondary_limit_floor_s)

    def create_client(self, credential: str) -> github.Github:
        """A PyGithub client with token auth, its retries and throttling off, building lazy
        objects (so an operation makes only the request that does its work).
        """
        return github.Github(
            auth=github.Auth.Token(credential),
            base_url=self.base_url,
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,
        )

    def rate_limit_closed_until(self, error: BaseException | None) -> float | None:
        """``x-ratelimit-reset`` (epoch seconds) when the last answer said
        ``x-ratelimit-remaining: 0``: an error's headers, else PyGithub's record of the last
        response (``Requester.rate_limiting``, ``rate_limiting_resettime``); else ``None``."""
        if isinstance(error, GithubException):
            headers = {str(k).lower(): str(v) for k, v in (error.headers or {}).items()}
            remaining = errors._number(headers.get("x-ratelimit-remaining"))
            reset = errors._number(headers.get("x-ratelimit-reset"))
            return reset if remaining == 0 and reset else None
        if error is not None or self._client is None:
            return None
        requester = self._client.requester
        remaining, _ = requester.rate_limiting
        reset = requester.rate_limiting_resettime
        return float(reset) if remaining == 0 and reset else None

    def on_error(
        self, error: BaseException, task: TaskInfo, io: Any, *, now: datetime | None = None
    ) -> OnErrorResult | BaseException | None:
        """Rate limits -> ``retry_at``; other 4xx -> no retry; 5xx -> the retry policy.

        See :func:`trigger_celery_github.errors.decide`. ``now`` (aware datetime)
        is for tests; the engine leaves it out.
        """
        return errors.decide(
            error,
            attempts=task.attempts,
            retry=self.retry,
            secondary_limit_floor_s=self.secondary_limit_floor_s,
            now=now or utc_now(),
        )

"""``io.github.rate_limit.get``: octokit's ``rest.rateLimit.get``, over PyGithub.

GitHub REST docs, "Rate limit": the call does not count against the primary rate limit.
"""

from __future__ import annotations

from typing import Any

import github

from trigger_celery.integration import Namespace, TaskInfo, operation
from trigger_celery_github._common import Params


class GetRateLimit(Params):
    """No params."""


class RateLimit(Namespace):
    """The token's rate-limit status (octokit ``rateLimit``)."""

    name = "rate_limit"

    @operation(params=GetRateLimit, display="Get rate limit")
    def get(client: github.Github, params: GetRateLimit, task: TaskInfo) -> dict[str, Any]:
        """``GET /rate_limit``; returns ``{"resources": {...}, "rate": {...}}``.

        PyGithub adds the request path as ``"url"`` to GET answers that lack one; GitHub's
        rate-limit object has none, so it is taken out again.
        """
        data = dict(client.get_rate_limit().raw_data)
        if data.get("url") == "/rate_limit":
            del data["url"]
        return data

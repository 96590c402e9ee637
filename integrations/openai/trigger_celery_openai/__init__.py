"""The OpenAI integration: ``io.openai.chat.completions.create``, ``embeddings.create``, ...

Built on the official ``openai`` package with its own retries off (``max_retries=0``): the
framework retries, using :func:`.errors.decide` to read OpenAI's rate-limit answers. Each operation
returns the API's JSON body and reports token usage and rate-limit headers as task properties
(:func:`._call.properties_from_response`). Ported from Trigger.dev v2's ``@trigger.dev/openai``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import openai as openai_sdk

from trigger_celery import OnErrorResult, retry
from trigger_celery.integration import Integration, TaskInfo, utc_now
from trigger_celery_openai._call import properties_from_response
from trigger_celery_openai.batches import Batches
from trigger_celery_openai.chat import ChatCompletions
from trigger_celery_openai.completions import Completions
from trigger_celery_openai.embeddings import Embeddings
from trigger_celery_openai.errors import (
    DurationParseError,
    _reset_after,
    decide,
    parse_reset_duration,
)
from trigger_celery_openai.files import Files
from trigger_celery_openai.images import Images
from trigger_celery_openai.models import Models
from trigger_celery_openai.responses import Responses

__all__ = [
    "DurationParseError",
    "OpenAI",
    "parse_reset_duration",
    "properties_from_response",
]


class OpenAI(Integration):
    """OpenAI integration.

    Parameters:
        base_url: API base URL including ``/v1`` (default: the SDK's, ``https://api.openai.com/v1``
            or ``OPENAI_BASE_URL``).
        organization: sent as ``OpenAI-Organization`` (default: the SDK's, ``OPENAI_ORG_ID``).
        connection_key, credential, queue: see :class:`Integration`. The credential is an API key
            (``OPENAI_API_KEY``).
        rate_limits: your tier's limits (:class:`~trigger_celery.RateLimit`, e.g. requests per
            minute); none by default: OpenAI's limits depend on the account's usage tier.
    """

    id = "openai"
    icon = "openai"
    retry = retry.standard_backoff
    namespaces = (
        ChatCompletions, Completions, Embeddings, Images, Models, Files, Batches, Responses,
    )
    credential_env = "OPENAI_API_KEY"

    def __init__(
        self, *, base_url: str | None = None, organization: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url
        self.organization = organization

    def create_client(self, credential: str) -> openai_sdk.OpenAI:
        return openai_sdk.OpenAI(
            api_key=credential, base_url=self.base_url, organization=self.organization,
            max_retries=0,
        )

    def rate_limit_closed_until(self, error: BaseException | None) -> float | None:
        """When an error answer says a limit is exhausted (``x-ratelimit-remaining-requests``
        or ``-tokens`` is ``0``): now plus its ``x-ratelimit-reset-*`` duration (the later of the
        two), so every worker holds this key's calls until then; else ``None``."""
        if not isinstance(error, openai_sdk.APIStatusError):
            return None
        headers = error.response.headers
        waits = [w for w in (_reset_after(headers, "requests"), _reset_after(headers, "tokens"))
                 if w is not None]
        return utc_now().timestamp() + max(waits) if waits else None

    def on_error(
        self, error: BaseException, task: TaskInfo, io: Any, *, now: datetime | None = None
    ) -> OnErrorResult | BaseException | None:
        """See :func:`.errors.decide`; ``now`` (aware datetime) defaults to the current time."""
        return decide(error, now or utc_now())

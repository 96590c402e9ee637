"""The Typeform integration: ``io.typeform.forms/responses/webhooks.*``.

Built on a thin ``requests`` client shaped like ``@typeform/api-client``
(:mod:`.client`), since Typeform maintains no Python SDK. Ported from Trigger.dev v2's
``@trigger.dev/typeform``. Webhook receiving and the ``on_form_response`` trigger live in
:mod:`.webhooks`.

Usage::

    typeform = Typeform()                     # token from TYPEFORM_TOKEN
    typeform_eu = Typeform(connection_key="eu", base_url=EU_BASE_URL)   # TYPEFORM_TOKEN_EU
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trigger_celery import OnErrorResult, retry
from trigger_celery.integration import Integration, RateLimit, TaskInfo, utc_now
from trigger_celery_typeform.client import (
    DEFAULT_BASE_URL,
    EU_BASE_URL,
    TypeformClient,
    TypeformError,
)
from trigger_celery_typeform.errors import decide
from trigger_celery_typeform.forms import Forms
from trigger_celery_typeform.responses import Responses, iter_response_pages
from trigger_celery_typeform.webhooks import (
    Webhooks,
    handle_webhook,
    make_wsgi_app,
    on_form_response,
    verify_signature,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "EU_BASE_URL",
    "Typeform",
    "TypeformClient",
    "TypeformError",
    "handle_webhook",
    "iter_response_pages",
    "make_wsgi_app",
    "on_form_response",
    "verify_signature",
]


class Typeform(Integration):
    """Typeform integration.

    Parameters:
        base_url: API host; ``https://api.typeform.com`` by default, ``EU_BASE_URL`` for EU
            accounts.
        connection_key, credential, queue: see :class:`Integration`. The credential is a personal
            access token (``TYPEFORM_TOKEN``).
        rate_limits: default 2 requests per second per account, Typeform's documented limit
            for its Create and Responses APIs (typeform.com/developers, "Rate limits"); ``()``
            turns it off.
    """

    id = "typeform"
    icon = "typeform"
    retry = retry.standard_backoff
    namespaces = (Forms, Responses, Webhooks)
    credential_env = "TYPEFORM_TOKEN"
    default_rate_limits = (RateLimit(limit=2, period_s=1, scope="account"),)

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url

    def create_client(self, credential: str) -> TypeformClient:
        return TypeformClient(credential, base_url=self.base_url)

    def on_error(
        self, error: BaseException, task: TaskInfo, io: Any, *, now: datetime | None = None
    ) -> OnErrorResult | BaseException | None:
        """429: ``Retry-After`` when sent, else backoff; other 4xx: no retry; 5xx: backoff.

        ``now`` (aware datetime) defaults to the current time; see :func:`.errors.decide`.
        """
        return decide(error, now or utc_now())

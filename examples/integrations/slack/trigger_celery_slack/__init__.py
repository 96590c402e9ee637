"""The Slack integration (an example): ``io.slack.chat.post_message`` and friends.

Built on the official SDK, ``slack_sdk`` (https://docs.slack.dev/tools/python-slack-sdk/), whose
``WebClient`` is pure Python (``urllib``) with no dependencies. Each operation is one Web API
method; the task returns Slack's JSON answer. ``docs/writing-an-integration.md`` walks through
this package file by file.

Usage::

    slack = Slack()                              # bot token (xoxb-...) from SLACK_BOT_TOKEN
    slack_ops = Slack(connection_key="ops")      # SLACK_BOT_TOKEN_OPS, queue "slack"
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from slack_sdk import WebClient

from trigger_celery import ConfigurationError, OnErrorResult, RetryOptions, retry
from trigger_celery.integration import Integration, Namespace, TaskInfo, utc_now
from trigger_celery_slack import errors
from trigger_celery_slack.chat import Chat
from trigger_celery_slack.conversations import Conversations

__all__ = ["DEFAULT_BASE_URL", "Slack"]

#: Slack's Web API root; each method is a path under it (``.../api/chat.postMessage``).
DEFAULT_BASE_URL = "https://slack.com/api/"


class Slack(Integration):
    """Slack integration.

    Parameters:
        base_url: Web API root, ``https://slack.com/api/`` by default (a test server in tests).
        timeout_s: connect and read timeout of each request, in whole seconds (``WebClient``'s
            ``timeout``).
        connection_key, credential, queue: see :class:`Integration`. The credential is a bot
            token (``xoxb-...``) from ``SLACK_BOT_TOKEN`` (``SLACK_BOT_TOKEN_<KEY>`` with a
            ``connection_key``), sent as ``Authorization: Bearer``.

    Raises:
        ConfigurationError: ``base_url`` is not an http(s) URL or ``timeout_s`` is below 1.
    """

    id = "slack"
    icon = "slack"
    retry: ClassVar[RetryOptions] = retry.standard_backoff
    namespaces: ClassVar[tuple[type[Namespace], ...]] = (Chat, Conversations)
    credential_env = "SLACK_BOT_TOKEN"

    def __init__(
        self, *, base_url: str = DEFAULT_BASE_URL, timeout_s: int = 30, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not base_url.startswith(("https://", "http://")):
            raise ConfigurationError(f"slack: base_url must be an http(s) URL, got {base_url!r}")
        if timeout_s < 1:
            raise ConfigurationError("slack: timeout_s must be at least 1 second")
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout_s = timeout_s

    def create_client(self, credential: str) -> WebClient:
        """A ``WebClient`` with the bot token and no retry handlers of its own.

        ``slack_sdk`` retries connection errors once by default and can retry 429s itself,
        sleeping in the worker; with ``retry_handlers=[]`` every failure reaches
        :meth:`on_error` and the framework schedules the next attempt.
        """
        return WebClient(token=credential, base_url=self.base_url, timeout=self.timeout_s,
                         retry_handlers=[])

    def on_error(
        self, error: BaseException, task: TaskInfo, io: Any, *, now: datetime | None = None
    ) -> OnErrorResult | BaseException | None:
        """429 / ``ratelimited``: at ``Retry-After``; 5xx and transient codes: backoff; other
        ``ok: false`` codes (``channel_not_found``, ``invalid_auth``, ``not_in_channel``): no
        retry. See :func:`trigger_celery_slack.errors.decide`; ``now`` (aware) is for tests."""
        return errors.decide(error, now or utc_now())  # the engine's clock (a test's too)

"""``io.slack.chat.*``: post and edit messages (``WebClient.chat_postMessage``/``chat_update``).

Slack's methods: https://docs.slack.dev/reference/methods/chat.postMessage and
https://docs.slack.dev/reference/methods/chat.update. Rate limits
(https://docs.slack.dev/apis/web-api/rate-limits): ``chat.postMessage`` is in the special tier,
about one message per second per channel with short bursts allowed; ``chat.update`` is Tier 3
(50+ per minute). Past them Slack answers HTTP 429 with ``Retry-After`` (see :mod:`.errors`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from slack_sdk import WebClient

from trigger_celery.integration import Namespace, OperationResult, TaskInfo, operation
from trigger_celery_slack._common import TS_PATTERN, Params, data_of

#: Slack truncates ``text`` longer than this many characters.
MAX_TEXT = 40_000
#: Slack accepts at most this many layout blocks in one message.
MAX_BLOCKS = 50


class PostMessage(Params):
    channel: str = Field(min_length=1, description="Channel id (``C0123ABCD``), or a user id "
                         "(``U0123ABCD``) for a direct message from the bot.")
    text: str = Field(min_length=1, max_length=MAX_TEXT, pattern=r"\S",
                      description="The message (mrkdwn); with ``blocks``, the notification and "
                      "screen-reader fallback.")
    thread_ts: str | None = Field(default=None, pattern=TS_PATTERN,
                                  description="``ts`` of the parent message: reply in its thread.")
    blocks: list[dict[str, Any]] | None = Field(
        default=None, min_length=1, max_length=MAX_BLOCKS,
        description="Block Kit layout blocks (``[{\"type\": \"section\", ...}]``).")


class UpdateMessage(Params):
    channel: str = Field(min_length=1, description="Channel id of the message.")
    ts: str = Field(pattern=TS_PATTERN, description="``ts`` of the message to edit.")
    text: str = Field(min_length=1, max_length=MAX_TEXT, pattern=r"\S",
                      description="The new text (the fallback when ``blocks`` is given).")
    blocks: list[dict[str, Any]] | None = Field(default=None, min_length=1,
                                                max_length=MAX_BLOCKS)


def _where(p: PostMessage | UpdateMessage) -> list[dict[str, Any]]:
    shown = [{"label": "Channel", "text": p.channel}]
    thread = getattr(p, "thread_ts", None)
    if thread:
        shown.append({"label": "Thread", "text": thread})
    return shown


class Chat(Namespace):
    """Task names ``slack.chat.post_message`` and ``slack.chat.update``."""

    name = "chat"

    @operation(params=PostMessage, display="Post message to {channel}", properties=_where)
    def post_message(client: WebClient, params: PostMessage, task: TaskInfo) -> OperationResult:
        """``chat.postMessage``: ``{"ok": true, "channel": "C…", "ts": "…", "message": {…}}``.

        The ``ts`` of the answer is the new message's id (for ``chat.update`` or ``thread_ts``);
        it is also shown as the task's ``Message ts`` property. Slack takes no idempotency key
        here: a task whose worker died after Slack answered posts again when it runs again.

        Errors (``SlackApiError``): ``channel_not_found``, ``not_in_channel``, ``is_archived``,
        ``msg_too_long``, ``invalid_blocks``, ``invalid_auth`` ... (no retry) and ``ratelimited``
        (HTTP 429, retried at ``Retry-After``).
        """
        data = data_of(client.chat_postMessage(
            channel=params.channel, text=params.text, thread_ts=params.thread_ts,
            blocks=params.blocks,
        ))
        return OperationResult(output=data,
                               properties=[{"label": "Message ts", "text": str(data.get("ts"))}])

    @operation(params=UpdateMessage, display="Update message {ts} in {channel}",
               properties=_where)
    def update(client: WebClient, params: UpdateMessage, task: TaskInfo) -> dict[str, Any]:
        """``chat.update``: ``{"ok": true, "channel": "C…", "ts": "…", "text": "…", ...}``.

        Editing is idempotent: running it twice leaves the same message. Errors:
        ``message_not_found``, ``cant_update_message``, ``edit_window_closed`` ... (no retry).
        """
        return data_of(client.chat_update(
            channel=params.channel, ts=params.ts, text=params.text, blocks=params.blocks,
        ))

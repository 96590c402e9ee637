"""``io.slack.conversations.list``: one page of channels (``WebClient.conversations_list``).

Slack's method: https://docs.slack.dev/reference/methods/conversations.list (Tier 2, 20+
requests per minute, https://docs.slack.dev/apis/web-api/rate-limits). Paging is by cursor: pass
the answer's ``response_metadata.next_cursor`` as ``cursor`` until it is empty; one task per page
keeps each page's answer in the run's record.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from slack_sdk import WebClient

from trigger_celery.integration import Namespace, TaskInfo, operation
from trigger_celery_slack._common import Params, data_of

ConversationType = Literal["public_channel", "private_channel", "mpim", "im"]


class ListConversations(Params):
    cursor: str | None = Field(default=None, min_length=1,
                               description="``response_metadata.next_cursor`` of the last page.")
    exclude_archived: bool | None = None
    limit: int | None = Field(default=None, ge=1, le=1000,
                              description="Conversations per page (Slack: at most 1000; it "
                              "recommends no more than 200).")
    types: list[ConversationType] | None = Field(default=None, min_length=1,
                                                 description="Kinds to list (default: public).")
    team_id: str | None = Field(default=None, description="Workspace, for org-wide tokens.")


class Conversations(Namespace):
    """Task name ``slack.conversations.list``."""

    name = "conversations"

    @operation(
        params=ListConversations, display="List conversations",
        properties=lambda p: [{"label": "Types", "text": ",".join(p.types)}] if p.types else [],
    )
    def list(client: WebClient, params: ListConversations, task: TaskInfo) -> dict[str, Any]:
        """``conversations.list``: ``{"ok": true, "channels": [{"id", "name", ...}],
        "response_metadata": {"next_cursor": "..." | ""}}``."""
        return data_of(client.conversations_list(
            cursor=params.cursor, exclude_archived=params.exclude_archived, limit=params.limit,
            types=params.types, team_id=params.team_id,
        ))

"""What the Slack namespaces share: strict params and the JSON of a ``SlackResponse``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from slack_sdk.web import SlackResponse

#: A Slack message timestamp, the message's id within its channel (``"1712345678.000200"``).
TS_PATTERN = r"^\d+\.\d+$"


class Params(BaseModel):
    """Strict params: an unknown or misspelled param fails validation, naming it."""

    model_config = ConfigDict(extra="forbid")


def data_of(response: SlackResponse) -> dict[str, Any]:
    """The decoded JSON body of a successful Web API answer (``{"ok": true, ...}``).

    ``WebClient`` has already raised ``SlackApiError`` for anything but an HTTP 200 with
    ``"ok": true``. Only file downloads answer bytes, and no operation here calls one.
    """
    if not isinstance(response.data, dict):
        raise TypeError(f"Slack answered {type(response.data).__name__}, not a JSON object")
    return response.data

"""Running one OpenAI SDK call as a task: raw response, idempotency key, display properties.

Every operation calls the SDK's raw-response API (``client.<resource>.with_raw_response.<method>``)
so that the response headers are readable, returns the API's own JSON body, and reports the
rate-limit headers and token usage as task properties (after Trigger.dev v2's
``@trigger.dev/openai``, which shows usage and rate limits on each task).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from trigger_celery.integration import OperationResult, StrictModel, TaskInfo

#: Header pairs shown as ``remaining/limit``, with the reset duration, per limit kind.
_RATE_LIMIT_KINDS = (("requests", "Requests"), ("tokens", "Tokens"))
#: Usage fields across endpoints: chat/completions/embeddings use prompt/completion tokens,
#: responses and images use input/output tokens.
_USAGE_FIELDS = (
    ("prompt_tokens", "Prompt Usage"),
    ("input_tokens", "Input Usage"),
    ("completion_tokens", "Completion Usage"),
    ("output_tokens", "Output Usage"),
    ("total_tokens", "Total Usage"),
)


class Params(StrictModel):
    """Base of the OpenAI param models: unknown params are errors, naming the param."""


def properties_from_response(headers: Mapping[str, str], body: Any) -> list[dict[str, Any]]:
    """Display properties from a response: token usage and rate-limit state.

    Parameters:
        headers: the response headers (case-insensitive mapping such as ``httpx2.Headers``, or a
            dict with lower-case keys). Read: ``x-ratelimit-limit-requests``,
            ``x-ratelimit-remaining-requests``, ``x-ratelimit-reset-requests`` and the same three
            for ``tokens`` (OpenAI "Rate limits" guide, "Rate limits in headers").
        body: the decoded JSON body; its ``usage`` object is read when present.

    Returns:
        ``[{"label": str, "text": str}, ...]``: ``Prompt Usage``/``Input Usage``,
        ``Completion Usage``/``Output Usage``, ``Total Usage`` (tokens), then
        ``Rate Limit Requests`` (``remaining/limit``), ``Rate Limit Requests Reset`` (the duration
        as sent, e.g. ``6m0s``), and the same for tokens; each only when present.
    """
    props: list[dict[str, Any]] = []
    usage = body.get("usage") if isinstance(body, dict) else None
    if isinstance(usage, dict):
        for key, label in _USAGE_FIELDS:
            if isinstance(usage.get(key), int):
                props.append({"label": label, "text": str(usage[key])})
    for kind, label in _RATE_LIMIT_KINDS:
        limit = headers.get(f"x-ratelimit-limit-{kind}")
        remaining = headers.get(f"x-ratelimit-remaining-{kind}")
        reset = headers.get(f"x-ratelimit-reset-{kind}")
        if remaining is not None:
            text = f"{remaining}/{limit}" if limit is not None else str(remaining)
            props.append({"label": f"Rate Limit {label}", "text": text})
        if reset is not None:
            props.append({"label": f"Rate Limit {label} Reset", "text": str(reset)})
    return props


def call_raw(
    method: Callable[..., Any],
    task: TaskInfo | None,
    *,
    idempotent: bool,
    **kwargs: Any,
) -> OperationResult:
    """Call a ``with_raw_response`` SDK method and wrap its JSON body.

    Parameters:
        method: e.g. ``client.chat.completions.with_raw_response.create``.
        task: the running task; for ``idempotent`` calls its ``idempotency_key`` is sent as the
            ``Idempotency-Key`` header, so a retry after a lost response does not repeat the
            effect at OpenAI.
        idempotent: send the key (POSTs that create something).
        kwargs: the SDK method's keyword arguments.

    Returns:
        ``OperationResult(output=<the API's JSON body>, properties=properties_from_response(...))``.

    Raises:
        openai.APIStatusError (and subclasses): non-2xx answer; see ``errors.decide``.
        openai.APIConnectionError: no answer.
    """
    if idempotent and task is not None:
        kwargs["extra_headers"] = {"Idempotency-Key": task.idempotency_key}
    raw = method(**kwargs)
    body = json.loads(raw.content) if raw.content else None
    return OperationResult(output=body, properties=properties_from_response(raw.headers, body))


def dump(params: BaseModel, *exclude: str) -> dict[str, Any]:
    """The params set by the caller, as SDK keyword arguments (``None`` means not sent).

    Values are taken as validated, not re-dumped, so ``None`` inside a message stays as sent.
    """
    return {
        name: value
        for name in type(params).model_fields
        if name not in exclude and (value := getattr(params, name)) is not None
    }

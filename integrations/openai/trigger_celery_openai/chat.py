"""``io.openai.chat.completions.create``: ``POST /v1/chat/completions``.

SDK: ``client.chat.completions.create``. Streaming is not offered: a task's output is one JSON
object.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from trigger_celery.integration import Namespace, OperationResult, TaskInfo, operation
from trigger_celery_openai._call import Params, call_raw, dump


class CreateChatCompletion(Params):
    """The request body of ``POST /v1/chat/completions`` (without ``stream``/``stream_options``)."""

    model: str = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    audio: dict[str, Any] | None = None
    frequency_penalty: float | None = None
    function_call: str | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    logit_bias: dict[str, int] | None = None
    logprobs: bool | None = None
    max_completion_tokens: int | None = None
    max_tokens: int | None = None
    metadata: dict[str, str] | None = None
    modalities: list[str] | None = None
    n: int | None = None
    parallel_tool_calls: bool | None = None
    prediction: dict[str, Any] | None = None
    presence_penalty: float | None = None
    prompt_cache_key: str | None = None
    reasoning_effort: str | None = None
    response_format: dict[str, Any] | None = None
    safety_identifier: str | None = None
    seed: int | None = None
    service_tier: str | None = None
    stop: str | list[str] | None = None
    store: bool | None = None
    temperature: float | None = None
    tool_choice: str | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    top_logprobs: int | None = None
    top_p: float | None = None
    user: str | None = None
    verbosity: str | None = None
    web_search_options: dict[str, Any] | None = None


class ChatCompletions(Namespace):
    """Task name ``openai.chat.completions.create``."""

    name = "chat.completions"

    @operation(
        params=CreateChatCompletion, display="Chat completion ({model})",
        properties=lambda p: [{"label": "Model", "text": p.model}],
    )
    def create(client: Any, params: CreateChatCompletion, task: TaskInfo) -> OperationResult:
        return call_raw(
            client.chat.completions.with_raw_response.create, task, idempotent=True, **dump(params)
        )

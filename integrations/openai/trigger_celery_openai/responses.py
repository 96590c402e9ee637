"""``io.openai.responses.create``: ``POST /v1/responses`` (the Responses API)."""

from __future__ import annotations

from typing import Any

from trigger_celery.integration import Namespace, OperationResult, TaskInfo, operation
from trigger_celery_openai._call import Params, call_raw, dump


class CreateResponse(Params):
    """The request body of ``POST /v1/responses`` (without ``stream``/``stream_options``)."""

    model: str | None = None
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    background: bool | None = None
    conversation: str | dict[str, Any] | None = None
    include: list[str] | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    metadata: dict[str, str] | None = None
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None
    prompt: dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    reasoning: dict[str, Any] | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    store: bool | None = None
    temperature: float | None = None
    text: dict[str, Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    top_logprobs: int | None = None
    top_p: float | None = None
    truncation: str | None = None
    user: str | None = None


class Responses(Namespace):
    """Task name ``openai.responses.create``."""

    name = "responses"

    @operation(
        params=CreateResponse, display=lambda p: f"Response ({p.model or 'default model'})",
        properties=lambda p: [{"label": "Model", "text": p.model}] if p.model else [],
    )
    def create(client: Any, params: CreateResponse, task: TaskInfo) -> OperationResult:
        return call_raw(
            client.responses.with_raw_response.create, task, idempotent=True, **dump(params)
        )

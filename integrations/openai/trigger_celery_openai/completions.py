"""``io.openai.completions.create``: ``POST /v1/completions`` (legacy text completions)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from trigger_celery.integration import Namespace, OperationResult, TaskInfo, operation
from trigger_celery_openai._call import Params, call_raw, dump


class CreateCompletion(Params):
    """The request body of ``POST /v1/completions`` (without ``stream``/``stream_options``)."""

    model: str = Field(min_length=1)
    prompt: str | list[str] | list[int] | list[list[int]]
    best_of: int | None = None
    echo: bool | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, int] | None = None
    logprobs: int | None = None
    max_tokens: int | None = None
    n: int | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    suffix: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    user: str | None = None


class Completions(Namespace):
    """Task name ``openai.completions.create``."""

    name = "completions"

    @operation(
        params=CreateCompletion, display="Completion ({model})",
        properties=lambda p: [{"label": "Model", "text": p.model}],
    )
    def create(client: Any, params: CreateCompletion, task: TaskInfo) -> OperationResult:
        return call_raw(
            client.completions.with_raw_response.create, task, idempotent=True, **dump(params)
        )

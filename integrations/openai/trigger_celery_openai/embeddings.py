"""``io.openai.embeddings.create``: ``POST /v1/embeddings``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from trigger_celery.integration import Namespace, OperationResult, TaskInfo, operation
from trigger_celery_openai._call import Params, call_raw, dump


class CreateEmbedding(Params):
    """The request body of ``POST /v1/embeddings``."""

    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    dimensions: int | None = Field(default=None, ge=1)
    encoding_format: Literal["float", "base64"] | None = None
    user: str | None = None


class Embeddings(Namespace):
    """Task name ``openai.embeddings.create``."""

    name = "embeddings"

    @operation(
        params=CreateEmbedding, display="Embedding ({model})",
        properties=lambda p: [{"label": "Model", "text": p.model}],
    )
    def create(client: Any, params: CreateEmbedding, task: TaskInfo) -> OperationResult:
        return call_raw(
            client.embeddings.with_raw_response.create, task, idempotent=True, **dump(params)
        )

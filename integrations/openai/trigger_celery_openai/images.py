"""``io.openai.images.generate``: ``POST /v1/images/generations``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from trigger_celery.integration import Namespace, OperationResult, TaskInfo, operation
from trigger_celery_openai._call import Params, call_raw, dump


class GenerateImage(Params):
    """The request body of ``POST /v1/images/generations`` (without streaming options)."""

    prompt: str = Field(min_length=1)
    model: str | None = None
    background: str | None = None
    moderation: str | None = None
    n: int | None = Field(default=None, ge=1)
    output_compression: int | None = None
    output_format: str | None = None
    quality: str | None = None
    response_format: str | None = None
    size: str | None = None
    style: str | None = None
    user: str | None = None


class Images(Namespace):
    """Task name ``openai.images.generate``."""

    name = "images"

    @operation(
        params=GenerateImage, display="Generate image",
        properties=lambda p: [{"label": "Model", "text": p.model}] if p.model else [],
    )
    def generate(client: Any, params: GenerateImage, task: TaskInfo) -> OperationResult:
        return call_raw(
            client.images.with_raw_response.generate, task, idempotent=True, **dump(params)
        )

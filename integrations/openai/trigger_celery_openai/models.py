"""``io.openai.models.list`` (``GET /v1/models``) and ``.retrieve`` (``GET /v1/models/{model}``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from trigger_celery.integration import Namespace, OperationResult, TaskInfo, operation
from trigger_celery_openai._call import Params, call_raw


class ListModels(Params):
    """No params."""


class RetrieveModel(Params):
    model: str = Field(min_length=1, description="The model id, e.g. gpt-4o-mini.")


class Models(Namespace):
    """Task names ``openai.models.list`` and ``openai.models.retrieve``."""

    name = "models"

    @operation(params=ListModels, display="List models")
    def list(client: Any, params: ListModels, task: TaskInfo) -> OperationResult:
        return call_raw(client.models.with_raw_response.list, task, idempotent=False)

    @operation(
        params=RetrieveModel, display="Retrieve model {model}",
        properties=lambda p: [{"label": "Model", "text": p.model}],
    )
    def retrieve(client: Any, params: RetrieveModel, task: TaskInfo) -> OperationResult:
        return call_raw(
            client.models.with_raw_response.retrieve, task, idempotent=False, model=params.model
        )

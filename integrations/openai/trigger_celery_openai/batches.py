"""``io.openai.batches.create`` (``POST /v1/batches``) and ``.retrieve``
(``GET /v1/batches/{batch_id}``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from trigger_celery.integration import Namespace, OperationResult, TaskInfo, operation
from trigger_celery_openai._call import Params, call_raw, dump


class CreateBatch(Params):
    """The request body of ``POST /v1/batches``."""

    input_file_id: str = Field(min_length=1, description="A JSONL file with purpose=batch.")
    endpoint: str = Field(min_length=1, description="e.g. /v1/chat/completions.")
    completion_window: str = "24h"
    metadata: dict[str, str] | None = None
    output_expires_after: dict[str, Any] | None = None


class RetrieveBatch(Params):
    batch_id: str = Field(min_length=1)


class Batches(Namespace):
    """Task names ``openai.batches.create`` and ``openai.batches.retrieve``."""

    name = "batches"

    @operation(
        params=CreateBatch, display="Create batch ({endpoint})",
        properties=lambda p: [{"label": "Input file", "text": p.input_file_id}],
    )
    def create(client: Any, params: CreateBatch, task: TaskInfo) -> OperationResult:
        return call_raw(
            client.batches.with_raw_response.create, task, idempotent=True, **dump(params)
        )

    @operation(
        params=RetrieveBatch, display="Retrieve batch {batch_id}",
        properties=lambda p: [{"label": "Batch ID", "text": p.batch_id}],
    )
    def retrieve(client: Any, params: RetrieveBatch, task: TaskInfo) -> OperationResult:
        return call_raw(
            client.batches.with_raw_response.retrieve, task, idempotent=False,
            batch_id=params.batch_id,
        )

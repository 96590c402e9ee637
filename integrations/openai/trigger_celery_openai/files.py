"""``io.openai.files.create/retrieve/list``: ``/v1/files``.

``files.create`` takes the file's content in the params (task params travel as JSON, so a path on
one machine would mean nothing on the worker): UTF-8 text such as JSONL for batches, or base64 for
binary content.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import Field, model_validator

from trigger_celery.integration import Namespace, OperationResult, TaskInfo, operation
from trigger_celery_openai._call import Params, call_raw, dump


class CreateFile(Params):
    """``POST /v1/files`` (multipart: ``file`` and ``purpose``)."""

    content: str = Field(description="The file's content: text, or base64 with encoding=base64.")
    filename: str = Field(min_length=1, description="Name sent with the file, e.g. batch.jsonl.")
    purpose: str = Field(min_length=1, description="assistants, batch, fine-tune, vision, ...")
    encoding: Literal["utf-8", "base64"] = "utf-8"
    expires_after: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _base64_decodes(self) -> CreateFile:
        if self.encoding == "base64":
            self.data()
        return self

    def data(self) -> bytes:
        """The file's bytes. Raises ``ValueError`` for invalid base64."""
        if self.encoding == "utf-8":
            return self.content.encode("utf-8")
        try:
            return base64.b64decode(self.content, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"content is not valid base64: {exc}") from None


class RetrieveFile(Params):
    file_id: str = Field(min_length=1)


class ListFiles(Params):
    after: str | None = None
    limit: int | None = Field(default=None, ge=1, le=10_000)
    order: Literal["asc", "desc"] | None = None
    purpose: str | None = None


def _file_props(p: Any) -> list[dict[str, Any]]:
    return [{"label": "Filename", "text": p.filename}, {"label": "Purpose", "text": p.purpose}]


class Files(Namespace):
    """Task names ``openai.files.create``, ``openai.files.retrieve``, ``openai.files.list``."""

    name = "files"

    @operation(params=CreateFile, display="Upload file {filename}", properties=_file_props)
    def create(client: Any, params: CreateFile, task: TaskInfo) -> OperationResult:
        extra = dump(params, "content", "filename", "purpose", "encoding")
        return call_raw(
            client.files.with_raw_response.create, task, idempotent=True,
            file=(params.filename, params.data()), purpose=params.purpose, **extra,
        )

    @operation(
        params=RetrieveFile, display="Retrieve file {file_id}",
        properties=lambda p: [{"label": "File ID", "text": p.file_id}],
    )
    def retrieve(client: Any, params: RetrieveFile, task: TaskInfo) -> OperationResult:
        return call_raw(
            client.files.with_raw_response.retrieve, task, idempotent=False,
            file_id=params.file_id,
        )

    @operation(params=ListFiles, display="List files")
    def list(client: Any, params: ListFiles, task: TaskInfo) -> OperationResult:
        return call_raw(client.files.with_raw_response.list, task, idempotent=False, **dump(params))

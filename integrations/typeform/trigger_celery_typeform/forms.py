"""``io.typeform.forms.*``: the Create API's forms (``client.forms`` of the JS SDK)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from trigger_celery.integration import Namespace, TaskInfo, operation
from trigger_celery_typeform._params import Params
from trigger_celery_typeform.client import TypeformClient


def _form_id(p: Any) -> list[dict[str, Any]]:
    return [{"label": "Form ID", "text": p.uid}]


class GetForm(Params):
    uid: str = Field(min_length=1, description="The form id (the end of its URL).")


class ListForms(Params):
    page: int | None = Field(default=None, ge=1, description="1-based page number.")
    page_size: int | None = Field(default=None, ge=1, le=200, description="Forms per page.")
    search: str | None = Field(default=None, description="Text the form titles contain.")
    workspace_id: str | None = None


class CreateForm(Params):
    data: dict[str, Any] = Field(description="The form definition (``title``, ``fields``, ...).")


class PatchOperation(Params):
    """One JSON Patch operation (RFC 6902) as Typeform accepts them."""

    op: Literal["add", "remove", "replace"]
    path: str = Field(pattern=r"^/")
    value: Any = None


class UpdateForm(Params):
    uid: str = Field(min_length=1)
    data: dict[str, Any] | list[PatchOperation] = Field(
        description="The whole form with ``override``, else a JSON Patch list."
    )
    override: bool = Field(default=False, description="PUT the whole form instead of PATCH.")

    @model_validator(mode="after")
    def _shape_matches_method(self) -> UpdateForm:
        if self.override and not isinstance(self.data, dict):
            raise ValueError("override=True needs data to be the whole form definition (an object)")
        if not self.override and not isinstance(self.data, list):
            raise ValueError("override=False needs data to be a JSON Patch list")
        return self


class DeleteForm(Params):
    uid: str = Field(min_length=1)


class Forms(Namespace):
    """Task names ``typeform.forms.get`` ... ``typeform.forms.delete``."""

    name = "forms"

    @operation(params=GetForm, display="Get form {uid}", properties=_form_id)
    def get(client: TypeformClient, params: GetForm, task: TaskInfo) -> dict[str, Any]:
        return client.forms.get(params.uid)

    @operation(
        params=ListForms, display="List forms",
        properties=lambda p: [{"label": "Search", "text": p.search}] if p.search else [],
    )
    def list(client: TypeformClient, params: ListForms, task: TaskInfo) -> dict[str, Any]:
        return client.forms.list(
            page=params.page, page_size=params.page_size, search=params.search,
            workspace_id=params.workspace_id,
        )

    @operation(
        params=CreateForm,
        display=lambda p: f"Create form {p.data.get('title', '')}".rstrip(),
    )
    def create(client: TypeformClient, params: CreateForm, task: TaskInfo) -> dict[str, Any]:
        return client.forms.create(params.data)

    @operation(params=UpdateForm, display="Update form {uid}", properties=_form_id)
    def update(client: TypeformClient, params: UpdateForm, task: TaskInfo) -> Any:
        if isinstance(params.data, dict):
            return client.forms.update(params.uid, params.data, override=True)
        patch = [op.model_dump(exclude_unset=True) for op in params.data]
        return client.forms.update(params.uid, patch, override=False)

    @operation(params=DeleteForm, display="Delete form {uid}", properties=_form_id)
    def delete(client: TypeformClient, params: DeleteForm, task: TaskInfo) -> None:
        return client.forms.delete(params.uid)

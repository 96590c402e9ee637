"""``io.typeform.responses.*``: the Responses API (``client.responses`` of the JS SDK).

``responses.all`` (every page of a form's responses, one subtask per page, as Trigger.dev's
Typeform integration does) is built by the engine on :func:`iter_response_pages`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from trigger_celery.integration import Namespace, TaskInfo, compound, operation
from trigger_celery_typeform._params import Params
from trigger_celery_typeform.client import TypeformClient

#: Typeform's largest ``page_size`` for responses.
MAX_PAGE_SIZE = 1000


class ListResponses(Params):
    """Every documented query parameter of ``GET /forms/{uid}/responses``."""

    uid: str = Field(min_length=1)
    page_size: int | None = Field(default=None, ge=1, le=MAX_PAGE_SIZE)
    since: str | None = Field(default=None, description="ISO 8601 date-time or Unix seconds.")
    until: str | None = Field(default=None, description="ISO 8601 date-time or Unix seconds.")
    after: str | None = Field(default=None, description="A response token (cursor).")
    before: str | None = Field(default=None, description="A response token (cursor).")
    included_response_ids: list[str] | None = None
    excluded_response_ids: list[str] | None = None
    response_type: list[Literal["started", "partial", "completed"]] | None = None
    completed: bool | None = None
    sort: str | None = Field(default=None, description="``{field},{asc|desc}``.")
    query: str | None = None
    fields: list[str] | None = None
    answered_fields: list[str] | None = None


class AllResponses(Params):
    """``responses.all``: the filters of ``responses.list`` except the cursors it drives."""

    uid: str = Field(min_length=1)
    page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    since: str | None = None
    until: str | None = None
    included_response_ids: list[str] | None = None
    excluded_response_ids: list[str] | None = None
    response_type: list[Literal["started", "partial", "completed"]] | None = None
    completed: bool | None = None
    query: str | None = None
    fields: list[str] | None = None
    answered_fields: list[str] | None = None


class DeleteResponses(Params):
    uid: str = Field(min_length=1)
    included_response_ids: list[str] = Field(min_length=1)


class Responses(Namespace):
    """Task names ``typeform.responses.list`` and ``typeform.responses.delete``."""

    name = "responses"

    @operation(
        params=ListResponses, display="List responses of {uid}",
        properties=lambda p: [{"label": "Form ID", "text": p.uid}],
    )
    def list(client: TypeformClient, params: ListResponses, task: TaskInfo) -> dict[str, Any]:
        return client.responses.list(**params.model_dump(exclude_none=True))

    @compound(
        params=AllResponses, display="All responses of {uid}",
        properties=lambda p: [{"label": "Form ID", "text": p.uid}],
    )
    def all(typeform_io: Any, params: AllResponses) -> dict[str, Any]:
        """Every response of a form, one ``responses.list`` subtask per page (keys ``page-0``,
        ``page-1``, ...), following the ``before`` cursor as :func:`iter_response_pages` does.
        A resumed run does not fetch completed pages again. Returns
        ``{"total_items": int, "items": [...]}`` (Trigger.dev's Typeform ``responses.all``).
        """
        filters = params.model_dump(exclude_none=True, exclude={"uid", "page_size"})
        items: list[Any] = []
        before = None
        for n in range(100_000):
            page = typeform_io.responses.list(
                f"page-{n}", uid=params.uid, page_size=params.page_size,
                **({"before": before} if before else {}), **filters)
            page_items = page.get("items") or []
            items.extend(page_items)
            if len(page_items) < params.page_size:
                break
            before = page_items[-1]["token"]
        return {"total_items": len(items), "items": items}

    @operation(
        params=DeleteResponses, display="Delete responses of {uid}",
        properties=lambda p: [
            {"label": "Form ID", "text": p.uid},
            {"label": "Responses", "text": str(len(p.included_response_ids))},
        ],
    )
    def delete(client: TypeformClient, params: DeleteResponses, task: TaskInfo) -> Any:
        return client.responses.delete(params.uid, params.included_response_ids)


def iter_response_pages(
    client: TypeformClient, uid: str, page_size: int = MAX_PAGE_SIZE, **filters: Any
) -> Iterator[dict[str, Any]]:
    """Every page of a form's responses, newest first, following Typeform's ``before`` cursor.

    Ported from Trigger.dev v2's Typeform integration (``responses.all``): request a page, then
    the next with ``before`` set to the ``token`` of the last item of the page, until a page comes
    back short (fewer than ``page_size`` items) or empty.

    Parameters:
        client: the authenticated client.
        uid: the form id.
        page_size: responses per request, 1 to 1000.
        filters: any other query parameter of :meth:`Responses.list` (``since``, ``until``,
            ``completed``, ``fields``, ...). ``before`` sets where paging starts. ``sort`` and
            ``after`` are refused: Typeform does not combine them with the ``before`` cursor.

    Yields:
        Each page as Typeform returns it: ``{"total_items", "page_count", "items": [...]}``.

    Raises:
        ValueError: ``page_size`` out of range, or ``sort``/``after``/``page_size`` in filters.
        TypeformError: an API error, from the page that failed.
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
    refused = {"sort", "after", "uid", "page_size"} & filters.keys()
    if refused:
        raise ValueError(
            f"iter_response_pages: cannot combine the before cursor with {sorted(refused)}"
        )
    before = filters.pop("before", None)
    while True:
        page = client.responses.list(uid, page_size=page_size, before=before, **filters)
        yield page
        items = page.get("items") or []
        if len(items) < page_size:
            return
        before = items[-1]["token"]

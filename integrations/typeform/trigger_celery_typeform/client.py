"""A thin ``requests`` client for Typeform's Create and Responses APIs.

Typeform has no maintained Python SDK, so this client is shaped like the official JavaScript one,
``@typeform/api-client`` (``createClient({token}).forms.get({uid})``): one object per API group,
``forms``, ``responses`` and ``webhooks``, each method one HTTP request returning the decoded JSON
body. Python spelling: ``client.forms.get(uid)``, snake_case keyword arguments.

API reference: https://www.typeform.com/developers/create/reference/ (forms),
https://www.typeform.com/developers/responses/reference/ (responses),
https://www.typeform.com/developers/webhooks/reference/ (webhooks).

Errors: every non-2xx answer raises :class:`TypeformError` (status, parsed body, headers);
network failures raise ``requests.RequestException`` unchanged. The client never retries: the
framework decides when to (see ``Typeform.on_error``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import quote

import requests

from trigger_celery import TriggerCeleryError

DEFAULT_BASE_URL = "https://api.typeform.com"
#: Typeform's EU data-center host (accounts created in the EU).
EU_BASE_URL = "https://api.eu.typeform.com"
#: Seconds to wait for the connection and for each read.
DEFAULT_TIMEOUT_S = 30.0


class TypeformError(TriggerCeleryError):
    """Typeform answered with a non-2xx status.

    Attributes:
        status: the HTTP status code.
        body: the parsed JSON body (Typeform sends ``{"code": ..., "description": ...}``), or the
            raw text when it is not JSON.
        headers: the response headers (case-insensitive mapping), e.g. ``retry-after`` on 429.
    """

    def __init__(self, status: int, body: Any, headers: Mapping[str, str]):
        self.status = status
        self.body = body
        self.headers = headers
        detail = ""
        if isinstance(body, dict):
            detail = " ".join(str(body[k]) for k in ("code", "description") if body.get(k))
        elif body:
            detail = str(body)[:200]
        super().__init__(f"Typeform API error {status}" + (f": {detail}" if detail else ""))


class _BearerAuth(requests.auth.AuthBase):
    """Adds ``Authorization: Bearer <token>``; its repr never shows the token."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(token='[redacted]')"


def _seg(value: str) -> str:
    """A path segment, percent-encoded so that an id can never change the path."""
    if not value:
        raise ValueError("Typeform: an empty id in a request path")
    return quote(str(value), safe="")


def _csv(value: str | Iterable[str] | None) -> str | None:
    """Typeform takes lists as comma-separated strings (``included_response_ids=a,b``)."""
    if value is None or isinstance(value, str):
        return value
    return ",".join(value)


def _bool(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def _query(**params: Any) -> dict[str, Any]:
    """Drop unset (``None``) query parameters."""
    return {k: v for k, v in params.items() if v is not None}


class TypeformClient:
    """Authenticated Typeform API client.

    Parameters:
        token: a personal access token or OAuth access token; sent as ``Bearer``. Never shown in
            ``repr`` or logs.
        base_url: API host, ``https://api.typeform.com`` by default; ``EU_BASE_URL``
            (``https://api.eu.typeform.com``) for EU accounts, or a test server.
        session: a ``requests.Session`` to reuse (connection pooling, proxies); a new one if
            omitted.
        timeout_s: connect and read timeout, in seconds.
    """

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        session: requests.Session | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ):
        if not token:
            raise ValueError("TypeformClient: token is empty")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = session or requests.Session()
        self._auth = _BearerAuth(token)
        self.forms = Forms(self)
        self.responses = Responses(self)
        self.webhooks = Webhooks(self)

    def __repr__(self) -> str:
        return f"TypeformClient(base_url={self.base_url!r})"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one request; returns the decoded JSON body (``None`` for an empty body, e.g. 204).

        Raises:
            TypeformError: non-2xx status.
            requests.RequestException: the request did not get an answer.
        """
        response = self._session.request(
            method,
            f"{self.base_url}{path}",
            params=params,
            json=json,
            auth=self._auth,
            headers={"Accept": "application/json"},
            timeout=self.timeout_s,
        )
        body: Any
        if not response.content:
            body = None
        else:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        if not response.ok:
            raise TypeformError(response.status_code, body, response.headers)
        return body


class _Group:
    def __init__(self, client: TypeformClient):
        self._client = client


class Forms(_Group):
    """``/forms`` (Create API). JS SDK: ``client.forms``."""

    def get(self, uid: str) -> dict[str, Any]:
        """``GET /forms/{uid}``: the form definition."""
        return cast("dict[str, Any]", self._client.request("GET", f"/forms/{_seg(uid)}"))

    def list(
        self,
        page: int | None = None,
        page_size: int | None = None,
        search: str | None = None,
        workspace_id: str | None = None,
    ) -> dict[str, Any]:
        """``GET /forms``: ``{"total_items", "page_count", "items": [...]}``.

        Parameters:
            page: 1-based page number.
            page_size: forms per page (Typeform: 10 by default, at most 200).
            search: only forms whose title contains this text.
            workspace_id: only forms of this workspace.
        """
        return cast("dict[str, Any]", self._client.request(
            "GET", "/forms",
            params=_query(page=page, page_size=page_size, search=search,
                          workspace_id=workspace_id),
        ))

    def create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /forms`` with the form definition; returns the created form."""
        return cast("dict[str, Any]", self._client.request("POST", "/forms", json=dict(data)))

    def update(
        self,
        uid: str,
        data: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        override: bool = False,
    ) -> dict[str, Any] | None:
        """Change a form.

        Parameters:
            uid: the form id.
            data: with ``override``, the whole new form definition, sent with ``PUT /forms/{uid}``
                (replaces the form); without, a JSON Patch list (RFC 6902,
                ``[{"op": "replace", "path": "/title", "value": "New"}]``) sent with
                ``PATCH /forms/{uid}``.
            override: ``PUT`` (full replacement) instead of ``PATCH``.

        Returns:
            The updated form for ``PUT``; ``None`` for ``PATCH`` (Typeform answers 204).
        """
        if override:
            form = cast("Mapping[str, Any]", data)
            return cast("dict[str, Any]", self._client.request(
                "PUT", f"/forms/{_seg(uid)}", json=dict(form)
            ))
        ops = cast("Iterable[Mapping[str, Any]]", data)
        return cast(None, self._client.request(
            "PATCH", f"/forms/{_seg(uid)}", json=[dict(op) for op in ops]
        ))

    def delete(self, uid: str) -> None:
        """``DELETE /forms/{uid}`` (also deletes its responses). Typeform answers 204."""
        return cast(None, self._client.request("DELETE", f"/forms/{_seg(uid)}"))


class Responses(_Group):
    """``/forms/{uid}/responses`` (Responses API). JS SDK: ``client.responses``."""

    def list(
        self,
        uid: str,
        page_size: int | None = None,
        since: str | None = None,
        until: str | None = None,
        after: str | None = None,
        before: str | None = None,
        included_response_ids: str | Iterable[str] | None = None,
        excluded_response_ids: str | Iterable[str] | None = None,
        response_type: str | Iterable[str] | None = None,
        completed: bool | None = None,
        sort: str | None = None,
        query: str | None = None,
        fields: str | Iterable[str] | None = None,
        answered_fields: str | Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """``GET /forms/{uid}/responses``: ``{"total_items", "page_count", "items": [...]}``.

        Every query parameter Typeform documents; lists are sent comma-separated.

        Parameters:
            page_size: responses per page (Typeform: 25 by default, at most 1000).
            since / until: ISO 8601 date-time or Unix seconds bounding ``submitted_at``.
            after / before: a response ``token``; only responses submitted after / before it
                (cursor paging; Typeform says not to combine them with ``sort``).
            included_response_ids / excluded_response_ids: response ids to keep / to leave out.
            response_type: ``started``, ``partial``, ``completed`` (one or more).
            completed: ``True`` only submitted responses, ``False`` only unsubmitted (legacy;
                Typeform prefers ``response_type``).
            sort: ``"{field},{asc|desc}"``, e.g. ``submitted_at,desc`` (the default).
            query: only responses containing this text.
            fields: field ids whose answers to include.
            answered_fields: only responses that answered these field ids.
        """
        return cast("dict[str, Any]", self._client.request(
            "GET", f"/forms/{_seg(uid)}/responses",
            params=_query(
                page_size=page_size, since=since, until=until, after=after, before=before,
                included_response_ids=_csv(included_response_ids),
                excluded_response_ids=_csv(excluded_response_ids),
                response_type=_csv(response_type), completed=_bool(completed), sort=sort,
                query=query, fields=_csv(fields), answered_fields=_csv(answered_fields),
            ),
        ))

    def delete(self, uid: str, included_response_ids: str | Iterable[str]) -> Any:
        """``DELETE /forms/{uid}/responses?included_response_ids=a,b``.

        Typeform deletes asynchronously and answers 200 (or 202) with an empty or small body.
        """
        ids = _csv(included_response_ids)
        if not ids:
            raise ValueError("responses.delete: included_response_ids is empty")
        return self._client.request(
            "DELETE", f"/forms/{_seg(uid)}/responses", params={"included_response_ids": ids}
        )


class Webhooks(_Group):
    """``/forms/{uid}/webhooks`` (Webhooks API). JS SDK: ``client.webhooks``."""

    def create(
        self,
        uid: str,
        tag: str,
        url: str,
        enabled: bool = True,
        secret: str | None = None,
        verify_ssl: bool | None = None,
        event_types: Mapping[str, bool] | None = None,
    ) -> dict[str, Any]:
        """``PUT /forms/{uid}/webhooks/{tag}``: create (or replace) the webhook named ``tag``.

        Parameters:
            url: where Typeform POSTs each response.
            enabled: deliver right away.
            secret: signs deliveries (``Typeform-Signature``); see ``webhooks.verify_signature``.
            verify_ssl: whether Typeform checks ``url``'s TLS certificate.
            event_types: e.g. ``{"form_response": True, "form_response_partial": False}``.
        """
        body: dict[str, Any] = {"url": url, "enabled": enabled}
        if secret is not None:
            body["secret"] = secret
        if verify_ssl is not None:
            body["verify_ssl"] = verify_ssl
        if event_types is not None:
            body["event_types"] = dict(event_types)
        return cast("dict[str, Any]", self._client.request(
            "PUT", f"/forms/{_seg(uid)}/webhooks/{_seg(tag)}", json=body
        ))

    def update(
        self,
        uid: str,
        tag: str,
        url: str,
        enabled: bool = True,
        secret: str | None = None,
        verify_ssl: bool | None = None,
        event_types: Mapping[str, bool] | None = None,
    ) -> dict[str, Any]:
        """Same request as :meth:`create` (Typeform's ``PUT`` creates or updates)."""
        return self.create(uid, tag, url, enabled, secret, verify_ssl, event_types)

    def get(self, uid: str, tag: str) -> dict[str, Any]:
        """``GET /forms/{uid}/webhooks/{tag}``."""
        return cast("dict[str, Any]", self._client.request(
            "GET", f"/forms/{_seg(uid)}/webhooks/{_seg(tag)}"
        ))

    def list(self, uid: str) -> dict[str, Any]:
        """``GET /forms/{uid}/webhooks``: ``{"items": [...]}``."""
        return cast("dict[str, Any]", self._client.request("GET", f"/forms/{_seg(uid)}/webhooks"))

    def delete(self, uid: str, tag: str) -> None:
        """``DELETE /forms/{uid}/webhooks/{tag}``; Typeform answers 204."""
        return cast(None, self._client.request(
            "DELETE", f"/forms/{_seg(uid)}/webhooks/{_seg(tag)}"
        ))

    def toggle(self, uid: str, tag: str, enabled: bool) -> dict[str, Any]:
        """``PUT /forms/{uid}/webhooks/{tag}`` with ``{"enabled": ...}`` (the JS SDK's toggle)."""
        return cast("dict[str, Any]", self._client.request(
            "PUT", f"/forms/{_seg(uid)}/webhooks/{_seg(tag)}", json={"enabled": enabled}
        ))

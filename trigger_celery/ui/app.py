"""The read-only web UI: a runs list with filters and a run's timeline that updates live.

Built on Starlette with server-rendered Jinja2 templates (``templates/`` beside this file) and a
few lines of inline JavaScript that poll an HTML fragment once a second while a run is unfinished.
It reads runs through the client's public API (:meth:`TriggerClient.list_runs`,
:meth:`TriggerClient.get_run`) and never writes. It shows no environment variable or setting;
task params are shown as the engine stored them (redacted by path when a task asked for it).

When ``token`` is given every page asks for it, as HTTP basic auth (any user name, the token as
password) or ``Authorization: Bearer <token>``; :mod:`trigger_celery.ui._server` refuses to bind
anything but a loopback address without one.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trigger_celery._errors import RunNotFoundError
from trigger_celery.ui._view import TEMPLATE_GLOBALS, WINDOWS, filters

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient

logger = logging.getLogger("trigger_celery")

STATUSES = ("QUEUED", "EXECUTING", "WAITING", "SUCCESS", "FAILURE", "CANCELED")
TEMPLATES_DIR = Path(__file__).parent / "templates"
#: Most runs the list shows (newest first). The time filter keeps a prefix of that order, so
#: it needs no deeper read.
LIST_LIMIT = 50
#: How often the pages poll for changes, in milliseconds.
POLL_MS = 1000


class TokenAuth:
    """ASGI middleware: every HTTP request must carry ``token`` (basic auth password, any user,
    or a bearer token), compared in constant time; ``/healthz`` stays open.

    Parameters:
        app: the wrapped ASGI app.
        token: the shared secret (non-empty).
    """

    def __init__(self, app: ASGIApp, token: str):
        if not token:
            raise ValueError("token must not be empty")
        self.app = app
        self.token = token.encode()

    def _ok(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        given: bytes | None = None
        if scheme.lower() == "bearer":
            given = value.strip().encode()
        elif scheme.lower() == "basic":
            try:
                given = base64.b64decode(value.strip(), validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                given = None
        return given is not None and hmac.compare_digest(given, self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/healthz":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self._ok(headers.get(b"authorization", b"").decode("latin-1")):
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse(
            "authentication required\n", status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="trigger-celery", charset="UTF-8"'})
        await response(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware: a per-response CSP nonce (``scope["state"]["nonce"]``) and headers that
    keep pages out of frames and caches."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["nonce"] = nonce
        extra = [
            (b"content-security-policy",
             f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
             "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
             "form-action 'self'; frame-ancestors 'none'".encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cache-control", b"no-store"),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals.update(TEMPLATE_GLOBALS)
    env.globals["poll_ms"] = POLL_MS
    env.globals["statuses"] = STATUSES
    env.globals["windows"] = list(WINDOWS)
    env.globals["list_limit"] = LIST_LIMIT
    return Jinja2Templates(env=env)


def create_app(client: TriggerClient, *, token: str | None = None) -> ASGIApp:
    """The UI as an ASGI app reading ``client``'s runs.

    Parameters:
        client: the :class:`~trigger_celery.TriggerClient` whose store holds the runs.
        token: when set, every page but ``/healthz`` requires it (see :class:`TokenAuth`).

    Returns:
        An ASGI application (serve it with :func:`trigger_celery.ui.serve` or any ASGI server).
    """
    templates = _templates()

    def list_query(request: Request) -> dict[str, Any]:
        q = request.query_params
        status = (q.get("status") or "").upper()
        since = q.get("since") or ""
        return {"job": q.get("job") or "", "status": status if status in STATUSES else "",
                "since": since if since in WINDOWS else ""}

    def matching_runs(query: dict[str, Any]) -> list[Any]:
        now = client.store.now()
        runs = client.list_runs(job_id=query["job"] or None, status=query["status"] or None,
                                limit=LIST_LIMIT)
        since_s = WINDOWS.get(query["since"])
        return [r for r in runs
                if filters(r, job=None, status=None, since_s=since_s, now=now)][:LIST_LIMIT]

    def job_ids() -> list[str]:
        return sorted({*client.jobs, *client.store.registered_jobs()})

    def index(request: Request) -> Response:
        return RedirectResponse(request.url_for("runs"), status_code=302)

    def runs(request: Request) -> Response:
        query = list_query(request)
        return templates.TemplateResponse(request, "runs.html", {
            "query": query, "runs": matching_runs(query), "jobs": job_ids(),
            "nonce": request.state.nonce, "now": client.store.now()})

    def runs_rows(request: Request) -> Response:
        query = list_query(request)
        return templates.TemplateResponse(request, "_runs_rows.html", {
            "runs": matching_runs(query), "now": client.store.now()})

    def run_page(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            run = client.get_run(run_id)
        except RunNotFoundError:
            return templates.TemplateResponse(request, "not_found.html", {
                "run_id": run_id, "nonce": request.state.nonce}, status_code=404)
        return templates.TemplateResponse(request, "run.html", {
            "run": run, "nonce": request.state.nonce, "now": client.store.now()})

    def run_body(request: Request) -> Response:
        try:
            run = client.get_run(request.path_params["run_id"])
        except RunNotFoundError:
            return PlainTextResponse("run not found\n", status_code=404)
        return templates.TemplateResponse(request, "_run_body.html", {
            "run": run, "now": client.store.now()})

    def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    def store_down(request: Request, exc: Exception) -> Response:
        logger.warning("UI: the store does not answer: %s", type(exc).__name__)
        return PlainTextResponse("the store (Redis) does not answer; try again shortly\n",
                                 status_code=503)

    app: ASGIApp = Starlette(exception_handlers={redis.RedisError: store_down}, routes=[
        Route("/", index),
        Route("/healthz", healthz),
        Route("/runs", runs, name="runs"),
        Route("/runs/_rows", runs_rows, name="runs_rows"),
        Route("/runs/{run_id}", run_page, name="run"),
        Route("/runs/{run_id}/_body", run_body, name="run_body"),
    ])
    if token:
        app = TokenAuth(app, token)
    return SecurityHeaders(app)

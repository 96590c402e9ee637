"""A local HTTP server that replays recorded API exchanges, for tests of integrations.

Point the real SDK client at :attr:`ReplayServer.base_url` (e.g. ``GitHub(base_url=...)``); the
server answers each request with the next recorded response queued for its method and path, and
records what it received so the test can assert on it. Nothing is mocked: the SDK makes real HTTP
requests to 127.0.0.1.

Two recording formats load:

* PyGithub's replay files (``tests/ReplayData/*.txt`` in PyGithub): 11 lines per exchange ::

      protocol, method, host, port, path, request headers, request body,
      status, response headers (a Python-literal list of pairs), response body, blank

  The last exchange of a file may lack its blank line.
* This module's JSON format: a list of objects ::

      {"method": "POST", "path": "/repos/o/r/issues", "status": 201,
       "headers": {"x-ratelimit-remaining": "4999"} | [["name", "value"], ...],
       "body": <any JSON value, or null for an empty body>,
       "request_body": <optional: the JSON the client is expected to send>}

Responses are served per ``(method, path with query)`` in recorded order, independently of other
paths, so a test need not request the recorded ``setUp`` GETs first. The recorded host
(``https://api.github.com`` by default) is rewritten to the server's own base URL in bodies and in
``Link``/``Location`` headers; recorded ``content-length``, ``content-encoding``,
``transfer-encoding`` and other hop-by-hop headers are dropped (the server computes its own).
A request nothing is queued for gets a 404 whose JSON ``message`` says so (and lists what is
queued), and is kept in :attr:`ReplayServer.unexpected`.
"""

from __future__ import annotations

import ast
import io
import json
import math
import sys
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

__all__ = ["Exchange", "RecordedRequest", "ReplayServer", "load_exchanges"]

#: Response headers never replayed: the server sets its own framing (and Date/Server).
DROPPED_HEADERS = frozenset(
    {
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "date",
        "server",
        "status",
    }
)
#: Headers whose values may carry absolute URLs of the recorded host.
URL_HEADERS = frozenset({"link", "location"})
#: Request headers shown as ``[redacted]`` in reprs of :class:`RecordedRequest`.
SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

DEFAULT_RECORDED_HOST = "https://api.github.com"


@dataclass
class Exchange:
    """One recorded response waiting to be served.

    Attributes:
        method: HTTP method, upper case.
        path: path with query string as recorded (``/repos/o/r/issues?state=open``).
        status: HTTP status code.
        headers: response headers as ``(name, value)`` pairs, in recorded order.
        body: response body text (the recorded host is rewritten when served).
        request_body: the body the client sent when it was recorded (text), or ``None``.
        served: whether it has been served.
    """

    method: str
    path: str
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    request_body: str | None = None
    served: bool = False

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``None``."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        """Replace (or add) header ``name``, case-insensitively."""
        lname = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lname]
        self.headers.append((name, value))

    def request_json(self) -> Any:
        """The recorded request body parsed as JSON (``None`` when there was none)."""
        if self.request_body is None or self.request_body == "":
            return None
        return json.loads(self.request_body)


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received.

    Attributes:
        method: HTTP method, upper case.
        path: the path, percent-decoded, without query (``/repos/o/r/issues``).
        query: the query string parsed into ``{name: [values]}``.
        full_path: the path with its raw query, as sent (``/repos/o/r/issues?state=open``).
        headers: request headers with lower-case names.
        body: the raw body bytes.
        at: when it arrived, in epoch seconds (by the server's clock).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    full_path: str
    headers: dict[str, str]
    body: bytes
    at: float = 0.0

    def json(self) -> Any:
        """The body parsed as JSON; ``None`` for an empty body. Raises ``ValueError`` if invalid."""
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:  # credentials never show in test output
        shown = {k: ("[redacted]" if k in SECRET_HEADERS else v) for k, v in self.headers.items()}
        return (
            f"RecordedRequest(method={self.method!r}, full_path={self.full_path!r}, "
            f"headers={shown!r}, body={self.body[:200]!r})"
        )


def _match_key(method: str, path_with_query: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """Normalize ``(method, path?query)`` so equivalent spellings match.

    The path is percent-decoded (``%28`` and ``(`` are the same path) and the query is compared
    as a sorted list of pairs (parameter order does not matter).
    """
    parts = urllib.parse.urlsplit(path_with_query)
    path = urllib.parse.unquote(parts.path) or "/"
    query = tuple(sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)))
    return method.upper(), path, query


def _body_text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body.decode("utf-8")
    return json.dumps(body)


def _header_pairs(
    headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | Iterable[list[Any]] | None,
) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    pairs = []
    for pair in headers:
        name, value = pair
        pairs.append((str(name), str(value)))
    return pairs


def parse_pygithub(text: str) -> list[Exchange]:
    """Parse PyGithub's replay format (see the module docstring) into exchanges.

    Raises:
        ValueError: a block is truncated or a status/header line does not parse.
    """
    lines = text.splitlines()
    exchanges: list[Exchange] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "":  # tolerate extra blank lines between exchanges
            i += 1
            continue
        block = lines[i : i + 10]
        if len(block) < 10:
            raise ValueError(
                f"truncated exchange at line {i + 1}: expected 10 lines, got {len(block)}"
            )
        _proto, method, _host, _port, path, _req_headers, req_body, status, headers, body = block
        try:
            pairs = ast.literal_eval(headers)
            exchanges.append(
                Exchange(
                    method=method.strip().upper(),
                    path=path,
                    status=int(status),
                    headers=_header_pairs(pairs),
                    body=body,
                    request_body=None if req_body == "None" else req_body,
                )
            )
        except (ValueError, SyntaxError) as exc:
            raise ValueError(f"bad exchange at line {i + 1}: {exc}") from None
        i += 10
        if i < len(lines) and lines[i].strip() == "":
            i += 1
    return exchanges


def parse_json(data: Any) -> list[Exchange]:
    """Parse this module's JSON format (a list of exchange objects; see the module docstring).

    Raises:
        ValueError: not a list, or an item lacks ``method``/``path`` or has unknown fields.
    """
    if not isinstance(data, list):
        raise ValueError("a JSON replay file holds a list of exchanges")
    allowed = {"method", "path", "status", "headers", "body", "request_body"}
    exchanges = []
    for n, item in enumerate(data):
        if not isinstance(item, dict) or not {"method", "path"} <= item.keys():
            raise ValueError(f"exchange {n}: needs at least 'method' and 'path'")
        unknown = item.keys() - allowed
        if unknown:
            raise ValueError(f"exchange {n}: unknown fields {sorted(unknown)}")
        request_body = item.get("request_body")
        exchanges.append(
            Exchange(
                method=str(item["method"]).upper(),
                path=str(item["path"]),
                status=int(item.get("status", 200)),
                headers=_header_pairs(item.get("headers")),
                body=_body_text(item.get("body")),
                request_body=None if request_body is None else _body_text(request_body),
            )
        )
    return exchanges


def load_exchanges(path: str | Path) -> list[Exchange]:
    """Load a recording: ``*.json`` in this module's format, anything else as PyGithub's."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return parse_json(json.loads(text))
    return parse_pygithub(text)


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without its per-request log lines on stderr."""

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's name
        pass


class _KeepAliveHandler(_QuietHandler):
    """HTTP/1.1 with keep-alive: a connection stays open for the client's next request, as an
    API's would, so a client's connection pool reuses it.

    werkzeug's own handler always answers ``Connection: close`` (and drains the socket after
    each answer), so this one calls the WSGI app itself: one request per
    :meth:`handle_one_request`, the body read by its ``Content-Length``."""

    protocol_version = "HTTP/1.1"
    server: BaseWSGIServer

    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():  # it answered the error itself
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query, "REQUEST_URI": self.path, "RAW_URI": self.path,
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(self.server.server_port),
            "SERVER_PROTOCOL": self.request_version, "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(length),
            "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http", "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            answer[:] = [status, headers]
            return lambda data: None

        data = b"".join(self.server.app(environ, start_response))
        code, _, reason = answer[0].partition(" ")
        self.send_response(int(code), reason)
        for name, value in answer[1]:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()


class ReplayServer:
    """Serve recorded exchanges on 127.0.0.1 (a free port) from a background thread.

    Parameters:
        recorded_host: scheme and host the recordings were made against; rewritten to
            :attr:`base_url` in served bodies and ``Link``/``Location`` headers.
        clock: epoch seconds now (``time.time`` by default); used by ``reset_in``.
        keep_alive: answer in HTTP/1.1 and keep each connection open for the client's next
            request, as real APIs do (a client's connection pool then reuses it); default
            HTTP/1.0, one connection per request.

    Use as a context manager (``with ReplayServer() as server: ...``) or call :meth:`start` and
    :meth:`stop`. Thread-safe: the server thread and the test share a lock.
    """

    def __init__(
        self,
        *,
        recorded_host: str = DEFAULT_RECORDED_HOST,
        clock: Callable[[], float] = time.time,
        keep_alive: bool = False,
    ) -> None:
        self.recorded_host = recorded_host.rstrip("/")
        self.clock = clock
        self.keep_alive = keep_alive
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str, tuple[tuple[str, str], ...]], deque[Exchange]] = {}
        self._exchanges: list[Exchange] = []
        self.requests: list[RecordedRequest] = []
        self.unexpected: list[RecordedRequest] = []
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ReplayServer:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread. Returns ``self``."""
        if self._server is not None:
            return self
        self._server = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True,
            request_handler=_KeepAliveHandler if self.keep_alive else _QuietHandler,
        )
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05),
            name="replay-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``; the server must be started."""
        if self._server is None:
            raise RuntimeError("ReplayServer is not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    # -- queueing ----------------------------------------------------------------------------

    def enqueue(self, exchanges: Iterable[Exchange]) -> list[Exchange]:
        """Queue exchanges after those already queued for their method and path."""
        queued = list(exchanges)
        with self._lock:
            for ex in queued:
                self._queues.setdefault(_match_key(ex.method, ex.path), deque()).append(ex)
                self._exchanges.append(ex)
        return queued

    def load(self, path: str | Path) -> list[Exchange]:
        """Queue a recording file (see :func:`load_exchanges`); returns its exchanges."""
        return self.enqueue(load_exchanges(path))

    def add(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        headers: Mapping[str, Any] | None = None,
        body: Any = None,
        reset_in: float | None = None,
    ) -> Exchange:
        """Queue one response for ``method path`` (path may carry a query string).

        Parameters:
            body: any JSON value (``None``: empty body), or ``bytes`` sent as they are.
            headers: response headers; ``content-type`` defaults to JSON.
            reset_in: seconds from now (by :attr:`clock`) for an ``x-ratelimit-reset`` header
                (epoch seconds, rounded up), as GitHub sends with rate-limited responses.
        """
        pairs = _header_pairs(headers)
        if not any(k.lower() == "content-type" for k, _ in pairs):
            pairs.append(("content-type", "application/json; charset=utf-8"))
        ex = Exchange(method=method.upper(), path=path, status=status, headers=pairs,
                      body=_body_text(body))
        if reset_in is not None:
            ex.set_header("x-ratelimit-reset", str(math.ceil(self.clock() + reset_in)))
        self.enqueue([ex])
        return ex

    def set_reset_in(self, seconds: float, *, only_existing: bool = True) -> int:
        """Set ``x-ratelimit-reset`` of queued (unserved) responses to now + ``seconds``.

        Recorded reset times lie in the past; this makes them current. With ``only_existing``
        only responses that already carry the header change. Returns the epoch seconds set.
        """
        reset = math.ceil(self.clock() + seconds)
        with self._lock:
            for ex in self._exchanges:
                if ex.served:
                    continue
                if ex.header("x-ratelimit-reset") is not None or not only_existing:
                    ex.set_header("x-ratelimit-reset", str(reset))
        return reset

    def pending(self) -> list[Exchange]:
        """Queued exchanges not served yet, in queueing order."""
        with self._lock:
            return [ex for ex in self._exchanges if not ex.served]

    def clear(self) -> None:
        """Forget queued exchanges and received requests."""
        with self._lock:
            self._queues.clear()
            self._exchanges.clear()
            self.requests.clear()
            self.unexpected.clear()

    # -- serving -----------------------------------------------------------------------------

    def _rewrite(self, text: str) -> str:
        return text.replace(self.recorded_host, self.base_url)

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.full_path
        raw_path = raw_path if raw_path.startswith("/") else request.full_path
        full_path = raw_path.rstrip("?")
        received = RecordedRequest(
            method=request.method.upper(),
            path=request.path,
            query={k: request.args.getlist(k) for k in request.args},
            full_path=full_path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            at=self.clock(),
        )
        key = _match_key(received.method, full_path)
        with self._lock:
            self.requests.append(received)
            queue = self._queues.get(key)
            exchange = queue.popleft() if queue else None
            if exchange is not None:
                exchange.served = True
            else:
                self.unexpected.append(received)
                waiting = sorted({f"{ex.method} {ex.path}" for ex in self._exchanges
                                  if not ex.served})
        if exchange is None:
            response = Response(
                json.dumps({
                    "message": f"Not Found: replay server has no response queued for "
                               f"{received.method} {full_path}",
                    "queued": waiting,
                }),
                status=404,
                content_type="application/json; charset=utf-8",
            )
            return response(environ, start_response)
        response = Response(self._rewrite(exchange.body), status=exchange.status)
        response.headers.clear()
        for name, value in exchange.headers:
            if name.lower() in DROPPED_HEADERS:
                continue
            if name.lower() in URL_HEADERS:
                value = self._rewrite(value)
            response.headers.add(name, value)
        if "content-type" not in response.headers:
            response.headers["content-type"] = "application/json; charset=utf-8"
        return response(environ, start_response)

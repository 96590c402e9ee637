"""Serving the UI with uvicorn: in the foreground (``trigger-celery ui``) or on a thread
(``trigger-celery dev``, the demo). Binding anything but a loopback address needs a token."""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from typing import TYPE_CHECKING

import uvicorn

from trigger_celery._errors import ConfigurationError
from trigger_celery.ui.app import create_app

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only answers this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int, *, fallback: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free port).

    Parameters:
        fallback: when ``port`` is taken, bind a free port instead of failing.

    Raises:
        ConfigurationError: the address is taken (without ``fallback``) or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        if fallback and exc.errno == errno.EADDRINUSE and port:
            sock.close()
            return bind(host, 0)
        sock.close()
        raise ConfigurationError(f"UI: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://HOST:PORT`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class UIServer:
    """The UI for ``client`` on ``host:port``; :meth:`run` blocks, :meth:`start` uses a thread.

    Parameters:
        client: whose runs to show.
        host: address to bind (default 127.0.0.1). Any non-loopback address needs ``token``.
        port: TCP port (default 8765; 0 picks a free one).
        token: shared secret every page asks for (basic auth password or bearer token).
        fallback_port: when ``port`` is taken, use a free one (``dev``).

    Raises:
        ConfigurationError: a non-loopback host without a token, or the port cannot be bound.
    """

    def __init__(self, client: TriggerClient, *, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, token: str | None = None,
                 fallback_port: bool = False):
        if not is_loopback(host) and not token:
            raise ConfigurationError(
                f"the UI will not listen on {host} without a token: pass --token (or set "
                "TRIGGER_CELERY_UI_TOKEN), or bind 127.0.0.1")
        self.socket = bind(host, port, fallback=fallback_port)
        self.url = url_of(self.socket)
        config = uvicorn.Config(create_app(client, token=token or None), log_level="warning",
                                access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C, SIGTERM)."""
        self.server.run(sockets=[self.socket])

    def start(self) -> UIServer:
        """Serve on a daemon thread; returns once it accepts connections (at most 10 s)."""
        self._thread = threading.Thread(target=self.server.run, kwargs={
            "sockets": [self.socket]}, daemon=True, name="trigger-celery-ui")
        self._thread.start()
        for _ in range(200):
            if self.server.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.05)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (waits up to 5 s for the thread)."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
        self.socket.close()

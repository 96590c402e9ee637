"""Finding the user's :class:`~trigger_celery.TriggerClient`, the consoles, and turning errors
into one readable red line (``--verbose`` adds the traceback)."""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import ClickException

from trigger_celery._errors import TriggerCeleryError
from trigger_celery._settings import DEFAULT_REDIS_URL

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient

DEFAULT_APP = "workers.app:client"
APP_ENV = "TRIGGER_CELERY_APP"
REDIS_ENV = "TRIGGER_CELERY_REDIS_URL"

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


class CLIError(TriggerCeleryError):
    """A command's input is wrong (bad ``--app``, bad JSON payload, unknown status)."""

    retriable = False


class State:
    """Options of the top-level command, read by every subcommand."""

    app: str | None = None
    verbose: bool = False


state = State()


def app_spec(spec: str | None = None) -> str:
    """``--app``, else ``TRIGGER_CELERY_APP``, else ``workers.app:client``."""
    return spec or state.app or os.environ.get(APP_ENV) or DEFAULT_APP


def _cwd_on_path() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def shown_url(url: str) -> str:
    """``url`` without its password (``redis://:secret@host:6379/0`` -> ``redis://***@host...``)."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[-1]}"


def load_client(spec: str | None = None, *, announce: bool = True) -> TriggerClient:
    """Import ``module:attr`` and return the client it names.

    ``attr`` may name a ``TriggerClient`` or its Celery app (``client.celery``); without
    ``:attr``, the module's ``client`` (else its only ``TriggerClient``) is used. The current
    directory is put on ``sys.path`` first.

    The store is ``TRIGGER_CELERY_REDIS_URL``, else the embedded Valkey of a ``dev`` running in
    this folder, else a ``redis_url`` the app passes itself; never the built-in default
    silently. With ``announce``, one line on stderr says which store is used and why
    (``store: redis://127.0.0.1:6379/0 (TRIGGER_CELERY_REDIS_URL)``).

    Raises:
        CLIError: the module cannot be imported, or holds no client there; or no store is
            configured (no variable, no running ``dev``, and the app uses the default URL).
    """
    from celery import Celery

    from trigger_celery._client import TriggerClient

    spec = app_spec(spec)
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise CLIError(f"--app {spec!r}: expected module:attribute, e.g. {DEFAULT_APP}")
    _cwd_on_path()
    source = REDIS_ENV
    if not os.environ.get(REDIS_ENV):
        from trigger_celery.cli._services import dev_dir, running_dev_url

        url = running_dev_url()  # the embedded Valkey of a `dev` running in this folder
        source = "the app's redis_url"
        if url:
            os.environ[REDIS_ENV] = url
            source = f"the dev running in {dev_dir()}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise CLIError(
                f"cannot import {module_name!r} (app {spec!r}, from --app or {APP_ENV}); "
                f"run from the project folder or set {APP_ENV}"
            ) from exc
        raise
    if attr:
        if not hasattr(module, attr):
            raise CLIError(f"module {module_name!r} has no attribute {attr!r} (app {spec!r})")
        obj = getattr(module, attr)
    else:
        obj = getattr(module, "client", None)
        if obj is None:
            found = [v for v in vars(module).values() if isinstance(v, TriggerClient)]
            obj = found[0] if len(found) == 1 else None
    if isinstance(obj, Celery):
        obj = getattr(obj, "trigger_client", obj)
    if not isinstance(obj, TriggerClient):
        raise CLIError(f"app {spec!r} is not a TriggerClient (got {type(obj).__name__})")
    if not os.environ.get(REDIS_ENV) and obj.settings.redis_url == DEFAULT_REDIS_URL:
        from trigger_celery.cli._services import dev_dir

        raise CLIError(
            f"no store configured: {REDIS_ENV} is not set and no `trigger-celery dev` runs in "
            f"{dev_dir()}; set {REDIS_ENV} (e.g. {DEFAULT_REDIS_URL}) or start "
            "`trigger-celery dev` in this folder")
    if announce:
        err_console.print(f"[dim]store: {escape(shown_url(obj.settings.redis_url))} "
                          f"({escape(source)})[/]", soft_wrap=True)
    return obj


def parse_payload(text: str | None, option: str = "--payload") -> Any:
    """A JSON payload given inline, as ``@path`` (a file) or ``@-`` (stdin).

    Raises:
        CLIError: unreadable file or invalid JSON, naming where and what.
    """
    if text is None:
        return {}
    source = "inline"
    if text.startswith("@"):
        path = text[1:]
        source = "stdin" if path == "-" else path
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except OSError as exc:
            raise CLIError(f"{option}: cannot read {path!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CLIError(f"{option} ({source}) is not valid JSON: {exc.msg} at line {exc.lineno} "
                       f"column {exc.colno}") from None


def fail(message: str) -> None:
    """Print one red error line to stderr."""
    err_console.print(f"[bold red]error:[/] [red]{escape(message)}[/]", soft_wrap=True)


def handle_errors(fn: F) -> F:
    """Run a command; any error becomes one red line on stderr and exit code 1 (``--verbose``
    prints the traceback too). Ctrl-C exits with 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the CLI's one place for errors
            if state.verbose:
                err_console.print(escape("".join(traceback.format_exception(exc))),
                                  soft_wrap=True)
            message = " ".join(str(exc).split()) or type(exc).__name__
            if not isinstance(exc, TriggerCeleryError):
                message = f"{type(exc).__name__}: {message}"
            if type(exc).__name__ in ("MovedError", "AskError", "ClusterCrossSlotError"):
                message += (" (the store is a Redis Cluster node: set "
                            "TRIGGER_CELERY_REDIS_CLUSTER=true)")
            fail(message)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]

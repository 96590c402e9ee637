"""``trigger-celery ui``: the read-only web UI for runs (see :mod:`trigger_celery.ui`)."""

from __future__ import annotations

from typing import Annotated

import typer

from trigger_celery.cli._app import console, handle_errors, load_client
from trigger_celery.ui import DEFAULT_HOST, DEFAULT_PORT

#: The environment variable holding the UI's token (read by the CLI only, not a client setting).
TOKEN_ENV = "TRIGGER_CELERY_UI_TOKEN"


@handle_errors
def ui(
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on; anything but loopback needs --token.")
    ] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535,
                                      help="TCP port (0: any free one).")] = DEFAULT_PORT,
    token: Annotated[str | None, typer.Option(
        "--token", envvar=TOKEN_ENV, show_envvar=True, show_default=False,
        help="Secret every page asks for (basic auth password, any user; or a bearer "
             "token). Prefer the variable: an option shows in the process list.")] = None,
) -> None:
    """Serve the runs list and each run's live timeline in a browser (read-only)."""
    from trigger_celery.ui import UIServer

    server = UIServer(load_client(), host=host, port=port, token=token)
    console.print(f"[bold]trigger-celery ui[/] on {server.url}/runs"
                  + (" (token required)" if token else "") + " · Ctrl-C to stop",
                  soft_wrap=True)
    server.run()

"""``dev`` (Redis or an embedded Valkey, a worker and beat in one command), ``worker`` and
``beat`` (Celery's own commands on the client's Celery app, extra arguments passed through)."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import sys
import time
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from trigger_celery.cli._app import (
    APP_ENV,
    CLIError,
    _cwd_on_path,
    app_spec,
    console,
    handle_errors,
    load_client,
    shown_url,
)
from trigger_celery.cli._services import local_stack

#: What ``celery -A`` gets: a module exposing the Celery app of ``TRIGGER_CELERY_APP``.
CELERY_APP = "trigger_celery.cli.celery_app"

#: The worker setting ``dev`` passes on (``metrics_port``).
METRICS_PORT_ENV = "TRIGGER_CELERY_METRICS_PORT"

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}

_COLORS = {"worker": "cyan", "beat": "magenta"}


def _exec(argv: list[str], env: dict[str, str]) -> NoReturn:
    """Replace this process with ``argv`` (tests replace this function)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)


def celery_argv(command: str, extra: list[str]) -> list[str]:
    """``python -m celery -A <our app module> <command> [-l info] <extra>``."""
    argv = [sys.executable, "-m", "celery", "-A", CELERY_APP, command]
    if not any(a in ("-l", "--loglevel") or a.startswith("--loglevel=") for a in extra):
        argv += ["-l", "info"]
    return argv + extra


def _celery_command(ctx: typer.Context, command: str) -> None:
    spec = app_spec()
    load_client(spec)  # a bad --app or no store fails here, in one line, not in Celery's traceback
    env = {**os.environ, APP_ENV: spec}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH")) if p)
    _exec(celery_argv(command, list(ctx.args)), env)


@handle_errors
def worker(ctx: typer.Context) -> None:
    """`celery worker` on the app's Celery app; other options go to Celery (-Q, -c, -n, ...).

    Without -Q it consumes every queue the app declares (runs and each integration's)."""
    _celery_command(ctx, "worker")


@handle_errors
def beat(ctx: typer.Context) -> None:
    """`celery beat` for cron and interval jobs; other options go to Celery (-s FILE, ...).

    Any number of beats may run: each job starts one run per scheduled slot."""
    _celery_command(ctx, "beat")


def _free_port(port: int) -> int:
    """``port`` when 127.0.0.1 has it free, else any free port."""
    for candidate in (port, 0) if port else (0,):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise CLIError("no free TCP port on 127.0.0.1 for the metrics endpoint")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _print_line(name: str, line: str) -> None:
    color = _COLORS.get(name, "white")
    console.print(f"[{color}]{name:>6} |[/] {escape(line)}", soft_wrap=True)


@handle_errors
def dev(
    queues: Annotated[str | None, typer.Option(
        "--queues", "-Q", help="Comma-separated queues (default: every queue the app declares).")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1,
                                             help="Worker processes.")] = 2,
    beat: Annotated[bool, typer.Option("--beat/--no-beat",
                                       help="Also run beat (cron and interval jobs).")] = True,
    ui_port: Annotated[int, typer.Option(
        "--ui-port", min=0, max=65535,
        help="Port of the web UI on 127.0.0.1 (a free one when taken; 0: any).")] = 8765,
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Also serve the web UI.")] = True,
    metrics_port: Annotated[int, typer.Option(
        "--metrics-port", min=0, max=65535,
        help="Port of the worker's Prometheus metrics on 127.0.0.1 (a free one when taken; "
             "0: any).")] = 9808,
    metrics: Annotated[bool, typer.Option("--metrics/--no-metrics",
                                          help="Serve the worker's metrics.")] = True,
) -> None:
    """Run everything locally: Redis, a worker and beat, their output here; Ctrl-C stops all.

    Uses TRIGGER_CELERY_REDIS_URL when set, else starts an embedded Valkey whose data stays in
    TRIGGER_CELERY_DEV_DIR (default .trigger-celery), so runs survive a restart."""
    spec = app_spec()
    module = spec.partition(":")[0]
    _cwd_on_path()
    if not module or importlib.util.find_spec(module.split(".")[0]) is None:
        raise CLIError(f"cannot find module {module!r} (app {spec!r}, from --app or {APP_ENV}); "
                       "run from the project folder or set it")
    # SIGINT explicitly too: a shell starting us in the background may have ignored it.
    old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    env = {APP_ENV: spec}
    if metrics:
        env[METRICS_PORT_ENV] = str(_free_port(metrics_port))
    stack = local_stack(CELERY_APP, queues=queues, beat=beat, concurrency=concurrency,
                        echo=_print_line, env=env)
    web = None
    try:
        with stack:
            try:
                client = _summary(spec, stack)
                if ui:
                    from trigger_celery.ui import UIServer

                    web = UIServer(client, port=ui_port, fallback_port=True).start()
                    console.print(f"  web UI [bold]{web.url}/runs[/]", soft_wrap=True)
                if metrics:
                    console.print(f"  metrics http://127.0.0.1:{env[METRICS_PORT_ENV]}/metrics",
                                  soft_wrap=True)
                while True:
                    dead = stack.dead()
                    if dead is not None:
                        raise CLIError(f"{dead.name} exited with code {dead.proc.returncode}; "
                                       f"stopping (log in {stack.dir})")
                    time.sleep(0.3)
            except KeyboardInterrupt:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: still clean
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                what = "worker, beat and the embedded Valkey" if stack.valkey is not None \
                    else "worker and beat"
                console.print(f"[yellow]stopping {what}…[/]")
            finally:
                if web is not None:
                    web.stop()
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    console.print("[green]stopped[/]")


def _summary(spec: str, stack: Any) -> Any:
    # imported now that TRIGGER_CELERY_REDIS_URL is known; the line below names the store
    client = load_client(spec, announce=False)
    queues = [q.name for q in client.celery.conf.task_queues]
    redis_url = shown_url(stack.redis_url)
    console.print(f"[bold]trigger-celery dev[/] · app {spec} · Redis {redis_url} · "
                  f"queues {', '.join(queues)} · beat {'on' if stack.beat else 'off'}",
                  soft_wrap=True)
    for job in client.jobs.values():
        trig = job.describe().get("trigger", {})
        what = ", ".join(f"{k}={v}" for k, v in trig.items() if v not in (None, "", {}))
        console.print(f"  job [bold]{job.id}[/]@{job.version} ({escape(what)})", soft_wrap=True)
    console.print("[dim]Ctrl-C to stop[/]")
    return client

"""The ``trigger-celery`` command line (typer + rich).

The client is found with ``--app module:attr`` or ``TRIGGER_CELERY_APP`` (default
``workers.app:client``); the current directory is on ``sys.path``. See ``docs/cli.md``.

Public for scripts and examples (``examples/*.py`` use only these): :class:`local_stack` (Redis
or an embedded Valkey plus a worker, as ``dev`` runs them), :func:`print_timeline` (a run's
timeline, as ``runs show`` prints it) and :func:`status_line` (one line of a run's progress).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from trigger_celery.cli import _dev, _enqueue, _ui
from trigger_celery.cli._app import DEFAULT_APP, console, handle_errors, load_client, state
from trigger_celery.cli._runs import runs_app
from trigger_celery.cli._services import local_stack
from trigger_celery.cli._timeline import print_timeline, status_line

__all__ = ["app", "local_stack", "main", "print_timeline", "status_line"]


def _no_type_for_flags() -> None:
    """typer 0.2x shows a type after every option in ``--help``, ``<bool>`` after flags too
    (``--wait -w <bool>``), as if they took a value. A flag (or a counter) shows none."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_flags_untyped", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return shown(self, ctx)

    display_type_rich._flags_untyped = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_no_type_for_flags()

app = typer.Typer(
    name="trigger-celery",
    help="Durable jobs on Celery and Redis: run workers, start runs, inspect them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _options(
    app_: Annotated[str | None, typer.Option(
        "--app", "-A", envvar="TRIGGER_CELERY_APP", show_envvar=True,
        help=f"The client, as module:attr [default: {DEFAULT_APP}].")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Show tracebacks of errors.")] = False,
) -> None:
    state.app = app_
    state.verbose = verbose


@app.command("jobs")
@handle_errors
def jobs() -> None:
    """Jobs this app defines and jobs workers published to Redis."""
    client = load_client()
    known = {j.id: j.describe() for j in client.jobs.values()}
    published = client.store.registered_jobs()
    for job_id in sorted({*known, *published}):
        desc = known.get(job_id) or published[job_id]
        trig = desc.get("trigger", {})
        what = ", ".join(f"{k}={v}" for k, v in trig.items() if v not in (None, "", {}))
        where = "here" if job_id in known else "published by a worker"
        console.print(f"{job_id}@{desc.get('version')} ({what}) · {where}", soft_wrap=True,
                      markup=False)


app.command("dev")(_dev.dev)
app.command("worker", context_settings=_dev.PASS_THROUGH)(_dev.worker)
app.command("beat", context_settings=_dev.PASS_THROUGH)(_dev.beat)
app.command("trigger")(_enqueue.trigger)
app.command("send-event")(_enqueue.send_event)
app.command("ui")(_ui.ui)
app.add_typer(runs_app, name="runs")


def main() -> None:
    """Entry point of the ``trigger-celery`` console script."""
    app(prog_name="trigger-celery")

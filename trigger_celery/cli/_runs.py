"""``runs list|show|cancel|reset-task``: inspect and steer runs stored in Redis."""

from __future__ import annotations

from typing import Annotated

import typer

from trigger_celery._store import FINISHED
from trigger_celery.cli._app import CLIError, console, handle_errors, load_client
from trigger_celery.cli._timeline import print_timeline, runs_table

STATUSES = ("QUEUED", "EXECUTING", "WAITING", "SUCCESS", "FAILURE", "CANCELED")

runs_app = typer.Typer(help="List, show, cancel runs; reset a failed task.",
                       no_args_is_help=True)


@runs_app.command("list")
@handle_errors
def list_runs(
    job: Annotated[str | None, typer.Option("--job", "-j", help="Only this job id.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", "-s", help=f"Only this status: {', '.join(STATUSES)}.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 20,
) -> None:
    """Recent runs, newest first."""
    if status is not None:
        status = status.upper()
        if status not in STATUSES:
            raise CLIError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    runs = load_client().list_runs(job_id=job, status=status, limit=limit)
    if not runs:
        console.print("no runs")
        return
    console.print(runs_table(runs))


@runs_app.command("show")
@handle_errors
def show(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="The run's record as JSON.")] = False,
) -> None:
    """A run's timeline: tasks with properties, attempts, errors, waits; logs; output."""
    run = load_client().get_run(run_id)
    if as_json:
        # ASCII JSON: control characters and lone surrogates stay escapes, inert on a terminal
        console.print_json(data=run.model_dump(mode="json"), ensure_ascii=True)
    else:
        print_timeline(run, console)


@runs_app.command("cancel")
@handle_errors
def cancel(run_id: Annotated[str, typer.Argument(help="The run's id.")]) -> None:
    """Cancel a run that has not finished (a finished run stays as it is)."""
    client = load_client()
    before = client.get_run(run_id).status
    after = client.cancel_run(run_id)
    if before in FINISHED:
        console.print(f"run {run_id} had already finished: {after}")
    else:
        console.print(f"run {run_id}: {after}")


@runs_app.command("reset-task")
@handle_errors
def reset_task(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    key: Annotated[str, typer.Argument(help="The failed task's key.")],
) -> None:
    """Clear a failed task (and the parents its failure failed) so the run runs it again."""
    cleared = load_client().reset_task(run_id, key)
    console.print(f"run {run_id}: cleared {', '.join(cleared)}; the run will run them again")

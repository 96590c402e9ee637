"""``runs list|show|cancel|reset-task``: inspect and steer runs stored in Redis."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from trigger_celery._states import EXECUTING, FAILURE, RUN_READY_STATES, RUN_STATUSES, RUNNING
from trigger_celery.cli._app import CLIError, console, handle_errors, load_client
from trigger_celery.cli._queues import unconsumed_note
from trigger_celery.cli._timeline import _relative, _when, print_timeline, runs_table

STATUSES = RUN_STATUSES

runs_app = typer.Typer(help="List, show, cancel runs; reset a failed task.",
                       no_args_is_help=True)


@runs_app.command("list")
@handle_errors
def list_runs(
    job: Annotated[str | None, typer.Option("--job", "-j", help="Only this job id.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", "-s", help=f"Only this status: {', '.join(STATUSES)}.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 20,
    as_json: Annotated[bool, typer.Option(
        "--json", help="A JSON array of the runs' records (without tasks and logs).")] = False,
) -> None:
    """Recent runs, newest first."""
    if status is not None:
        status = status.upper()
        if status not in STATUSES:
            raise CLIError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    runs = load_client().list_runs(job_id=job, status=status, limit=limit)
    if as_json:
        records = [r.model_dump(mode="json", exclude={"tasks", "logs"}) for r in runs]
        print(json.dumps(records, indent=2, ensure_ascii=False))
        return
    if not runs:
        console.print("no runs")
        return
    console.print(runs_table(runs, console.width))


@runs_app.command("show")
@handle_errors
def show(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="The run's record as JSON.")] = False,
) -> None:
    """A run's timeline: tasks with properties, attempts, errors, waits; logs; output."""
    client = load_client()
    run = client.get_run(run_id)
    if as_json:
        # ASCII JSON, never wrapped: control characters and lone surrogates stay escapes
        print(json.dumps(run.model_dump(mode="json"), indent=2, ensure_ascii=True))
    else:
        note = unconsumed_note(client, run)
        print_timeline(run, console, [note] if note else None)


@runs_app.command("cancel")
@handle_errors
def cancel(run_id: Annotated[str, typer.Argument(help="The run's id.")]) -> None:
    """Cancel a run that has not finished (a finished run stays as it is).

    An execution in progress is not interrupted: the task running now finishes, and the run
    stops at its next task."""
    client = load_client()
    run = client.get_run(run_id)
    before = run.status
    after = client.cancel_run(run_id)
    if before in RUN_READY_STATES:
        console.print(f"run {run_id} had already finished: {after}")
        return
    console.print(f"run {run_id}: {after}")
    if before == EXECUTING:  # an execution is in progress; cancel cannot interrupt a callback
        running = [t for t in run.tasks if t.status == RUNNING]
        now = (f": task {running[-1].key!r} is running now and finishes first"
               if running else "")
        console.print(f"an execution is in progress{now}; the run stops at its next task "
                      "(no task starts after this)", soft_wrap=True, markup=False)


@runs_app.command("reset-task")
@handle_errors
def reset_task(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    key: Annotated[str, typer.Argument(help="The failed task's key.")],
) -> None:
    """Clear a failed task (and the parents its failure failed) so the run runs it again."""
    client = load_client()
    before = client.get_run(run_id).status
    cleared = client.reset_task(run_id, key)
    console.print(reset_message(run_id, before, cleared), soft_wrap=True, markup=False)


def reset_message(run_id: str, before: str, cleared: list[str]) -> str:
    """What ``reset-task`` did, by the run's status before it (``before``): a failed run is
    re-queued and runs the cleared tasks (``cleared``: their keys, the failed task first) again;
    a finished run runs nothing more; a waiting one runs them at its next execution."""
    what = f"task {cleared[0]!r}" + (
        f" and its parent{'s' if len(cleared) > 2 else ''} "
        f"{', '.join(repr(k) for k in cleared[1:])}" if len(cleared) > 1 else "")
    if before == FAILURE:
        return (f"run {run_id}: cleared {what}; the run is QUEUED again and runs from the top: "
                "completed tasks return their stored output, the cleared ones run again")
    if before in RUN_READY_STATES:
        return (f"run {run_id}: cleared {what}; the run had ended {before}, so nothing runs "
                "again (reset-task re-runs failed runs)")
    return f"run {run_id}: cleared {what}; the run runs it again at its next execution"


@runs_app.command("retry-now")
@handle_errors
def retry_now(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    key: Annotated[str, typer.Argument(help="The key of the task waiting on backoff.")],
) -> None:
    """Run the next attempt of a task waiting on backoff now, not at its retry time."""
    from trigger_celery._steer import retry_now as move

    before = move(load_client(), run_id, key)
    console.print(f"run {run_id}: task {key!r} runs its next attempt now (it was due at "
                  f"{_when(before)} UTC, {_relative(before)})", soft_wrap=True, markup=False)

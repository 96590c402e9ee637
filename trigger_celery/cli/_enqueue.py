"""``trigger`` and ``send-event``: start runs, optionally wait for them with a live status."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from trigger_celery._errors import error_suffix
from trigger_celery._states import FAILURE, SUCCESS
from trigger_celery.cli._app import CLIError, console, err_console, handle_errors, load_client
from trigger_celery.cli._app import parse_payload as _parse
from trigger_celery.cli._queues import stuck_queue, unconsumed_note
from trigger_celery.cli._timeline import print_timeline, status_line

if TYPE_CHECKING:
    from trigger_celery._client import TriggerClient
    from trigger_celery._runs import Run

PayloadOpt = Annotated[str | None, typer.Option(
    "--payload", "-p", help="JSON payload inline, @file.json, or @- for stdin (default {}).")]
WaitOpt = Annotated[bool, typer.Option(
    "--wait", "-w", help="Wait for the run to finish, showing its status; print its timeline.")]
TimeoutOpt = Annotated[float | None, typer.Option(
    "--timeout", help="With --wait: give up after this many seconds (exit code 1).")]


#: A run still QUEUED this long (seconds) after ``--wait`` began is checked for a consumer, then
#: again every ``QUEUED_CHECK_EVERY_S`` seconds while it stays queued.
QUEUED_CHECK_AFTER_S = 1.5
QUEUED_CHECK_EVERY_S = 10.0


def wait_for(client: TriggerClient, run_ids: list[str], timeout: float | None) -> list[Run]:
    """Poll the runs until all finished (``timeout``: seconds, ``None`` for ever), showing the
    current one's status on stderr; a run that stays QUEUED, or waits on a dispatched task, while
    no worker consumes the queue it waits on gets one yellow line saying so."""
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    done: dict[str, Run] = {}
    warned: set[str] = set()
    next_check = start + QUEUED_CHECK_AFTER_S
    note: str | None = None
    with err_console.status("waiting…", spinner="dots") as status:
        while True:
            run = None
            for rid in run_ids:
                if rid in done:
                    continue
                run = client.get_run(rid)
                if run.finished:
                    done[rid] = run
                    run = None
                else:
                    break
            if len(done) == len(run_ids):
                return [done[r] for r in run_ids]
            assert run is not None
            if stuck_queue(client, run) is None:
                note = None
            elif time.monotonic() >= next_check:  # still queued: is anyone consuming?
                next_check = time.monotonic() + QUEUED_CHECK_EVERY_S
                note = unconsumed_note(client, run)
                if note and run.id not in warned:
                    warned.add(run.id)
                    err_console.print(f"[yellow]run {run.id}: {escape(note)}[/]",
                                      soft_wrap=True)
            status.update(status_line(run) + (f" · [yellow]{escape(note)}[/]" if note else ""))
            if deadline is not None and time.monotonic() >= deadline:
                why = f": {note}" if note else ""
                raise CLIError(f"run {run.id} not finished after {timeout:g} s "
                               f"(still {run.status}{why})")
            time.sleep(0.25)


def report(runs: list[Run]) -> None:
    """Print each finished run's timeline; a run that did not succeed is an error (exit 1)."""
    for run in runs:
        print_timeline(run, console)
    bad = [r for r in runs if r.status != SUCCESS]
    if bad:
        r = bad[0]
        raise CLIError(f"run {r.id} ended {r.status}{error_suffix(r)}")


@handle_errors
def trigger(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    payload: PayloadOpt = None,
    idempotency_key: Annotated[str | None, typer.Option(
        "--idempotency-key", "-k",
        help="The same key again starts nothing and returns the first run.")] = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Start a run of JOB_ID; prints the run id."""
    data = _parse(payload)
    client = load_client()
    handle = client.trigger(job_id, data, idempotency_key=idempotency_key)
    if not handle.created:
        err_console.print(f"[yellow]idempotency key {idempotency_key!r} already used: "
                          f"existing run[/]")
    console.print(handle.id)
    if wait:
        report(wait_for(client, [handle.id], timeout))


@handle_errors
def send_event(
    name: Annotated[str, typer.Argument(help="Event name, e.g. github.issues.opened.")],
    payload: PayloadOpt = None,
    id: Annotated[str | None, typer.Option(
        "--id", help="Event id; the same id again starts no new runs.")] = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Send an event; prints the id of each run it started (one per matching job)."""
    data = _parse(payload)
    client = load_client()
    handles = client.send_event(name, data, id=id)
    if not handles:
        err_console.print(f"[yellow]no job listens to event {name!r}: no run started[/]")
        return
    for h in handles:
        console.print(h.id + ("" if h.created else "  (existing: event id already seen)"))
    # a payload failing a job's schema gives that job a FAILURE run at once: say so, exit 1
    rejected = [run for run in (h.get() for h in handles if h.created)
                if run.status == FAILURE and run.executions == 0]
    for run in rejected:
        err_console.print(f"[red]error: run {run.id} of job {run.job_id} failed at once: "
                          f"{(run.error or {}).get('message')}[/]")
    if wait:
        report(wait_for(client, [h.id for h in handles], timeout))
    if rejected:
        raise typer.Exit(1)

"""A run's timeline for a terminal: tasks in order with status, properties, attempts with their
errors and durations, waits with their resume time, logs and output.

Stored text is shown inert: every piece goes through :func:`_safe`, which writes control
characters (the ESC of ANSI/OSC sequences, BEL, CR, C1 controls, bidi overrides) and lone
surrogates as visible escapes (``\\x1b``) and escapes rich markup, so nothing a task stored can
move the cursor, retitle the window, plant a hyperlink or hide text."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from trigger_celery._runs import UNREADABLE, Run, Task
from trigger_celery._states import (
    CANCELED,
    COMPLETED,
    ERRORED,
    EXECUTING,
    FAILURE,
    PENDING,
    QUEUED,
    RUNNING,
    SUCCESS,
    TASK_UNREADY_STATES,
    WAITING,
)
from trigger_celery._text import inert
from trigger_celery._time import clock_ms, date_s, ms_text, relative_text

_STYLE = {COMPLETED: "green", SUCCESS: "green", ERRORED: "red", FAILURE: "red",
          WAITING: "yellow", RUNNING: "cyan", EXECUTING: "cyan", PENDING: "dim",
          QUEUED: "dim", CANCELED: "magenta", UNREADABLE: "bold red"}


_when, _date = clock_ms, date_s  # UTC clock time with milliseconds; date and time


_ms, _relative = ms_text, relative_text  # ``12.3 ms`` / ``4.56 s``; ``in 3 s``


def _safe(value: object) -> str:
    """Stored text for rich: control characters made visible, then markup escaped."""
    return escape(inert(str(value)))


def _short(value: object, limit: int = 100) -> str:
    text = inert(json.dumps(value, ensure_ascii=False, default=str))
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return escape(text)


def _styled(status: str) -> str:
    style = _STYLE.get(status.strip(), "")
    return f"[{style}]{_safe(status)}[/]" if style else _safe(status)


def _task_line(t: Task) -> str:
    name = t.display or t.name
    line = f"{_styled(f'{t.status:<9}')} [bold]{_safe(t.key)}[/]"
    if name != t.key:
        line += f" · {_safe(name)}"
    if t.kind == "dispatched" and t.display and t.display != t.name:
        line += f" [dim]({_safe(t.name)})[/]"
    if t.kind != "wait":
        line += f" · attempt{'s' if t.attempts != 1 else ''} {t.attempts}"
    if t.duration_ms is not None:
        line += f" · {_ms(t.duration_ms)}"
    return line


def _wait_detail(t: Task) -> str:
    seconds = t.params.get("seconds") if isinstance(t.params, dict) else None
    due = t.retry_at
    if due is None and seconds is not None and t.created_at is not None:
        due = t.created_at + float(seconds)
    head = f"wait {seconds:g} s" if isinstance(seconds, int | float) else "wait"
    if t.status == COMPLETED and t.completed_at is not None:
        return f"{head} · resumed at {_when(t.completed_at)} UTC"
    if t.status == CANCELED:
        return f"[magenta]{head} · canceled with the run: it will not resume[/]"
    if due is not None:
        return f"[yellow]{head} · resumes at {_when(due)} UTC ({_relative(due)})[/]"
    return head


def _dispatch_detail(t: Task, now: float | None = None) -> str | None:
    """Where a dispatched task's current attempt is: waiting on its queue for a worker (how long,
    how often its message was re-sent) or running on one; ``None`` when no attempt is out."""
    if t.kind != "dispatched" or t.status not in (PENDING, WAITING):
        return None
    now = time.time() if now is None else now
    if t.status == WAITING and t.retry_at and t.retry_at > now:
        return None  # the next attempt is not due yet (shown as a retry)
    if t.started:
        return f"[cyan]attempt {t.attempts + 1} running on a worker[/]"
    since = t.queued_at or t.created_at
    text = f"[yellow]waiting for a worker on queue {_safe(t.queue or '?')}"
    if since is not None:
        text += f" since {_when(since)} UTC ({_relative(since, now)})"
    if t.resends:
        text += f" · message re-sent {t.resends} time{'s' if t.resends != 1 else ''}"
    return text + "[/]"


def _add_task_details(node: Tree, t: Task) -> None:
    if t.properties:
        props = ", ".join(f"{p.get('label')}: {p.get('text')}" for p in t.properties)
        node.add(f"[dim]{_safe(props)}[/]")
    if t.kind == "wait":
        node.add(_wait_detail(t))
    elif t.params not in (None, {}, []):
        node.add(f"[dim]params {_short(t.params)}[/]")
    for e in t.errors:
        took = f" after {_ms(e['duration_ms'])}" if e.get("duration_ms") is not None else ""
        node.add(f"[red]attempt {e.get('attempt')} failed{took}[/] at {_when(e.get('at'))}: "
                 f"{_safe(e.get('type'))}: {_safe(e.get('message'))}")
    if t.kind != "wait" and t.status == COMPLETED:
        took = f" in {_ms(t.duration_ms)}" if t.duration_ms is not None else ""
        node.add(f"[green]attempt {t.attempts} succeeded{took}[/] at {_when(t.completed_at)}"
                 + (f" · output {_short(t.output)}" if t.output is not None else ""))
    if t.status == RUNNING and t.started_at is not None:
        node.add(f"[cyan]attempt {t.attempts} running since {_when(t.started_at)} UTC "
                 f"({_relative(t.started_at)})[/]")
    if t.rate_limit_waits:
        node.add(f"[dim]waited {t.rate_limit_waits} time{'s' if t.rate_limit_waits != 1 else ''}"
                 f" for the {_safe(t.rate_limit or 'rate limit')} (no attempt used)[/]")
    dispatch = _dispatch_detail(t)
    if t.status == WAITING and t.rate_limited_until:
        node.add(f"[yellow]{_rate_limit_wait(t)}[/]")
    elif dispatch is not None:
        node.add(dispatch)
    elif t.kind != "wait" and t.status == WAITING and t.retry_at:
        reason = "deferred by on_error" if t.deferrals else "retry"
        node.add(f"[yellow]{reason}: next attempt at {_when(t.retry_at)} UTC "
                 f"({_relative(t.retry_at)})[/]")
    if t.status in (ERRORED, UNREADABLE) and t.error:
        node.add(f"[red]failed: {_safe(t.error.get('type'))}: "
                 f"{_safe(t.error.get('message'))}[/]")


def _rate_limit_wait(t: Task) -> str:
    until = t.rate_limited_until or 0.0
    return (f"waiting for the {_safe(t.rate_limit or 'rate limit')} until "
            f"{_when(until)} UTC ({_relative(until)})")


def render(run: Run, notes: list[str] | None = None) -> Tree:
    """The run as a rich ``Tree``: header, ``notes`` (plain text, in yellow: e.g. that no worker
    consumes its queue), tasks nested under parents with their attempts, errors and waits, then
    logs, output and error."""
    took = ""
    if run.finished_at and run.created_at:
        took = f" in {run.finished_at - run.created_at:.2f} s"
    root = Tree(f"[bold]run {_safe(run.id)}[/] · job {_safe(f'{run.job_id}@{run.job_version}')} · "
                f"{_styled(run.status)}{took} · executions {run.executions}")
    root.add(f"created {_date(run.created_at)} UTC"
             + (f" · finished {_date(run.finished_at)} UTC" if run.finished_at else ""))
    if run.event_name:
        root.add(f"event {_safe(run.event_name)} (id {_safe(run.event_id)})")
    if run.payload is not None:
        root.add(f"[dim]payload {_short(run.payload, 200)}[/]")
    if run.status == WAITING and run.wake_at:
        root.add(f"[yellow]waiting[/] ({_safe(run.wait_reason)}) until "
                 f"{_when(run.wake_at)} UTC ({_relative(run.wake_at)})")
    if run.status == QUEUED and run.wait_reason == "concurrency":
        key = f"key {_safe(repr(run.concurrency_key))}" if run.concurrency_key else "the job"
        root.add(f"[yellow]waiting for a concurrency slot of {key}[/] "
                 f"(limit {run.concurrency_limit})")
    for note in notes or []:
        root.add(f"[yellow]{escape(note)}[/]")
    for t in run.tasks:
        if t.status == WAITING and t.rate_limited_until:
            root.add(f"[yellow]{_safe(t.key)}: {_rate_limit_wait(t)}[/]")
    tasks = root.add(f"[bold]tasks[/] ({len(run.tasks)})")
    nodes: dict[str | None, Tree] = {None: tasks}
    for t in run.tasks:
        parent = nodes.get(t.parent, tasks)
        node = parent.add(_task_line(t))
        nodes[t.idem] = node
        _add_task_details(node, t)
    if run.replay_warnings:
        warned = root.add(f"[yellow]replay warnings[/] ({len(run.replay_warnings)}): tasks "
                          "replayed with another call than recorded")
        for w in run.replay_warnings:
            rec, now = w.get("recorded") or {}, w.get("now") or {}
            warned.add(f"[yellow]{escape(str(w.get('key')))}[/]: recorded "
                       f"{escape(str(rec.get('name')))} {_short(rec.get('params'))} · now "
                       f"{escape(str(now.get('name')))} {_short(now.get('params'))}")
    if run.logs:
        logs = root.add(f"[bold]logs[/] ({len(run.logs)})")
        for entry in run.logs:
            data = f" {_short(entry.data)}" if entry.data else ""
            style = {"error": "red", "warn": "yellow", "debug": "dim"}.get(entry.level, "")
            level = f"[{style}]{entry.level:<5}[/]" if style else f"{entry.level:<5}"
            logs.add(f"{_when(entry.at)} {level} {_safe(entry.message)}{data}")
        if run.logs_dropped:
            logs.add(f"[dim]{run.logs_dropped} later lines dropped (max_log_entries)[/]")
    if run.status == SUCCESS:
        root.add(f"[green]output[/] {_short(run.output, 300)}")
    if run.error:
        root.add(f"[red]error {_safe(run.error.get('type'))}: "
                 f"{_safe(run.error.get('message'))}[/]")
    return root


def status_line(run: Run) -> str:
    """One line for a progress display: the run's status and what it waits for."""
    text = f"run {run.id} · {_safe(run.job_id)} · {_styled(run.status)}"
    running = [t for t in run.tasks if t.status in TASK_UNREADY_STATES]
    if running:
        t = running[-1]
        text += f" · {t.status.lower()} on {_safe(t.key)}"
    if running and running[-1].status == WAITING and running[-1].rate_limited_until:
        text += f" · {_rate_limit_wait(running[-1])}"
    elif run.status == WAITING and run.wake_at:
        text += f" until {_when(run.wake_at)} UTC ({_relative(run.wake_at)})"
    if run.status == QUEUED and run.wait_reason == "concurrency":
        text += " · waiting for a concurrency slot"
    done = sum(t.status == COMPLETED for t in run.tasks)
    return text + f" · {done}/{len(run.tasks)} tasks done"


def print_timeline(run: Run, console: Console | None = None,
                   notes: list[str] | None = None) -> None:
    """Print :func:`render`'s tree of ``run`` (with ``notes``) on ``console``."""
    (console or Console()).print(render(run, notes))


def _took(run: Run) -> str:
    if run.finished_at is None or run.created_at is None:
        return ""
    return _ms((run.finished_at - run.created_at) * 1000)


def runs_table(runs: list[Run], width: int = 80) -> Table:
    """Runs as a borderless table that fits ``width`` columns (characters).

    Always: the full run id (never cut, so it can be copied), status, job@version (wrapped only
    when longer than its column: 21 characters at 80 columns) and the creation time (UTC,
    ``MM-DD HH:MM``; with seconds from 110 columns on). From 140 columns on: the duration
    (creation to finish), executions and the event name too. ``runs list --json`` has it all.
    """
    wide = width >= 140
    stamp = "%m-%d %H:%M:%S" if width >= 110 else "%m-%d %H:%M"
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    table.add_column("run", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("job", overflow="fold", ratio=1)
    table.add_column("created UTC", no_wrap=True)
    if wide:
        table.add_column("took", no_wrap=True, justify="right")
        table.add_column("execs", no_wrap=True, justify="right")
        table.add_column("event", overflow="fold")
    for r in runs:
        created = (datetime.fromtimestamp(r.created_at, UTC).strftime(stamp)
                   if r.created_at else "-")
        row = [r.id, _styled(r.status), _safe(f"{r.job_id}@{r.job_version}"), created]
        if wide:
            row += [_took(r), str(r.executions), _safe(r.event_name or "")]
        table.add_row(*row)
    return table

"""A run's timeline for a terminal: tasks in order with status, attempts, errors, waits, logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from trigger_celery._runs import Run, Task

_STYLE = {"COMPLETED": "green", "SUCCESS": "green", "ERRORED": "red", "FAILURE": "red",
          "WAITING": "yellow", "RUNNING": "cyan", "EXECUTING": "cyan", "PENDING": "dim",
          "QUEUED": "dim", "CANCELED": "magenta"}


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3]


def _short(value: object, limit: int = 100) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _task_line(t: Task) -> str:
    style = _STYLE.get(t.status, "")
    props = ", ".join(f"{p.get('label')}: {p.get('text')}" for p in t.properties)
    line = f"[{style}]{t.status:<9}[/] [bold]{t.key}[/] · {t.display or t.name}"
    if props:
        line += f" [dim]({props})[/]"
    line += f" · attempts {t.attempts}"
    if t.duration_ms is not None:
        line += f" · {t.duration_ms:.1f} ms"
    if t.kind == "wait":
        line += f" · wait {t.params.get('seconds') if t.params else '?'} s"
    if t.retry_at and t.status == "WAITING":
        line += f" · next at {_when(t.retry_at)} UTC"
    return line


def render(run: Run) -> Tree:
    """The run as a rich ``Tree``: header, tasks nested under parents, attempts, logs, output."""
    style = _STYLE.get(run.status, "")
    took = ""
    if run.finished_at and run.created_at:
        took = f" in {run.finished_at - run.created_at:.2f} s"
    root = Tree(f"[bold]run {run.id}[/] · job {run.job_id}@{run.job_version} · "
                f"[{style}]{run.status}[/]{took} · executions {run.executions}")
    if run.event_name:
        root.add(f"event {run.event_name} (id {run.event_id})")
    if run.status == "WAITING" and run.wake_at:
        root.add(f"[yellow]waiting[/] ({run.wait_reason}) until {_when(run.wake_at)} UTC")
    nodes: dict[str | None, Tree] = {None: root.add("[bold]tasks[/]")}
    for t in run.tasks:
        parent = nodes.get(t.parent, nodes[None])
        node = parent.add(_task_line(t))
        nodes[t.idem] = node
        for e in t.errors:
            node.add(f"[red]attempt {e.get('attempt')}[/] at {_when(e.get('at'))}: "
                     f"{e.get('type')}: {e.get('message')}"
                     + (f" ({e['duration_ms']:.1f} ms)" if e.get("duration_ms") else ""))
        if t.status == "ERRORED" and t.error:
            node.add(f"[red]failed: {t.error.get('type')}: {t.error.get('message')}[/]")
    if run.logs:
        logs = root.add("[bold]logs[/]")
        for entry in run.logs:
            data = f" {_short(entry.data)}" if entry.data else ""
            logs.add(f"{_when(entry.at)} {entry.level:<5} {entry.message}{data}")
        if run.logs_dropped:
            logs.add(f"[dim]{run.logs_dropped} later lines dropped (max_log_entries)[/]")
    if run.status == "SUCCESS":
        root.add(f"[green]output[/] {_short(run.output, 300)}")
    if run.error:
        root.add(f"[red]error[/] {run.error.get('type')}: {run.error.get('message')}")
    return root


def print_timeline(run: Run, console: Console | None = None) -> None:
    (console or Console()).print(render(run))


def runs_table(runs: list[Run]) -> Table:
    table = Table("run", "job", "status", "created (UTC)", "executions")
    for r in runs:
        table.add_row(r.id, f"{r.job_id}@{r.job_version}",
                      f"[{_STYLE.get(r.status, '')}]{r.status}[/]", _when(r.created_at),
                      str(r.executions))
    return table

"""Issue 11, item 10: stored text is inert on a terminal, and one bad record does not hide a run.

A run stores ANSI/OSC escape sequences (clear screen, window title, hyperlink), C1 controls, CR,
backspace, BEL, a bidi override and rich markup in a task key, name, property, output, error, log
line and the run's output or error; ``trigger-celery runs show`` (a real CLI process) prints each
control character as a visible escape. Then records in Redis are broken (a task record that is
not JSON, one of the wrong shape, a log line that is not JSON): ``client.get_run`` and
``runs show`` still show the run, marking those records unreadable.
"""

from __future__ import annotations

import re
import subprocess
import sys

from tests.chaos._harness import STATS, base_env, finish_all, wait_until
from tests.chaos.conftest import cluster_settings, make_client
from tests.support import ROOT

#: What a hostile or careless task could store: each part would act on a terminal.
HOSTILE = ("\x1b]0;pwned title\x07 \x1b[2J\x1b[H cleared "
           "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\ \x9b31m C1-red "
           "\rover\x08written \u202eesrever [bold]markup[/bold] end")
#: The control characters that must never reach the terminal raw.
RAW = ("\x07", "\x08", "\r", "\x9b", "\u202e", "\x1b]", "\x1b[2J", "\x1b[H")
#: rich's own styling (when it believes it writes to a colour terminal).
SGR = re.compile(r"\x1b\[[0-9;]*m")


def _cli(store: str, broker: str, *args: str, color: bool = False) -> str:
    env = base_env(TRIGGER_CELERY_REDIS_URL=store, TRIGGER_CELERY_BROKER_URL=broker,
                   TRIGGER_CELERY_APP="tests.chaos.app:client", COLUMNS="500",
                   PYTHONIOENCODING="utf-8", **cluster_settings(store))
    if color:
        env.update(FORCE_COLOR="1", TTY_COMPATIBLE="1")
    else:
        env.update(NO_COLOR="1", TERM="dumb")
    proc = subprocess.run([sys.executable, "-m", "trigger_celery.cli", *args], cwd=ROOT,
                          env=env, capture_output=True, timeout=60)
    out = proc.stdout.decode("utf-8")
    assert proc.returncode == 0, (proc.returncode, out, proc.stderr.decode(errors="replace"))
    return out


def _assert_inert(out: str) -> None:
    plain = SGR.sub("", out)
    for raw in RAW:
        assert raw not in plain, (raw, plain[:3000])
    assert "\x1b" not in plain, plain[:3000]


def test_stored_text_is_inert_and_a_bad_record_does_not_hide_the_run(clean, effects,
                                                                      workers_for):
    store, broker = clean.url(0), clean.url(1)
    ws = workers_for(store, broker, effects.url)
    ws.start(name="terminal", app="tests.chaos.odd_app")
    client = make_client(store, broker)
    wait_until(lambda: "odd-terminal" in client.store.registered_jobs(), 10, "job registry")
    ok = client.trigger("odd-terminal", {"text": HOSTILE}).id
    failed = client.trigger("odd-terminal", {"text": HOSTILE, "fail": True}).id
    STATS["runs"] += 2
    finish_all(client, [ok, failed], timeout=60)
    assert client.get_run(ok).output == HOSTILE  # stored exactly; only the display escapes
    assert client.get_run(failed).error["message"] == HOSTILE

    checked = 0
    outputs: dict[tuple[str, bool], str] = {}
    for rid, color in ((ok, False), (ok, True), (failed, False)):
        out = outputs[(rid, color)] = _cli(store, broker, "runs", "show", rid, color=color)
        _assert_inert(out)
        plain = SGR.sub("", out)
        assert "\\x1b]0;pwned title\\x07" in plain and "\\x9b31m" in plain, plain[:3000]
        assert "\\x0dover\\x08written" in plain  # CR and backspace
        assert "\\u202eesrever" in plain
        assert "[bold]markup[/bold]" in plain  # rich markup shown as text, not applied
        checked += 1
    for rid in (ok, failed):
        as_json = _cli(store, broker, "runs", "show", rid, "--json")
        assert as_json.isascii() and "\x1b" not in as_json and "\\u001b]0;pwned" in as_json
        checked += 1
    _assert_inert(_cli(store, broker, "runs", "list", color=True))
    checked += 1
    # as the name, property label and text, key, attempt error, task error and log line (JSON
    # values such as outputs and log data show their own \u001b escapes)
    shown = outputs[(ok, False)]
    assert shown.count("\\x1b]0;pwned title") == 7, shown
    assert shown.count("\\u001b]0;pwned title") >= 4, shown

    # one record of each kind broken in Redis: the run still shows, those marked unreadable
    r = clean.client(0)
    _, tasks_key, logs_key, _ = client.store.run_keys(ok)
    r.hset(tasks_key, mapping={"f" * 64: '{"key": "half a record', "e" * 64: "[1, 2]"})
    r.rpush(logs_key, "\x00not json\x1b[2J")
    run = client.get_run(ok)
    assert run.status == "SUCCESS" and run.output == HOSTILE
    bad = [t for t in run.tasks if t.status == "UNREADABLE"]
    assert sorted(t.idem for t in bad) == ["e" * 64, "f" * 64]
    assert all(t.error and t.error["type"] == "UnreadableRecord" for t in bad)
    assert [t.status for t in run.tasks if t.status != "UNREADABLE"] == [
        "COMPLETED", "COMPLETED", "ERRORED"]
    assert run.logs[-1].level == "ERROR" and "log entry is unreadable" in run.logs[-1].message
    out = _cli(store, broker, "runs", "show", ok)
    _assert_inert(out)
    assert out.count("UNREADABLE") == 2 and "task record " + "f" * 64 + " is unreadable" in out
    assert "log entry is unreadable" in out and "\\u0000not json\\u001b[2J" in out
    STATS["terminal_renders"] += checked + 1
    STATS["unreadable_records"] += 3

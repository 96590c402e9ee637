"""docker-compose.yml agrees with the app and the CLI (the compose CLI is not on these machines,
so the file is read with pyyaml and every reference in it is checked against the code)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from typing import Any

import pytest
import yaml

from tests.support import ROOT
from trigger_celery._settings import ENV_PREFIX, Settings

COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = ("worker", "worker-github", "beat", "flower", "webhooks")
_SUBST = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment with ``${VAR:-default}`` resolved to its default and a required
    ``${VAR:?message}`` to ``required-VAR`` (the user must set it)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)

    def resolve(m: re.Match[str]) -> str:
        return f"required-{m.group(1)}" if m.group(2) == "?" else m.group(3) or ""

    return {k: _SUBST.sub(resolve, str(v)) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def _celery(services: dict[str, Any], sub: str) -> dict[str, list[str]]:
    found = {}
    for name, svc in services.items():
        cmd = _command(svc) if "command" in svc else []
        if cmd[:1] == ["celery"] and sub in cmd:
            found[name] = cmd
    return found


def _option(cmd: list[str], *names: str) -> str | None:
    for i, arg in enumerate(cmd):
        if arg in names:
            return cmd[i + 1]
        for n in names:
            if n.startswith("--") and arg.startswith(n + "="):
                return arg.split("=", 1)[1]
    return None


def _app_in_compose_env(env: dict[str, str]) -> dict[str, Any]:
    """Import workers.app with the compose environment (as the containers would) and report."""
    code = (
        "import json, workers.app as w\n"
        "from trigger_celery.cli._app import load_client\n"
        "c = w.client\n"
        "print(json.dumps({'runs_queue': c.settings.runs_queue,"
        " 'queues': sorted(q.name for q in c.celery.conf.task_queues),"
        " 'integration_queues': sorted({i.queue for i in c.integrations.values()}),"
        " 'same_as_cli': load_client('workers.app:client').celery is w.celery,"
        " 'beat_jobs': sorted(c.celery.conf.beat_schedule or {}),"
        " 'redis_url': c.settings.redis_url}))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={**clean, **env, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_redis_keeps_data_with_aof_and_no_eviction(services) -> None:
    redis = services["redis"]
    cmd = _command(redis)
    assert cmd[0] == "redis-server"
    assert _option(cmd, "--appendonly") == "yes"
    assert _option(cmd, "--maxmemory-policy") == "noeviction"
    assert any(v.endswith(":/data") for v in redis["volumes"])  # AOF survives the container
    assert "redis-cli" in redis["healthcheck"]["test"] and "ping" in redis["healthcheck"]["test"]


def test_app_services_share_the_image_and_wait_for_healthy_redis(services) -> None:
    for name in APP_SERVICES:
        svc = services[name]
        assert svc["build"] == "." and (ROOT / "Dockerfile").exists(), name
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert _env(svc)["TRIGGER_CELERY_REDIS_URL"].startswith("redis://redis:6379/"), name


def test_every_trigger_celery_variable_is_a_known_setting(services) -> None:
    known = {name.upper() for name in Settings.model_fields}
    for name, svc in services.items():
        for var in _env(svc):
            if var.startswith(ENV_PREFIX):
                assert var[len(ENV_PREFIX):] in known, f"{name}: {var} is not a setting"


def test_celery_services_use_the_app_the_cli_uses(services) -> None:
    for sub in ("worker", "beat", "flower"):
        assert _celery(services, sub), f"no celery {sub} service"
    for sub in ("worker", "beat", "flower"):
        for name, cmd in _celery(services, sub).items():
            assert cmd[1:4] == ["-A", "workers.app", sub], (name, cmd)
    info = _app_in_compose_env(_env(services["worker"]))
    assert info["same_as_cli"]  # `trigger-celery` (workers.app:client) drives the same app
    assert info["redis_url"] == "redis://redis:6379/0"
    assert info["beat_jobs"], "beat has nothing to schedule"


def test_worker_queues_cover_every_queue_the_app_declares(services) -> None:
    workers = _celery(services, "worker")
    consumed: set[str] = set()
    for name, cmd in workers.items():
        queues = _option(cmd, "-Q", "--queues")
        assert queues, f"{name}: give each worker service its queues (-Q)"
        consumed |= set(queues.split(","))
    info = _app_in_compose_env(_env(services["worker"]))
    assert info["runs_queue"] == "trigger-celery"
    assert "github" in info["integration_queues"]
    assert consumed == set(info["queues"]), (consumed, info["queues"])
    assert _option(workers["worker"], "-Q") == info["runs_queue"]


def test_workers_scale_and_only_they_get_the_github_token(services) -> None:
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    for name in APP_SERVICES:
        has_token = "GITHUB_TOKEN" in _env(services[name])
        assert has_token == name.startswith("worker"), name


def test_beat_keeps_its_schedule_on_a_volume(services) -> None:
    (name, cmd), = _celery(services, "beat").items()
    schedule = _option(cmd, "-s", "--schedule")
    assert schedule and any(schedule.startswith(v.split(":", 1)[1] + "/")
                            for v in services[name]["volumes"])


def test_beat_schedule_volume_is_writable_by_the_image_user(services) -> None:
    """A new named volume takes the owner of the image's directory at its mount point; a
    directory missing from the image becomes root's, which the image's user cannot write."""
    (name, cmd), = _celery(services, "beat").items()
    folder = os.path.dirname(_option(cmd, "-s", "--schedule") or "")
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    user = re.findall(r"^USER (\S+)$", text, re.M)[-1]
    before_user = text[: text.rindex(f"USER {user}")]
    runs = re.findall(r"^RUN (.*)$", before_user, re.M)
    assert any(re.search(rf"mkdir -p (\S+ )*{re.escape(folder)}( |$)", r) for r in runs), runs
    assert any(re.search(rf"chown (-R )?{user} (\S+ )*{re.escape(folder)}( |$)", r)
               for r in runs), runs


def test_flower_listens_on_5555(services) -> None:
    (name, cmd), = _celery(services, "flower").items()
    assert _option(cmd, "--port") == "5555"
    assert any(str(p).endswith("5555:5555") for p in services[name]["ports"])


def test_webhook_app_service_serves_the_example_app(services) -> None:
    svc = services["webhooks"]
    cmd = _command(svc)
    # A production WSGI server (not werkzeug's development server), installed in the image.
    assert cmd[0] == "gunicorn" and cmd[-1] == "examples.webhook_app:app"
    bind = _option(cmd, "--bind", "-b")
    assert bind and bind.startswith("0.0.0.0:")
    env = _env(svc)
    # Deliveries are always verified: compose refuses to start without the secret.
    assert env["GITHUB_WEBHOOK_SECRET"] == "required-GITHUB_WEBHOOK_SECRET"
    assert any(str(p).endswith(f":{bind.split(':')[1]}") for p in svc["ports"])
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert any(d.startswith("gunicorn") for d in extras["deploy"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("--extra deploy") == 2  # both uv sync steps install it
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    checked = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", *cmd[1:]], cwd=ROOT,
        capture_output=True, text=True, env={**clean, **env, "PYTHONPATH": str(ROOT)},
        timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr  # it loads the app
    code = ("import examples.webhook_app as m; assert callable(m.app); "
            "import inspect; print(list(inspect.signature(m.app).parameters))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**clean, **env, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout.replace("'", '"'))) == 2  # WSGI: (environ, start_response)


def test_dockerfile_installs_from_the_lock_file() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert "COPY pyproject.toml uv.lock" in text
    assert text.count("uv sync --frozen") == 2 and "--no-dev" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".trigger-celery" in ignored

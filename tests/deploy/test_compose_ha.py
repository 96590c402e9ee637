"""docker-compose.ha.yml (Redis behind Sentinel, RabbitMQ, workers per queue, beat, Flower)
agrees with the app, the settings and Redis itself. The file is read with pyyaml and every
reference in it is checked against the code; ``docker compose config`` runs too where Docker is
installed (the compose plugin is not on these machines: that test says it skipped)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_compose import _celery, _command, _env, _option
from tests.support import ROOT
from trigger_celery._connection import parse_sentinel_url
from trigger_celery._settings import ENV_PREFIX, Settings

COMPOSE = ROOT / "docker-compose.ha.yml"
REDIS = ("redis-1", "redis-2", "redis-3")
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
WORKERS = {"worker": "trigger-celery", "worker-github": "github", "worker-openai": "openai",
           "worker-typeform": "typeform"}
APP_SERVICES = (*WORKERS, "beat", "flower")
#: Each credential and the only services that get it.
CREDENTIALS = {"GITHUB_TOKEN": {"worker", "worker-github"}, "OPENAI_API_KEY": {"worker-openai"},
               "TYPEFORM_TOKEN": {"worker-typeform"}}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _sentinel_conf(service: dict[str, Any], tmp: Path) -> list[str]:
    """Run the sentinel's start-up script as its container would (``/data`` -> ``tmp``, compose's
    ``$$`` -> ``$``, its environment), stopping before it starts the server; returns the lines
    of the config it wrote."""
    cmd = _command(service)
    assert cmd[:2] == ["sh", "-c"], cmd
    script = cmd[2].replace("$$", "$").replace("/data/", f"{tmp}/")
    assert script.endswith(f"exec redis-server {tmp}/sentinel.conf --sentinel"), script
    script = script.replace("exec redis-server", "exit 0; #")
    env = {**os.environ, **{k: str(v) for k, v in (service.get("environment") or {}).items()}}
    subprocess.run(["sh", "-c", script], check=True, env=env, timeout=30)
    return (tmp / "sentinel.conf").read_text().splitlines()


def test_redis_keeps_data_and_the_replicas_follow_the_first(services) -> None:
    for name in REDIS:
        svc = services[name]
        cmd = _command(svc)
        assert cmd[0] == "redis-server", name
        assert _option(cmd, "--appendonly") == "yes", name
        assert _option(cmd, "--maxmemory-policy") == "noeviction", name
        assert _option(cmd, "--replica-announce-ip") == name  # a name that outlives its IP
        assert any(v.endswith(":/data") for v in svc["volumes"]), name
        assert "redis-cli" in svc["healthcheck"]["test"], name
    assert _option(_command(services["redis-1"]), "--replicaof") is None
    for name in REDIS[1:]:
        cmd = _command(services[name])
        i = cmd.index("--replicaof")
        assert cmd[i + 1:i + 3] == ["redis-1", "6379"], name


def test_three_sentinels_watch_the_master_the_app_names(services, tmp_path) -> None:
    env = _env(services["worker"])
    master = env["TRIGGER_CELERY_SENTINEL_MASTER"]
    for name in SENTINELS:
        svc = services[name]
        folder = tmp_path / name
        folder.mkdir()
        conf = _sentinel_conf(svc, folder)
        assert "port 26379" in conf
        monitor = [line.split() for line in conf if line.startswith("sentinel monitor ")]
        assert monitor == [["sentinel", "monitor", master, "redis-1", "6379", "2"]], conf
        assert f"sentinel announce-ip {name}" in conf
        assert "sentinel resolve-hostnames yes" in conf
        # the config is written once: Sentinel rewrites it as the master changes
        (folder / "sentinel.conf").write_text("kept\n")
        assert _sentinel_conf(svc, folder) == ["kept"]
        assert any(v.endswith(":/data") for v in svc["volumes"]), name
        assert "26379" in svc["healthcheck"]["test"], name
    # quorum 2 of 3: one sentinel lost still allows a failover, one alone never starts one
    hosts = parse_sentinel_url(env["TRIGGER_CELERY_REDIS_URL"]).sentinels
    assert hosts == [(name, 26379) for name in SENTINELS]


def test_app_services_wait_for_sentinels_and_rabbitmq(services) -> None:
    for name in APP_SERVICES:
        svc = services[name]
        assert svc["build"] == "." and (ROOT / "Dockerfile").exists(), name
        deps = svc["depends_on"]
        assert set(deps) == {*SENTINELS, "rabbitmq"}, name
        assert all(d["condition"] == "service_healthy" for d in deps.values()), name
    rabbit = services["rabbitmq"]
    assert "rabbitmq-diagnostics" in rabbit["healthcheck"]["test"]
    assert any(v.endswith(":/var/lib/rabbitmq") for v in rabbit["volumes"])
    env = _env(rabbit)
    assert env["RABBITMQ_DEFAULT_PASS"] == "required-RABBITMQ_PASSWORD"


def test_every_trigger_celery_variable_is_a_known_setting(services) -> None:
    known = {name.upper() for name in Settings.model_fields} | {"APP_MODULES"}
    for name, svc in services.items():
        for var in _env(svc):
            if var.startswith(ENV_PREFIX):
                assert var[len(ENV_PREFIX):] in known, f"{name}: {var} is not a setting"


def _app(env: dict[str, str]) -> dict[str, Any]:
    """Import workers.app with a service's environment, as its container would; report."""
    code = (
        "import json, workers.app as w\n"
        "c = w.client; s = c.settings; conf = c.celery.conf\n"
        "print(json.dumps({'queues': sorted(q.name for q in conf.task_queues),"
        " 'broker': conf.broker_url.split('@')[-1], 'sentinel_master': s.sentinel_master,"
        " 'min_replicas_ack': s.min_replicas_ack, 'store_pool':"
        " type(c.store.redis.connection_pool).__name__,"
        " 'service': getattr(c.store.redis.connection_pool, 'service_name', None),"
        " 'beat_jobs': sorted(conf.beat_schedule or {})}))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={**clean, **env, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.splitlines()[-1]))


def test_the_app_uses_sentinel_for_the_store_and_rabbitmq_for_the_broker(services) -> None:
    for sub in ("worker", "beat", "flower"):
        for name, cmd in _celery(services, sub).items():
            assert cmd[1:4] == ["-A", "workers.app", sub], (name, cmd)
    info = _app(_env(services["worker"]))
    assert info["store_pool"] == "SentinelConnectionPool" and info["service"] == "mymaster"
    assert info["sentinel_master"] == "mymaster" and info["min_replicas_ack"] == 1
    assert info["broker"] == "rabbitmq:5672//"
    assert info["beat_jobs"], "beat has nothing to schedule"


def test_one_worker_service_per_queue_and_every_queue_consumed(services) -> None:
    workers = _celery(services, "worker")
    assert set(workers) == set(WORKERS)
    for name, queue in WORKERS.items():
        assert _option(workers[name], "-Q", "--queues") == queue, name
    info = _app(_env(services["worker"]))
    assert set(WORKERS.values()) == set(info["queues"]), info["queues"]
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_each_credential_reaches_only_the_workers_of_its_queue(services) -> None:
    for name, svc in services.items():
        env = _env(svc)
        for var, allowed in CREDENTIALS.items():
            assert (var in env) == (name in allowed), (name, var)


def test_beat_keeps_its_schedule_and_flower_listens_on_5555(services) -> None:
    (name, cmd), = _celery(services, "beat").items()
    schedule = _option(cmd, "-s", "--schedule")
    assert schedule and any(schedule.startswith(v.split(":", 1)[1] + "/")
                            for v in services[name]["volumes"])
    (name, cmd), = _celery(services, "flower").items()
    assert _option(cmd, "--port") == "5555"
    assert services[name]["ports"] == ["127.0.0.1:5555:5555"]


def test_docker_compose_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True,
                                        timeout=60).returncode != 0:
        pytest.skip("Docker Compose is not installed here: `docker compose config` not run")
    env = {**os.environ, "RABBITMQ_PASSWORD": "x"}
    proc = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr

"""Item 6: the kill test (item 1) and the duplicate and redelivery tests (item 3) with RabbitMQ
as the broker (Redis stays the store). RabbitMQ must answer on 127.0.0.1:5672: if it does not,
these tests fail, loudly; they never skip. A redelivery is forced by closing a worker's broker
connection with ``rabbitmqctl close_connection``."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import psutil
import pytest
from kombu import Connection, Exchange, Queue

from tests.chaos._chaos_run import run_under_kills
from tests.chaos._dup import duplicates_run_once, redelivery_runs_once
from tests.chaos._harness import STATS, Workers
from tests.chaos.conftest import make_client

AMQP_URL = os.environ.get("CHAOS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture(scope="module")
def amqp() -> str:
    try:
        with Connection(AMQP_URL, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=2)
    except Exception as exc:  # noqa: BLE001 - any failure is the same failure here
        pytest.fail(f"RabbitMQ does not answer at {AMQP_URL}: {exc!r} (the chaos suite needs it; "
                    "it is not skipped)", pytrace=False)
    return AMQP_URL


@pytest.fixture()
def queues(amqp: str) -> Iterator[dict[str, str]]:
    """Queue names of this test alone (RabbitMQ is shared); deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    names = {"runs": f"chaos-runs-{tag}", "sidefx": f"chaos-sidefx-{tag}"}
    yield names
    with Connection(amqp) as conn:
        ch = conn.channel()
        for name in (names["runs"], names["sidefx"], names["sidefx"] + "-oracle"):
            Queue(name, Exchange(name), routing_key=name, channel=ch).delete()
            Exchange(name, channel=ch).delete()


def _setup(clean, effects, workers_for, queues, amqp, **env: str):
    store = clean.url(0)
    settings = {k.removeprefix("TRIGGER_CELERY_").lower(): v for k, v in env.items()
                if k.startswith("TRIGGER_CELERY_")}
    client = make_client(store, amqp, runs_queue=queues["runs"], sidefx_queue=queues["sidefx"],
                         **settings)
    ws = workers_for(store, amqp, effects.url, TRIGGER_CELERY_RUNS_QUEUE=queues["runs"],
                     CHAOS_SIDEFX_QUEUE=queues["sidefx"], **env)
    return client, ws


def _rabbitmqctl(*args: str) -> str:
    exe = shutil.which("rabbitmqctl")
    assert exe, "rabbitmqctl is needed to close a worker's connection"
    return subprocess.run([exe, *args], check=True, capture_output=True, text=True,
                          timeout=60).stdout


def close_connections(ws: Workers, victims: list) -> int:
    """Close every AMQP connection of the given workers (found by their local ports)."""
    ports = set()
    for w in victims:
        try:
            procs = [psutil.Process(w.proc.pid), *psutil.Process(w.proc.pid).children(True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            try:
                conns = p.net_connections(kind="tcp")
            except psutil.Error:
                continue
            ports |= {c.laddr.port for c in conns if c.raddr and c.raddr.port == 5672}
    closed = 0
    out = _rabbitmqctl("list_connections", "pid", "peer_port", "-q", "--no-table-headers")
    for line in out.splitlines():
        pid, _, port = line.rpartition("\t")
        if port.strip().isdigit() and int(port) in ports:
            _rabbitmqctl("close_connection", pid.strip(), "chaos test")
            closed += 1
    STATS["connections_closed"] += closed
    return closed


def test_rabbitmq_sigkill_and_closed_connections_lose_no_run(clean, effects, workers_for,
                                                             queues, amqp):
    client, ws = _setup(clean, effects, workers_for, queues, amqp)
    seed = int(os.environ.get("CHAOS_SEED", "0")) or int.from_bytes(os.urandom(2), "big")
    print(f"chaos seed {seed}")

    def disrupt(rng: random.Random) -> int:
        return 1 if close_connections(ws, [rng.choice(ws.alive())]) else 0

    out = run_under_kills(client, ws, effects, runs=200, workers=3, max_kills=8, delay=0.1,
                          seed=seed, disrupt=disrupt)
    print(out)
    # the chaos happened: SIGKILLs and closed connections both interrupt tasks in flight
    assert out["kills"] >= 2 and out["kills"] + out["disrupted"] >= 4, out


def test_rabbitmq_messages_published_twice_race_to_one_execution(clean, effects, workers_for,
                                                                 queues, amqp):
    client, ws = _setup(clean, effects, workers_for, queues, amqp)
    duplicates_run_once(client, ws, effects)


def test_rabbitmq_redelivery_after_a_closed_connection(clean, effects, workers_for, queues,
                                                       amqp):
    client, ws = _setup(clean, effects, workers_for, queues, amqp)

    def force() -> None:
        assert close_connections(ws, ws.alive()) >= 2

    received = redelivery_runs_once(client, ws, effects, force=force, delay=6.0)
    assert max(received.values()) >= 2, received  # the broker did redeliver

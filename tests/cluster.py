"""A Redis Cluster of three masters on loopback for the tests (``TESTS_REDIS_CLUSTER=1``).

Each node is a ``redis-server --cluster-enabled yes`` with its own directory (no persistence);
``redis-cli --cluster create`` assigns the 16384 slots, and the cluster is ready once every node
reports ``cluster_state:ok``. The ports come from ``TESTS_CLUSTER_PORTS`` (``7000,7001,7002``)
or are picked free (each node's bus port, its port + 10000, must be free too).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 50000 and port not in ports and _free(port + 10000):
            ports.append(port)
    return ports


class RedisCluster:
    """Three masters, no replicas. ``url`` is the seed URL (the first node); ``stop()`` ends
    the servers and removes their directories."""

    def __init__(self, ports: list[int] | None = None) -> None:
        env_ports = os.environ.get("TESTS_CLUSTER_PORTS")
        self.ports = ports or ([int(p) for p in env_ports.split(",")] if env_ports
                               else _pick_ports(3))
        self.dir = Path(tempfile.mkdtemp(prefix="tc-cluster-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed")
        for port in self.ports:
            node = self.dir / str(port)
            node.mkdir()
            self.procs.append(subprocess.Popen(
                [exe, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
                 "--save", "", "--appendonly", "no", "--dir", str(node)],
                stdout=subprocess.DEVNULL))
        for port in self.ports:
            self._wait(lambda p=port: redis.Redis(port=p).ping(), f"node {port} to answer")
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        for port in self.ports:
            self._wait(lambda p=port: b"cluster_state:ok" in redis.Redis(port=p).execute_command(
                "CLUSTER", "INFO"), f"node {port} to report cluster_state:ok")
        self.url = f"redis://127.0.0.1:{self.ports[0]}"

    @staticmethod
    def _wait(check: object, what: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if check():  # type: ignore[operator]
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def side_client(url: str, cluster: bool) -> redis.Redis:
    """A client of the store at ``url`` for the test apps' side records: a cluster client when
    ``cluster`` (the store's ``redis_cluster``), so each key reaches its slot's node."""
    if cluster:
        from redis.cluster import RedisCluster as Client

        node: object = Client.from_url(url, decode_responses=True)
        return node  # type: ignore[return-value]
    return redis.Redis.from_url(url, decode_responses=True)

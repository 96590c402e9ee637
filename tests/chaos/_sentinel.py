"""A Redis Sentinel deployment of our own on loopback: one master and two replicas
(``redis-server`` with AOF and ``noeviction``, replicas by ``--replicaof``) watched by three
sentinels (``redis-server --sentinel``, quorum 2, a master is down after 1 s)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.chaos._harness import RedisServer, end_process, free_port

MASTER_NAME = "chaosmaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


class SentinelProcess:
    """One ``redis-server --sentinel`` with its own (writable) config file."""

    def __init__(self, master_port: int, *, quorum: int = 2):
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-sentinel-"))
        self.log = open(self.dir / "sentinel.log", "ab")  # noqa: SIM115 - closed in stop()
        for _ in range(3):  # a free port may be taken by another suite before we bind it
            if self._start(master_port, quorum):
                return
        raise AssertionError((self.dir / "sentinel.log").read_text()[-2000:])

    def _start(self, master_port: int, quorum: int) -> bool:
        """Start on a free port; True once this very process answers there."""
        self.port = free_port()
        conf = self.dir / "sentinel.conf"
        conf.write_text("\n".join([
            f"port {self.port}", "bind 127.0.0.1", f"dir {self.dir}",
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {quorum}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER_NAME} 2", "",
        ]))
        exe = shutil.which("redis-server")
        assert exe, "redis-server is needed by the chaos suite"
        self.proc = subprocess.Popen([exe, str(conf), "--sentinel"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while self.proc.poll() is None:
            try:
                if int(self.client().info("server")["process_id"]) == self.proc.pid:
                    return True
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, "redis-sentinel did not answer"
            time.sleep(0.05)
        return False

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True,
                           socket_timeout=2)

    def master_port(self) -> int:
        """The port of the master this sentinel currently names."""
        _, port = self.client().sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            end_process(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelCluster:
    """Three ``redis-server`` (a master, two replicas) and three sentinels, all on loopback."""

    def __init__(self) -> None:
        self.master = RedisServer()
        self.replicas = [
            RedisServer(extra=["--replicaof", "127.0.0.1", str(self.master.port)])
            for _ in range(2)
        ]
        self.servers = [self.master, *self.replicas]
        self.wait_replicas(self.master, 2)
        self.sentinels = [SentinelProcess(self.master.port) for _ in range(3)]
        self.wait_sentinels_agree(self.master.port, replicas=2)

    def url(self, db: int) -> str:
        """Celery's Sentinel URL form, every sentinel listed."""
        return ";".join(f"sentinel://127.0.0.1:{s.port}/{db}" for s in self.sentinels)

    @staticmethod
    def wait_replicas(server: RedisServer, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            info = server.client().info("replication")
            online = [v for k, v in info.items()
                      if k.startswith("slave") and isinstance(v, dict)
                      and v.get("state") == "online"]
            if info.get("role") == "master" and len(online) >= n:
                return
            assert time.monotonic() < deadline, f"replicas not online: {info}"
            time.sleep(0.1)

    def wait_sentinels_agree(self, port: int, *, replicas: int, timeout: float = 60) -> None:
        """Every sentinel names the master on ``port`` and knows its replicas."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ok = all(s.master_port() == port and len(
                    s.client().sentinel_slaves(MASTER_NAME)) >= replicas
                    for s in self.sentinels)
            except redis.RedisError:
                ok = False
            if ok:
                return
            assert time.monotonic() < deadline, "the sentinels do not agree on the master"
            time.sleep(0.1)

    def kill_master(self) -> RedisServer:
        """SIGKILL the current master; returns the server that was killed."""
        port = self.sentinels[0].master_port()
        (victim,) = [s for s in self.servers if s.port == port]
        assert victim.proc is not None
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(20)
        victim.log.close()
        return victim

    def wait_failover(self, old_port: int, timeout: float = 60) -> RedisServer:
        """Wait until every sentinel names a new master and that server answers as master."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ports = {s.master_port() for s in self.sentinels}
            except redis.RedisError:
                ports = set()
            if len(ports) == 1 and old_port not in ports:
                (new,) = [s for s in self.servers if s.port in ports]
                if new.client().info("replication").get("role") == "master":
                    return new
            assert time.monotonic() < deadline, "no failover"
            time.sleep(0.1)

    def stop(self) -> None:
        for s in self.sentinels:
            s.stop()
        for r in self.servers:
            r.stop()

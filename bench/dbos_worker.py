"""A DBOS worker process for the peer comparison (``python -m bench.dbos_worker URL QUEUE POLL``).

It launches DBOS on the system database at ``URL``, listens only to ``QUEUE`` (registered with
``polling_interval_sec=POLL``) and executes the workflow ``bench_wf(n, token)``: ``n`` steps,
each calling :func:`bench.config.work` (the callback both other sides run), then one ``RPUSH`` of
``token`` (the workflow id) to ``bench:done``, exactly as the trigger-celery job ends. It sets
``bench:ready:<BENCH_WORKER_NAME>`` once it listens, and runs until SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from dbos import DBOS, DBOSConfig

from bench import config


@DBOS.step(name="bench_step")
def bench_step() -> dict[str, int]:
    return config.work()


@DBOS.workflow(name="bench_wf")
def bench_wf(n: int, token: str) -> Any:
    out = None
    for _ in range(n):
        out = bench_step()
    config.done(token)
    return out


def main(argv: list[str]) -> int:
    url, queue, poll = argv[0], argv[1], float(argv[2])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    cfg: DBOSConfig = {"name": "bench-dbos", "system_database_url": url, "log_level": "WARNING"}
    DBOS(config=cfg)
    DBOS.listen_queues([queue])
    DBOS.launch()
    DBOS.register_queue(queue, polling_interval_sec=poll, on_conflict="always_update")
    config.mark_ready("dbos")
    stop.wait()
    DBOS.destroy(workflow_completion_timeout_sec=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

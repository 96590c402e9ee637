"""Benchmarks of trigger-celery against raw Celery on a real Redis and real worker processes.

Run with ``uv run --frozen --group bench python -m bench``; see ``bench/README.md``.

Modules: ``config`` (databases, URLs, the shared callback), ``integration`` (a one-operation
integration making an HTTP GET), ``app`` (what the worker processes import: the trigger-celery
client with the bench jobs, and a raw Celery app with the hand-written baselines), ``infra``
(HTTP server, worker processes, Redis traffic, RSS sampling), ``micro`` (in-process costs),
``scenarios`` (throughput, latency and scale through workers), ``report`` (table, JSON, plot);
``load`` and ``load_app``: the many-workers load test (``python -m bench.load``).
"""

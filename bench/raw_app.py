"""The raw Celery baselines, written by hand (``celery -A bench.raw_app:raw worker``).

A plain ``Celery`` app with :func:`~trigger_celery._celery.make_celery`'s settings (same broker,
acks late, prefetch 1, JSON, task events) and nothing else of trigger-celery: no engine, no
signal handlers, none of the engine's kombu changes (``harden_kombu_redis``,
``reuse_kombu_redis_client``) in its worker processes. It is Celery as a user gets it with
those settings. Its tasks:

- ``raw.work``: the callback (:func:`bench.config.work`), a raw task;
- ``raw.fetch | raw.cont``: the chain of the HTTP call, then a continuation;
- ``raw.hop``: a task that only sends ``raw.work`` (one Celery hop more than a raw task);
- ``raw.step``: ``n`` HTTP calls one after another, each task sending the next.

Each ends its unit of work with :func:`bench.config.done`, as the trigger-celery side does.
"""

from __future__ import annotations

from typing import Any

import requests
from celery import Celery
from celery.signals import worker_ready

from bench import config
from bench.integration import fetch
from trigger_celery._celery import celery_config
from trigger_celery._settings import load_settings

settings = load_settings(redis_url=config.STORE_URL, broker_url=config.BROKER_URL,
                         runs_queue="bench-raw")
raw = Celery("bench-raw", broker=settings.effective_broker_url, set_as_current=False)
raw.conf.update(celery_config(settings))
_session = requests.Session()


@raw.task(name="raw.work", shared=False)
def raw_work(token: str) -> Any:
    out = config.work()
    config.done(token)
    return out


@raw.task(name="raw.fetch", shared=False)
def raw_fetch(url: str) -> Any:
    return fetch(_session, url)


@raw.task(name="raw.cont", shared=False)
def raw_cont(result: Any, token: str) -> None:
    config.done(token)


@raw.task(name="raw.hop", shared=False)
def raw_hop(token: str) -> None:
    """One Celery hop: this task only sends ``raw.work``, which then runs as a raw task does."""
    raw_work.apply_async(args=[token])


@raw.task(name="raw.step", shared=False)
def raw_step(url: str, i: int, n: int, token: str) -> None:
    """A hand-written continuation of ``n`` HTTP calls: each task makes call ``i`` and then sends
    the next task itself (linear, unlike a Celery chain of ``n`` tasks)."""
    fetch(_session, url)
    if i + 1 < n:
        raw_step.apply_async(args=[url, i + 1, n, token])
    else:
        config.done(token)


@worker_ready.connect
def _ready(**_: Any) -> None:
    config.mark_ready()

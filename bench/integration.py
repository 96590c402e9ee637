"""A tiny integration for the benchmark: ``io.bench.http.get(key, url=...)``, one HTTP GET with
``requests`` (the same call the raw Celery baseline makes by hand)."""

from __future__ import annotations

from typing import Any

import requests
from pydantic import BaseModel

from trigger_celery import TaskInfo
from trigger_celery.integration import Integration, Namespace, operation


class GetParams(BaseModel):
    url: str


def fetch(session: requests.Session, url: str) -> Any:
    """The HTTP call both sides make: GET ``url`` and return its JSON body."""
    resp = session.get(url, timeout=10)
    resp.raise_for_status()
    return resp.json()


class Http(Namespace):
    name = "http"

    @operation(params=GetParams, display="GET {url}")
    def get(client: requests.Session, params: GetParams, task: TaskInfo) -> Any:
        return fetch(client, params.url)


class BenchHttp(Integration):
    """Task names: ``bench.http.get`` on the ``bench`` queue."""

    id = "bench"
    icon = "gauge"
    namespaces = (Http,)
    credential_env = "BENCH_HTTP_TOKEN"

    def create_client(self, credential: str) -> requests.Session:
        return requests.Session()

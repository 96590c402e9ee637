"""Jobs using ``io.parallel`` with GitHub's ``issues.add_labels``, run by real workers
(``celery -A tests.parallel_app worker``) against a local server (``TESTS_GITHUB_BASE_URL``;
``tests/labels_server.py``). ``build(**settings)`` makes the same client for another store."""

from __future__ import annotations

import os
import time
from typing import Any

from trigger_celery import TriggerClient, invoke_trigger
from trigger_celery_github import GitHub

REPO = {"owner": "octo", "repo": "hello"}


def build(**settings: Any) -> TriggerClient:
    client = TriggerClient("tests-parallel", runs_queue="tests-parallel", **settings)
    github = GitHub(base_url=os.environ.get("TESTS_GITHUB_BASE_URL", "http://127.0.0.1:9"),
                    queue="tests-parallel-github", rate_limits=())

    @client.define_job(id="labels", version="1.0.0", trigger=invoke_trigger(),
                       integrations={"github": github})
    def labels(payload: dict[str, Any], io: Any, ctx: Any) -> list[Any]:
        """One ``add_labels`` per label, all in parallel, each under the same key "label"."""
        def add(label: str, index: int) -> dict[str, Any]:
            got = io.github.issues.add_labels("label", **REPO, issue_number=payload["issue"],
                                              labels=[label])
            return {"index": index, "names": [x["name"] for x in got]}

        return io.parallel("labels", payload["labels"], add)  # type: ignore[no-any-return]

    @client.define_job(id="two-step", version="1.0.0", trigger=invoke_trigger(),
                       integrations={"github": github})
    def two_step(payload: dict[str, Any], io: Any, ctx: Any) -> list[Any]:
        """Each item: an inline task, a call, a wait, then a call that uses the first's output."""
        def item(label: str) -> list[Any]:
            tag = io.run_task("tag", lambda: f"{label}-tag")
            first = io.github.issues.add_labels("first", **REPO, issue_number=1, labels=[tag])
            io.wait("pause", seconds=payload.get("wait_s", 0.2))
            second = io.github.issues.add_labels(
                "second", **REPO, issue_number=1, labels=[first[0]["name"] + "-2"])
            return [first[0]["name"], second[0]["name"]]

        return io.parallel("items", payload["labels"], item)  # type: ignore[no-any-return]

    @client.define_job(id="logged", version="1.0.0", trigger=invoke_trigger(),
                       integrations={"github": github})
    def logged(payload: dict[str, Any], io: Any, ctx: Any) -> list[Any]:
        """Log lines inside items, around a call, and after the batch around a wait."""
        def add(label: str) -> str:
            io.logger.info("before", label=label)
            io.run_task("tag", lambda: label)
            got = io.github.issues.add_labels("label", **REPO, issue_number=1, labels=[label])
            io.logger.info("after", label=label)
            return str(got[0]["name"])

        out = io.parallel("labels", payload["labels"], add)
        io.logger.info("batch done")
        io.wait("pause", seconds=0.2)
        io.logger.info("end")
        return out  # type: ignore[no-any-return]

    @client.define_job(id="nested-logged", version="1.0.0", trigger=invoke_trigger())
    def nested_logged(payload: dict[str, Any], io: Any, ctx: Any) -> int:
        """A task with subtasks, then a wait, then a log line (outside any io.parallel)."""
        total = io.run_task("outer", lambda: io.run_task("inner-1", lambda: 1)
                            + io.run_task("inner-2", lambda: 2))
        io.wait("pause", seconds=0.1)
        io.logger.info("after the wait")
        return total  # type: ignore[no-any-return]

    @client.define_job(id="nested", version="1.0.0", trigger=invoke_trigger(),
                       integrations={"github": github})
    def nested(payload: dict[str, Any], io: Any, ctx: Any) -> list[Any]:
        """An io.parallel inside each item of another."""
        def add(label: str) -> str:
            got = io.github.issues.add_labels("label", **REPO, issue_number=1, labels=[label])
            return str(got[0]["name"])

        return io.parallel(  # type: ignore[no-any-return]
            "outer", payload["groups"], lambda group: io.parallel("inner", group, add))

    @client.define_job(id="unstable", version="1.0.0", trigger=invoke_trigger())
    def unstable(payload: dict[str, Any], io: Any, ctx: Any) -> list[Any]:
        """Waits inside items whose keys change between executions (a bug)."""
        return io.parallel(  # type: ignore[no-any-return]
            "waits", ["a", "b"],
            lambda item: io.wait(f"w-{item}-{time.time_ns()}", seconds=0.05))

    @client.define_job(id="drift", version="1.0.0", trigger=invoke_trigger(),
                       integrations={"github": github}, strict_replay=True)
    def drift(payload: dict[str, Any], io: Any, ctx: Any) -> list[Any]:
        """A call inside an item whose params change between executions (a bug)."""
        def add(label: str) -> Any:
            return io.github.issues.add_labels("label", **REPO, issue_number=1,
                                               labels=[f"{label}{ctx.executions}"])

        return io.parallel("labels", payload["labels"], add)  # type: ignore[no-any-return]

    return client


client = build()
celery = client.celery

"""``io.parallel``'s key namespacing and argument checks, with no Redis: each item's tasks are
hashed under ``"<parallel idem>#<index>"``, so items may reuse keys without colliding with each
other, with the parallel task's own children or with tasks outside it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from trigger_celery import ValidationError
from trigger_celery._io import IO, call_with
from trigger_celery._keys import idempotency_key
from trigger_celery._parallel import item_scope

RUN = "run_0123"


def test_the_same_key_in_two_items_names_two_tasks() -> None:
    parent = idempotency_key(RUN, None, "labels")
    first = idempotency_key(RUN, item_scope(parent, 0), "x")
    second = idempotency_key(RUN, item_scope(parent, 1), "x")
    assert first != second
    # neither is the parallel task's direct child "x", nor a top-level task "x"
    assert idempotency_key(RUN, parent, "x") not in {first, second}
    assert idempotency_key(RUN, None, "x") not in {first, second}
    # stable: the same on every execution
    assert first == idempotency_key(RUN, item_scope(parent, 0), "x")


def test_an_item_scope_is_never_a_task_id() -> None:
    parent = idempotency_key(RUN, None, "p")
    scopes = {item_scope(parent, i) for i in range(1000)}
    assert len(scopes) == 1000
    assert all(len(s) > 64 and s.startswith(parent + "#") for s in scopes)
    # item 1's "1x" and item 11's "x" cannot meet through concatenation
    assert idempotency_key(RUN, item_scope(parent, 1), "1x") != \
        idempotency_key(RUN, item_scope(parent, 11), "x")


class Engine:
    """Runs every item at once in process, as a runtime would with all calls completed."""

    run_id = "run_fake"
    integrations: dict[str, Any] = {}

    def parallel(self, key: str, items: Sequence[Any], callback: Callable[..., Any], *,
                 name: str | None = None, properties: Any = None) -> list[Any]:
        return [call_with(callback, item, i) for i, item in enumerate(items)]


def test_io_parallel_passes_item_and_index_and_checks_its_arguments() -> None:
    io = IO(Engine())  # type: ignore[arg-type]
    assert io.parallel("p", ["a", "b"], lambda item, i: f"{item}{i}") == ["a0", "b1"]
    assert io.parallel("p", ("a",), lambda item: item * 2) == ["aa"]
    with pytest.raises(ValidationError, match=r"io.parallel\('p'\): items must be a list"):
        io.parallel("p", "abc", lambda item: item)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="callback must be callable"):
        io.parallel("p", [1], None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="io.parallel: key must be a non-empty string"):
        io.parallel(123, [1], lambda item: item)  # type: ignore[arg-type]


def test_io_parallel_refuses_an_async_callback_and_bad_display_options() -> None:
    io = IO(Engine())  # type: ignore[arg-type]

    async def cb(item: Any, index: int) -> Any:
        return item

    with pytest.raises(ValidationError, match=r"io.parallel\('p'\): callback must be a plain "
                                              "function, not async"):
        io.parallel("p", [1], cb)
    with pytest.raises(ValidationError, match=r"io.parallel\('p'\): name must be a non-empty"):
        io.parallel("p", [1], lambda item: item, name=5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"io.parallel\('p'\): properties must be a list"):
        io.parallel("p", [1], lambda item: item, properties="nope")  # type: ignore[arg-type]


def test_io_run_task_checks_its_display_options_where_it_is_called() -> None:
    class Never:
        run_id = "run_never"
        integrations: dict[str, Any] = {}

        def run_inline(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a bad option must not reach the engine")

    io = IO(Never())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"io.run_task\('t'\): name must be a non-empty"):
        io.run_task("t", lambda: 1, name=5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"io.run_task\('t'\): icon must be a non-empty"):
        io.run_task("t", lambda: 1, icon=["x"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"io.run_task\('t'\): properties must be JSON"):
        io.run_task("t", lambda: 1, properties=[{"label": "a", "text": object()}])
    with pytest.raises(ValidationError, match=r"properties must be a list of objects"):
        io.run_task("t", lambda: 1, properties=["a"])  # type: ignore[list-item]

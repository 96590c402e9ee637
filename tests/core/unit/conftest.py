"""Unit tests of the pure parts: no Redis, no workers, each in milliseconds.

``tests.support`` prepares a Redis for every session (an autouse fixture); this folder
overrides it with nothing, so ``pytest tests/core/unit`` runs with no server at all.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _test_env() -> Iterator[None]:
    yield

"""Which store errors pass (retried in place by an execution) and which do not (pure)."""

from __future__ import annotations

import pytest
import redis

from trigger_celery._store import is_transient


@pytest.mark.parametrize("exc", [
    redis.ConnectionError("refused"),
    redis.TimeoutError("timed out"),
    redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"),
    redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
    redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
    redis.ResponseError("MASTERDOWN Link with MASTER is down"),
    redis.ResponseError("TRYAGAIN Multiple keys request during rehashing of slot"),
    redis.ResponseError("NOREPLICAS Not enough good replicas to write."),
])
def test_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    redis.exceptions.NoScriptError("NOSCRIPT No matching script"),
    redis.AuthenticationError("invalid password"),
    ValueError("not a store error"),
])
def test_not_transient(exc: Exception) -> None:
    assert not is_transient(exc)

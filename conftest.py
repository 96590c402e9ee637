"""The repository's test fixtures (a real Redis, databases per test, real ``celery worker``
processes) live in :mod:`tests.support`, shared by ``tests/`` and each integration's ``tests/``."""

pytest_plugins = ["tests.support"]

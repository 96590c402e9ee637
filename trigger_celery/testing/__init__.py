"""Test helpers for users of trigger-celery.

``ReplayServer`` serves recorded responses (PyGithub's replay files or a small JSON format) on
127.0.0.1 so an integration's real SDK client can be tested without network or mocks (see
:mod:`trigger_celery.testing.replay`); ``WorkerProcess`` runs a real ``celery worker``; the pytest
plugin (:mod:`trigger_celery.testing.plugin`, loaded automatically) gives the fixtures
``trigger_redis_url``, ``trigger_replay_server``, ``trigger_worker`` and ``trigger_clock``;
``TestClock`` skips time for real workers (:mod:`trigger_celery.testing.clock`).
"""

from trigger_celery.testing.clock import TestClock
from trigger_celery.testing.replay import Exchange, RecordedRequest, ReplayServer, load_exchanges
from trigger_celery.testing.worker import WorkerProcess

__all__ = ["Exchange", "RecordedRequest", "ReplayServer", "TestClock", "WorkerProcess",
           "load_exchanges"]

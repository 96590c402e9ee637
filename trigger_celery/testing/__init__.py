"""Test helpers for users of trigger-celery: a local replay server for recorded API exchanges.

``ReplayServer`` serves recorded responses (PyGithub's replay files or a small JSON format) on
127.0.0.1 so an integration's real SDK client can be tested without network or mocks; see
:mod:`trigger_celery.testing.replay`.
"""

from trigger_celery.testing.replay import Exchange, RecordedRequest, ReplayServer, load_exchanges

__all__ = ["Exchange", "RecordedRequest", "ReplayServer", "load_exchanges"]

"""One log line when a repeating background job (the wake-up poller) loses Redis or the broker,
one when it has them back, instead of a traceback every round."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from kombu.exceptions import OperationalError


def _what(exc: BaseException) -> tuple[str, bool]:
    """(what went away, whether it is an outage rather than a bug)."""
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return "the store (Redis)", True
    if isinstance(exc, OperationalError | ConnectionError | TimeoutError):
        return "the broker", True
    return "a round", False


class OutageLog:
    """Tracks one repeating job's failures.

    Parameters:
        logger: where the lines go (WARNING when it fails, INFO when it recovers).
        name: the job's name at the start of each line (``wake-up poller``).
        every_s: seconds between rounds, said in the first line.
        clock: monotonic seconds (``time.monotonic``), for the outage's duration.

    :meth:`failed` logs the first failure of an outage in one line (with its traceback only
    when it is not a lost connection, i.e. maybe a bug); later failures go to DEBUG. :meth:`ok`
    after failures logs one line with the outage's duration in seconds and failed rounds.
    """

    def __init__(self, logger: logging.Logger, name: str, every_s: float,
                 clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.name = name
        self.every_s = every_s
        self.clock = clock
        self.since: float | None = None
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        """A round failed with ``exc``."""
        self.failures += 1
        if self.since is not None:
            self.logger.debug("%s: round failed again (%d): %r", self.name, self.failures, exc)
            return
        self.since = self.clock()
        what, outage = _what(exc)
        detail = (type(exc).__name__, str(exc).strip()[:300], self.every_s)
        if outage:
            self.logger.warning(
                "%s: %s is unreachable (%s: %s); retrying every %g s, quietly until it is back",
                self.name, what, *detail)
        else:
            self.logger.warning(
                "%s: a round failed (%s: %s); retrying every %g s, quietly until one succeeds",
                self.name, *detail, exc_info=exc)

    def ok(self) -> None:
        """A round succeeded."""
        if self.since is None:
            return
        took = self.clock() - self.since
        self.logger.info("%s: working again after %.1f s (%d failed rounds)", self.name, took,
                         self.failures)
        self.since, self.failures = None, 0

"""Rate limits enforced before each call of a dispatched task, shared by every worker.

A provider counts calls per credential: GitHub allows 80 content-creating requests per minute
and 500 per hour per token (docs.github.com, "Rate limits for the REST API", secondary rate
limits), Typeform 2 requests per second per account (typeform.com/developers, "Rate limits").
A :class:`RateLimit` says the same: never more than ``limit`` calls in any window of
``period_s`` seconds. Each is kept in Redis as a sliding-window log per connection and enforced
atomically in Lua (``lua/ratelimit_acquire.lua``), so workers on any machine share it.

Keys (``P`` is the key prefix; ``C`` is the connection: its ``connection_key`` and the first
16 hex digits of SHA-256 of its credential, never the credential itself; ``{C}`` is a Redis
Cluster hash tag, so one connection's keys share a slot)::

    P:ratelimit:{C}:closed                      string  epoch seconds until which the provider
                                                        said no requests are left (PXAT then)
    P:ratelimit:{C}:<scope>:<limit>/<period>:log    zset  attempt -> time let through, then the
                                                          time its answer came back
    P:ratelimit:{C}:<scope>:<limit>/<period>:queue  zset  attempt -> hint given while it waits

The check runs in the worker that makes the call, right before it (after the attempt took its
task lease), so the provider sees the calls at the times they were counted. A call over a limit
is deferred without holding a worker: its attempt is sent again at its slot's hint (a countdown
message within ``eta_window_s``, else the run re-sends it when due, the way retries are), its
record says ``WAITING`` with ``rate_limited_until`` (``runs show``: "waiting for the github rate
limit until ..."), and its ``attempts`` do not change: waiting uses no retry.

Provider headers feed the limiter: after each attempt :meth:`Integration.rate_limit_closed_until
<trigger_celery.integration.Integration.rate_limit_closed_until>` may name a reset time
(``x-ratelimit-remaining: 0`` with ``x-ratelimit-reset``); the connection is then closed until
that time for every worker.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trigger_celery._errors import ConfigurationError
from trigger_celery._states import WAITING
from trigger_celery._store import dumps

if TYPE_CHECKING:
    from trigger_celery._execution import Executor
    from trigger_celery._states import TaskRecord
    from trigger_celery._store import Store
    from trigger_celery.integration import Integration

logger = logging.getLogger("trigger_celery")

_SCOPE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class RateLimit:
    """Never more than ``limit`` calls in any window of ``period_s`` seconds, per connection
    (credential).

    Attributes:
        limit: calls allowed in a window (>= 1).
        period_s: the window's length, in seconds (> 0).
        scope: a name for the limit, part of its Redis key and shown while a task waits for it
            (``content-creation``); limits with the same scope, ``limit`` and ``period_s`` on
            one connection share their count.
        operations: the qualified operation names it applies to (``{"issues.create", ...}``);
            ``None``: every operation of the integration.

    ``RateLimit(limit=80, period_s=60)`` is GitHub's per-minute content-creation limit.
    """

    limit: int
    period_s: float
    scope: str = "all"
    operations: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 1:
            raise ConfigurationError(f"RateLimit: limit must be an int >= 1, got {self.limit!r}")
        if not isinstance(self.period_s, int | float) or not 0 < self.period_s < float("inf"):
            raise ConfigurationError(
                f"RateLimit: period_s must be a number of seconds > 0, got {self.period_s!r}")
        if not isinstance(self.scope, str) or not _SCOPE.match(self.scope):
            raise ConfigurationError(
                f"RateLimit: scope {self.scope!r} must match {_SCOPE.pattern}")
        if self.operations is not None:
            object.__setattr__(self, "operations", frozenset(self.operations))

    def describe(self) -> str:
        """``80 per 60 s (content-creation)``."""
        return f"{self.limit} per {self.period_s:g} s ({self.scope})"


def connection_id(integ: Integration) -> str:
    """``<connection_key>:<16 hex digits of SHA-256 of the credential>`` (computed once per
    integration object; the credential itself never leaves the process)."""
    cid: str | None = integ.__dict__.get("_rate_limit_connection")
    if cid is None:
        digest = hashlib.sha256(integ.credential().encode()).hexdigest()[:16]
        cid = integ.__dict__["_rate_limit_connection"] = f"{integ.connection_key}:{digest}"
    return cid


def _gated(integ: Integration) -> bool:
    from trigger_celery.integration import Integration

    return bool(integ.rate_limits) or (
        type(integ).rate_limit_closed_until is not Integration.rate_limit_closed_until)


#: Log keys of the calls this process let through and has not seen come back yet:
#: attempt -> keys (an attempt runs in one process, from :func:`gate` to :func:`observe`).
_in_flight: dict[str, list[str]] = {}


def acquire(store: Store, integ: Integration, qname: str, member: str,
            now: float | None = None, *, job_id: str = "",
            job_limits: tuple[RateLimit, ...] = ()) -> float | None:
    """Take a slot for one call of ``qname`` (``member``: the attempt, unique while it waits)
    under the integration's limits for it and ``job_limits`` (the job's own, counted per job id
    across its runs).

    Returns ``None`` when the call may go now (it is counted under each of its limits), else
    the epoch seconds at which to try again (the slot's hint, or the provider's reset time).
    """
    limits = integ.rate_limits_for(qname)
    if not limits and not job_limits and not _gated(integ):
        return None
    cid = connection_id(integ)
    pairs = [(cid, limit) for limit in limits] + [(f"job:{job_id}", limit)
                                                  for limit in job_limits]
    specs = [(owner, limit.scope, limit.limit, limit.period_s) for owner, limit in pairs]
    hint = store.ratelimit_acquire(cid, member, now if now is not None else store.now(), specs)
    if hint is not None:
        return hint
    if specs:
        _in_flight[member] = [store.ratelimit_log_keys(*spec)[0] for spec in specs]
    return None


def observe(store: Store, integ: Integration, qname: str, member: str,
            error: BaseException | None) -> None:
    """After a call of ``qname`` (``member``: its attempt) came back: move its entry in each
    limit's log to now (the provider counted it at some time up to now), and close the connection
    for every worker until the reset time the provider's answer named
    (:meth:`Integration.rate_limit_closed_until`). Never raises."""
    logs = _in_flight.pop(member, None)
    if logs:
        try:
            store.ratelimit_came_back(logs, member, store.now())
        except Exception:  # noqa: BLE001 - the entry keeps the time the call was let through
            logger.warning("%s: could not update the rate-limit log", integ.id, exc_info=True)
    cid = integ.__dict__.get("_rate_limit_connection")
    if cid is None or not _gated(integ):
        return  # not gated here (no limits, or no credential)
    try:
        until = integ.rate_limit_closed_until(error)
        if until is None or until <= store.now():
            return
        store.ratelimit_close(cid, until)
        logger.info("%s: the provider has no requests left on %s until %.3f; holding its calls",
                    integ.id, integ.connection_key, until)
    except Exception:  # noqa: BLE001 - a hook or the store failing must not fail the attempt
        logger.warning("%s: could not record the provider's rate-limit reset", integ.id,
                       exc_info=True)


def gate(executor: Executor, integ: Integration, qname: str, run_id: str, idem: str,
         attempt: int, rec: TaskRecord, token: str, celery_task: Any) -> str | None:
    """Before a dispatched attempt calls the provider: ``None`` if it may call now, else defer
    it to its slot (see the module docstring) and return ``"rate-limited"``. The attempt holds
    its task lease (``token``); a deferral releases it and leaves ``attempts`` unchanged."""
    client = executor.client
    job_id, job_limits = "", ()
    if any(job.rate_limits for job in client.jobs.values()):
        job_id = str(executor.store.redis.hget(executor.store.run_key(run_id), "job_id") or "")
        job = client.jobs.get(job_id)
        job_limits = job.rate_limits if job is not None else ()
    if not integ.rate_limits and not job_limits and not _gated(integ):
        return None
    store = executor.store
    now = store.now()
    try:
        hint = acquire(store, integ, qname, f"{idem}:{attempt}", now, job_id=job_id,
                       job_limits=job_limits)
    except ConfigurationError:
        return None  # no credential here: the attempt fails with that error, recorded
    if hint is None:
        rec.pop("rate_limited_until", None)
        rec.pop("rate_limit", None)
        rec.pop("rate_limit_detail", None)
        return None
    limits = integ.rate_limits_for(qname) + job_limits
    rec["status"], rec["retry_at"], rec["dispatched_at"] = WAITING, hint, hint
    rec["rate_limited_until"] = hint
    rec["rate_limit"] = (f"{integ.id} rate limit" if not job_limits else
                         f"rate limit of {integ.id} and job {job_id}")
    rec["rate_limit_waits"] = int(rec.get("rate_limit_waits", 0)) + 1
    if limits:
        rec["rate_limit_detail"] = ", ".join(limit.describe() for limit in limits)
    in_window = hint - now <= executor.settings.effective_eta_window_s
    if not in_window:
        rec["resend_by_run"] = True  # the run wakes at the hint and sends the attempt then
    # this start did not happen as far as the attempt's start count goes (rerun_after_loss)
    store.redis.hincrby(store.task_starts_key(run_id), f"{idem}:{attempt}", -1)
    executor._settle(run_id, idem, token, dumps(rec), not in_window)
    logger.info("task %s of run %s waits for the %s rate limit until %.3f", rec.get("name"),
                run_id, integ.id, hint)
    if in_window:
        rec["attempts"] = attempt - 1  # _retry_message sends attempts + 1: this same attempt
        executor._retry_message(integ, qname, run_id, idem, rec, hint, celery_task)
    return "rate-limited"

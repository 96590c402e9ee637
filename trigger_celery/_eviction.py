"""The store's eviction policy, checked when a worker or ``dev`` starts.

A Redis whose ``maxmemory-policy`` evicts keys (``allkeys-lru``, ``volatile-ttl``, ...) drops a
waiting run's records when memory fills: the run vanishes after its side effects ran, with no
trace anywhere. Workers and ``dev`` therefore refuse such a store unless the ``allow_eviction``
setting says otherwise (then they warn). Servers that forbid ``CONFIG`` (managed Redis) are read
through ``INFO memory``.
"""

from __future__ import annotations

import logging

import redis

from trigger_celery._errors import ConfigurationError

logger = logging.getLogger("trigger_celery")


class EvictionPolicyError(ConfigurationError):
    """The store Redis may evict keys (``maxmemory-policy`` other than ``noeviction``)."""


def maxmemory_policy(r: redis.Redis) -> str | None:
    """The server's ``maxmemory-policy``, or ``None`` when it cannot be read.

    ``CONFIG GET`` first; where that is disabled or not permitted, the ``maxmemory_policy`` field
    of ``INFO memory`` (Redis 4+, Valkey). Raises :class:`redis.ConnectionError` when the server
    does not answer at all.
    """
    try:
        value = r.config_get("maxmemory-policy").get("maxmemory-policy")
        if value:
            return str(value)
    except redis.ResponseError:  # unknown command (renamed away) or NOPERM
        pass
    try:
        value = r.info("memory").get("maxmemory_policy")
    except redis.ResponseError:
        return None
    return str(value) if value else None


def check_eviction_policy(r: redis.Redis, where: str, *, allow: bool) -> str | None:
    """Refuse (or, with ``allow``, warn about) a store that may evict keys.

    Parameters:
        r: a client of the store Redis.
        where: how to name the store in the message (``host:port/db``, no password).
        allow: the ``allow_eviction`` setting.

    Returns:
        The policy found (``None`` when unreadable, which passes).

    Raises:
        EvictionPolicyError: the policy evicts and ``allow`` is false; the message names the
            setting and the fix.
    """
    from trigger_celery._connection import LazyCluster

    policy: str | None
    if isinstance(r, LazyCluster):  # every master of a cluster (CONFIG GET reaches a random one)
        found = {f"{n.host}:{n.port}": maxmemory_policy(r.get_redis_connection(n))
                 for n in r.get_primaries()}
        evicting = {node: str(p) for node, p in found.items() if p not in (None, "noeviction")}
        if not evicting:
            return "noeviction" if "noeviction" in found.values() else None
        where, policy = next(iter(sorted(evicting.items())))
    else:
        policy = maxmemory_policy(r)
        if policy is None or policy == "noeviction":
            return policy
    message = (
        f"the store Redis at {where} has maxmemory-policy {policy}: when memory fills it evicts "
        "keys, and a run whose records are evicted is lost without a trace. Set "
        "`maxmemory-policy noeviction` on that server (redis.conf, or CONFIG SET "
        "maxmemory-policy noeviction), or set TRIGGER_CELERY_ALLOW_EVICTION=true to accept it"
    )
    if not allow:
        raise EvictionPolicyError(message)
    logger.warning("%s (allowed by allow_eviction)", message)
    return policy

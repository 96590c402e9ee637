"""Building the store's Redis client: a plain URL, Redis Sentinel in Celery's URL form, or a
Redis Cluster (``redis_cluster``: redis-py's ``RedisCluster``, seeded by one node's URL).

A Sentinel URL lists the sentinels, separated by ``;``, each as ``sentinel://host:port/db``
(``sentinel://[[user]:password@]host:port/db`` for a master that wants a password), exactly as
Celery and kombu take it for the broker::

    sentinel://10.0.0.1:26379/0;sentinel://10.0.0.2:26379/0;sentinel://10.0.0.3:26379/0

The master's name comes from the ``sentinel_master`` setting (Celery's
``broker_transport_options["master_name"]``). The first entry's database, user and password
apply to the master; the sentinels themselves are reached without a password.

The client is redis-py's ``Sentinel(...).master_for(name)``: each new connection asks the
sentinels where the master is, and a connection that breaks, or that finds its server demoted to
a replica (``READONLY``), is closed so that the next command asks again. After a failover the
store's usual retries (``Executor.write``, the poller's next round, the lease keeper's next
renewal) therefore reach the new master by themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from trigger_celery._errors import ConfigurationError

SENTINEL_SCHEME = "sentinel"

#: Timeouts of the connections to the sentinels themselves (seconds): a sentinel that hangs
#: must not hold up the discovery of the master, which asks the next one.
SENTINEL_SOCKET_TIMEOUT_S = 2.0


def is_sentinel_url(url: str | None) -> bool:
    """Whether ``url`` is a Sentinel URL (``sentinel://...``, possibly several joined by ``;``)."""
    return bool(url) and str(url).lower().startswith(SENTINEL_SCHEME + "://")


@dataclass(frozen=True)
class SentinelURL:
    """A parsed Sentinel URL.

    Attributes:
        sentinels: ``[(host, port), ...]``, in the URL's order; port 26379 when none is given.
        db: the database number on the master (from the first entry; 0 when none).
        username, password: the master's credentials (from the first entry), or ``None``.
    """

    sentinels: list[tuple[str, int]]
    db: int
    username: str | None
    password: str | None


def parse_sentinel_url(url: str) -> SentinelURL:
    """Parse ``sentinel://h1:p1/db;sentinel://h2:p2/db...``.

    Raises:
        ValueError: an entry is not ``sentinel://host[:port][/db]``, or a database is not a
            number; the message names the entry (without its password).
    """
    sentinels: list[tuple[str, int]] = []
    db, username, password = 0, None, None
    for i, part in enumerate(p.strip() for p in url.split(";") if p.strip()):
        shown = describe_url(part)
        parts = urlsplit(part)
        if parts.scheme.lower() != SENTINEL_SCHEME or not parts.hostname:
            raise ValueError(f"not a sentinel://host:port/db entry: {shown!r}")
        try:
            port = parts.port or 26379
        except ValueError:
            raise ValueError(f"bad port in {shown!r}") from None
        sentinels.append((parts.hostname, port))
        if i == 0:
            path = parts.path.strip("/")
            if path and not path.isdigit():
                raise ValueError(f"the database in {shown!r} must be a number")
            db = int(path or 0)
            username = unquote(parts.username) if parts.username else None
            password = unquote(parts.password) if parts.password else None
    if not sentinels:
        raise ValueError("a sentinel URL names no sentinel")
    return SentinelURL(sentinels, db, username, password)


def describe_url(url: str) -> str:
    """``host:port/db`` of each entry of a Redis or Sentinel URL, joined by ``;``, without user
    or password (for messages and logs)."""
    return ";".join(p.split("://", 1)[-1].split("@")[-1] for p in url.split(";"))


def connect(url: str, *, sentinel_master: str | None = None, cluster: bool = False,
            **options: Any) -> redis.Redis:
    """A redis-py client of the store.

    Parameters:
        url: ``redis://``, ``rediss://``, ``unix://`` (``redis.Redis.from_url``), or a Sentinel
            URL (see the module docstring).
        sentinel_master: the master's name, required with a Sentinel URL.
        cluster: ``url`` is one node of a Redis Cluster: the client is a
            ``redis.cluster.RedisCluster`` (it finds the other nodes, follows ``MOVED`` and
            ``ASK`` redirections, and sends each script to the node of its keys' slot). It
            has the same command methods as ``redis.Redis``, hence the return type.
        **options: connection options for the client (``decode_responses``,
            ``socket_timeout`` in seconds, ``health_check_interval`` in seconds, ...); with
            Sentinel they apply to the connections to the master.

    Raises:
        ValueError: a Sentinel URL without ``sentinel_master``, or a malformed Sentinel URL.
    """
    if cluster:
        lazy: Any = LazyCluster(url, options)
        return lazy  # type: ignore[no-any-return]
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    if not sentinel_master:
        raise ValueError(f"the Sentinel URL {describe_url(url)!r} needs the master's name: set "
                         "sentinel_master (TRIGGER_CELERY_SENTINEL_MASTER)")
    parsed = parse_sentinel_url(url)
    timeout = min(float(options.get("socket_timeout") or SENTINEL_SOCKET_TIMEOUT_S),
                  SENTINEL_SOCKET_TIMEOUT_S)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        parsed.sentinels,
        sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout,
                         "socket_keepalive": True},
    )
    master_options = {**options, "db": parsed.db}
    if parsed.username:
        master_options["username"] = parsed.username
    if parsed.password:
        master_options["password"] = parsed.password
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        sentinel_master, redis_class=redis.Redis, **master_options)
    return client


class LazyCluster:
    """A ``redis.cluster.RedisCluster`` built on first use, as a ``redis.Redis`` connects on
    first use: a cluster that does not answer yet fails the first command (a
    ``redis.ConnectionError``, transient) instead of the client's construction, and the next
    command tries again.

    Parameters:
        url: one node's ``redis://`` or ``rediss://`` URL (the seed).
        options: connection options for every node (see :func:`connect`).
    """

    def __init__(self, url: str, options: dict[str, Any]):
        self._url, self._options = url, options
        self._client: Any = None

    def _get(self) -> Any:
        if self._client is None:
            from redis.cluster import RedisCluster
            from redis.exceptions import RedisClusterException

            try:
                self._client = RedisCluster.from_url(self._url, **self._options)
            except RedisClusterException as exc:
                if "cluster mode is not enabled" in str(exc).lower():  # a setting, not an outage
                    raise ConfigurationError(
                        f"the store Redis at {describe_url(self._url)} is not a Redis Cluster "
                        "node (cluster mode is not enabled there): unset "
                        "TRIGGER_CELERY_REDIS_CLUSTER, or point redis_url at a cluster node"
                    ) from None
                raise redis.ConnectionError(f"Redis Cluster at {describe_url(self._url)}: "
                                            f"{exc}") from exc
        return self._client

    def register_script(self, script: str) -> Any:
        """A script object whose calls go through this client (nothing is sent now)."""
        from redis.commands.core import Script

        return Script(self, script)  # type: ignore[arg-type]

    def get_encoder(self) -> Any:
        """The encoder ``Script`` takes the script's bytes from (the nodes' settings)."""
        from redis._parsers.encoders import Encoder

        return Encoder(  # type: ignore[no-untyped-call]
            self._options.get("encoding", "utf-8"), self._options.get("encoding_errors", "strict"),
            bool(self._options.get("decode_responses", False)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


def check_store_mode(r: Any, where: str) -> None:
    """Refuse a store whose mode the settings get wrong, where a worker starts: a Redis Cluster
    node used without ``redis_cluster`` (its commands would answer ``MOVED`` or ``CROSSSLOT``),
    or ``redis_cluster`` on a Redis without cluster mode (raised by :class:`LazyCluster` on
    first use). One ``INFO cluster`` round trip.

    Parameters:
        r: the store's client (``redis.Redis``, Sentinel's, or :class:`LazyCluster`).
        where: the store as the message names it (``host:port/db``, no password).

    Raises:
        ConfigurationError: the mode does not match; the message names the setting.
        redis.RedisError: the store does not answer.
    """
    if isinstance(r, LazyCluster):
        r.ping()  # builds the cluster client: ConfigurationError when the node is no cluster's
        return
    try:
        info = r.info("cluster")
    except redis.ResponseError:  # INFO refused (a managed Redis's ACL): nothing to tell
        return
    if str(info.get("cluster_enabled", 0)) == "1":
        raise ConfigurationError(
            f"the store Redis at {where} is a Redis Cluster node: set "
            "TRIGGER_CELERY_REDIS_CLUSTER=true (redis_cluster) to use it as one")

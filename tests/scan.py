"""Read every value stored in a Redis database, to scan it for secrets."""

from __future__ import annotations

from collections.abc import Iterator

import redis


def redis_values(url: str) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` for every value of every key (strings, hashes, lists, sets, zsets)."""
    r = redis.Redis.from_url(url)
    try:
        for key in r.scan_iter(count=1000):
            kind = r.type(key).decode()
            if kind == "string":
                values = [r.get(key)]
            elif kind == "hash":
                values = [*r.hkeys(key), *r.hvals(key)]
            elif kind == "list":
                values = r.lrange(key, 0, -1)
            elif kind == "set":
                values = list(r.smembers(key))
            elif kind == "zset":
                values = r.zrange(key, 0, -1)
            else:
                values = []
            for v in values:
                yield key, v or b""
    finally:
        r.close()

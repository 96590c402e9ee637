"""Durability across a failover: a write counts as done once enough replicas have it.

Redis replicates asynchronously: a master that dies may take its last writes with it, and the
replica Sentinel promotes may lack them. With ``min_replicas_ack`` above 0, the store's
checkpoints and run transitions (the scripts in :data:`ACKED_SCRIPTS`) are each followed by
``WAIT min_replicas_ack replica_ack_timeout_ms`` on the same connection, in the same round trip
(``WAIT`` counts the replicas that acknowledged this connection's writes so far, so it must
follow the write on the connection that made it). Sentinel promotes the most up-to-date
reachable replica, so a write acknowledged by a replica survives the loss of the master.

Fewer acknowledgements than asked: ``WAIT`` is sent again on the same connection (the write is
not repeated) until the replicas answer or ``patience_s`` passes; then the call raises
:class:`NotEnoughReplicasError`, a transient store error (its reply starts with ``NOREPLICAS``)
that ``Executor.write`` retries in place like any other. A connection that breaks meanwhile
raises its ``ConnectionError``: the master may be gone with the write, so the caller's retry
runs the whole write again, on the new master. Each script is safe to run again: a checkpoint
rewrites the same record; a suspension, an end or a settle that did go through finds its lease
released and changes nothing (the run's wake-up is then sent by the poller, from the schedule
entry the first run of the script wrote, instead of at once).

Not waited for: taking a lease (``acquire``, ``task_start``) and renewing it, log lines. A
failover that loses one of those costs what a worker's death costs: the task in flight may run
once more (marked ``rerun_after_loss`` where the engine can tell), a log line may be missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

logger = logging.getLogger("trigger_celery")

#: The store scripts that are checkpoints or run transitions: followed by ``WAIT`` when
#: ``min_replicas_ack`` is above 0.
ACKED_SCRIPTS = frozenset({"checkpoint", "suspend", "finish", "create_run", "task_settle",
                           "cancel"})


class NotEnoughReplicasError(redis.exceptions.ResponseError):
    """Fewer replicas than ``min_replicas_ack`` acknowledged a write in time (transient: the
    message starts with ``NOREPLICAS``, as Redis's own reply for ``min-replicas-to-write``)."""


def acked_call(r: redis.Redis, script: Script, keys: Sequence[Any], args: Sequence[Any], *,
               replicas: int, timeout_ms: int, patience_s: float) -> Any:
    """Run ``script`` and ``WAIT replicas timeout_ms`` in one round trip on one connection.

    Parameters:
        r: the store client (plain or Sentinel-managed).
        script: a script registered on ``r`` (``r.register_script``).
        keys, args: the script's KEYS and ARGV.
        replicas: how many replicas must acknowledge (``min_replicas_ack``, at least 1).
        timeout_ms: how long one ``WAIT`` blocks, in milliseconds.
        patience_s: how long to keep asking (``WAIT`` again, same connection) before giving up,
            in seconds.

    Returns:
        The script's reply, once ``replicas`` replicas have the write.

    Raises:
        NotEnoughReplicasError: the replicas did not acknowledge within ``patience_s``; the
            write is on the master, not yet known to be on the replicas.
        redis.ConnectionError, redis.TimeoutError: the master went away (the write may be lost
            with it); the connection is closed, so the next one asks Sentinel where the master
            is.
        redis.ResponseError: the script failed.
    """
    pool = r.connection_pool
    conn: Any = pool.get_connection()
    try:
        result, acks = _evalsha_and_wait(conn, script, keys, args, replicas, timeout_ms)
        deadline = time.monotonic() + patience_s
        while acks < replicas:
            if time.monotonic() >= deadline:
                logger.warning("only %d of %d replica(s) acknowledged a write within %.1f s "
                               "(min_replicas_ack): the write waits until they do", acks,
                               replicas, patience_s)
                raise NotEnoughReplicasError(
                    f"NOREPLICAS {acks} of {replicas} replica(s) acknowledged the write within "
                    f"{patience_s:.1f} s (min_replicas_ack)")
            conn.send_command("WAIT", replicas, timeout_ms)
            acks = int(conn.read_response())
        return result
    except redis.ResponseError:
        raise  # the connection is in step: a whole reply was read
    except BaseException:
        conn.disconnect()  # broken, or a reply left unread: never hand it out again
        raise
    finally:
        pool.release(conn)


def _evalsha_and_wait(conn: Any, script: Script, keys: Sequence[Any], args: Sequence[Any],
                      replicas: int, timeout_ms: int) -> tuple[Any, int]:
    """``EVALSHA`` and ``WAIT`` pipelined on ``conn``; the script is loaded once if the server
    lacks it (a promoted replica has an empty script cache)."""
    for _ in range(2):
        conn.send_packed_command(conn.pack_commands([
            ("EVALSHA", script.sha, len(keys), *keys, *args),
            ("WAIT", replicas, timeout_ms),
        ]))
        error: redis.ResponseError | None = None
        try:
            result = conn.read_response()
        except redis.ResponseError as exc:
            error = exc
        acks = int(conn.read_response())
        if isinstance(error, NoScriptError):
            conn.send_command("SCRIPT", "LOAD", script.script)
            conn.read_response()
            continue
        if error is not None:
            raise error
        return result, acks
    raise NoScriptError("the script could not be loaded")


def check_replicas(r: redis.Redis, wanted: int) -> int:
    """Warn when the master has fewer connected replicas than ``wanted`` (``min_replicas_ack``):
    every checkpoint would wait until enough replicas connect. Returns how many are connected.

    Raises:
        redis.RedisError: the master does not answer.
    """
    connected = int(r.info("replication").get("connected_slaves", 0))
    if connected < wanted:
        logger.warning("min_replicas_ack is %d but the store's master has %d connected "
                       "replica(s): every checkpoint waits until %d replica(s) acknowledge it",
                       wanted, connected, wanted)
    return connected


"""``_keys``: idempotency keys, Celery task ids of dispatched attempts, run ids."""

from __future__ import annotations

import hashlib
import re
import uuid

from trigger_celery._keys import celery_task_id, idempotency_key, new_run_id


def test_idempotency_key_is_sha256_of_a_json_array() -> None:
    expected = hashlib.sha256(b'["run_1",null,"fetch"]').hexdigest()
    assert idempotency_key("run_1", None, "fetch") == expected
    nested = hashlib.sha256('["run_1","abc","ключ"]'.encode()).hexdigest()
    assert idempotency_key("run_1", "abc", "ключ") == nested  # not ASCII-escaped


def test_idempotency_key_is_64_hex_and_stable() -> None:
    key = idempotency_key("run_1", "p", "k")
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert key == idempotency_key("run_1", "p", "k")


def test_parts_that_join_alike_with_a_colon_do_not_collide() -> None:
    # Trigger.dev v2 joins with ":", so these pairs collide there
    assert idempotency_key("run_1", "a:b", "c") != idempotency_key("run_1", "a", "b:c")
    assert idempotency_key("a:b", None, "c") != idempotency_key("a", None, "b:c")
    assert idempotency_key("r", None, "k") != idempotency_key("r", "null", "k")
    assert idempotency_key("r", "", "k") != idempotency_key("r", None, "k")


def test_each_part_changes_the_key() -> None:
    base = idempotency_key("r", "p", "k")
    assert len({base, idempotency_key("r2", "p", "k"), idempotency_key("r", "p2", "k"),
                idempotency_key("r", "p", "k2")}) == 4


def test_celery_task_id_is_a_uuid_per_attempt() -> None:
    idem = idempotency_key("r", None, "k")
    first = celery_task_id(idem, 1)
    assert uuid.UUID(first).version == 5
    assert first == celery_task_id(idem, 1)  # a re-send of the same attempt keeps its id
    assert first != celery_task_id(idem, 2)
    assert first != celery_task_id(idempotency_key("r", None, "k2"), 1)


def test_new_run_ids_are_prefixed_and_unique() -> None:
    ids = {new_run_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"run_[0-9a-f]{32}", i) for i in ids)

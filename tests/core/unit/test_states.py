"""``_states``: the status constants, their sets, and the strings the Lua scripts write."""

from __future__ import annotations

import re
from importlib import resources
from typing import get_args

from trigger_celery import _states as states
from trigger_celery._runs import UNREADABLE, Run, Task


def test_sets_partition_the_statuses() -> None:
    assert states.RUN_READY_STATES | states.RUN_UNREADY_STATES == set(states.RUN_STATUSES)
    assert not states.RUN_READY_STATES & states.RUN_UNREADY_STATES
    assert states.RUN_READY_STATES == {"SUCCESS", "FAILURE", "CANCELED"}
    settled = states.TASK_READY_STATES | states.TASK_UNREADY_STATES | {states.CANCELED}
    assert settled == set(states.TASK_STATUSES)
    assert not states.TASK_READY_STATES & states.TASK_UNREADY_STATES


def test_literal_types_list_the_same_statuses() -> None:
    assert get_args(states.RunStatus) == states.RUN_STATUSES
    assert get_args(states.TaskStatus) == states.TASK_STATUSES
    assert get_args(Run.model_fields["status"].annotation) == states.RUN_STATUSES
    # a task's status is one of Trigger.dev's, or UNREADABLE for a record that cannot be read
    stored, unreadable = get_args(Task.model_fields["status"].annotation)
    assert get_args(stored) == states.TASK_STATUSES
    assert get_args(unreadable) == (UNREADABLE,)


#: Redis command options the scripts pass as quoted capitals (ZRANGEBYSCORE ... 'LIMIT').
REDIS_OPTIONS = {"LIMIT", "WITHSCORES"}


def test_every_status_the_lua_scripts_use_is_a_known_one() -> None:
    known = set(states.RUN_STATUSES) | set(states.TASK_STATUSES)
    used: set[str] = set()
    for script in (resources.files("trigger_celery") / "lua").iterdir():
        if script.name.endswith(".lua"):
            text = script.read_text()
            # quoted capitals that are not a Redis command (redis.call('HSET', ...)) nor one of
            # its options (ZRANGEBYSCORE ... 'LIMIT')
            used |= set(re.findall(r"(?<!redis\.call\()'([A-Z]{4,})'", text)) - REDIS_OPTIONS
    assert used, "no status found: the pattern no longer matches the scripts"
    assert used <= known, used - known

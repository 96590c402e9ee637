"""The public API is exactly what ``trigger_celery.__all__`` lists, sorted, each importable."""

from __future__ import annotations

import trigger_celery
from trigger_celery import TriggerCeleryError


def test_all_is_sorted_complete_and_importable():
    names = trigger_celery.__all__
    assert names == sorted(names)
    public = {n for n in vars(trigger_celery) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(trigger_celery, n)).__name__ == "module"}
    assert set(names) == public - modules
    for name in names:
        assert getattr(trigger_celery, name) is not None


def test_every_error_derives_from_the_root():
    errors = [getattr(trigger_celery, n) for n in trigger_celery.__all__
              if n.endswith("Error") and isinstance(getattr(trigger_celery, n), type)]
    assert len(errors) >= 10
    assert all(issubclass(e, TriggerCeleryError) for e in errors)


def test_control_flow_cannot_be_swallowed_by_except_exception():
    from trigger_celery._errors import LeaseLost, Suspend

    assert not issubclass(Suspend, Exception) and issubclass(Suspend, BaseException)
    assert not issubclass(LeaseLost, Exception)

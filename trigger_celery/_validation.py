"""Pydantic in one place: strict models (unknown fields are errors) and one readable message
from a pydantic ``ValidationError``.

Public for integrations as :class:`trigger_celery.integration.StrictModel` and
:func:`trigger_celery.integration.describe_errors`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from trigger_celery._errors import ValidationError


class StrictModel(BaseModel):
    """Base of params, options and payload models: an unknown or misspelled field fails
    validation, naming it (pydantic's ``extra="forbid"``). Subclasses may add to
    ``model_config`` (``ConfigDict(frozen=True)``); pydantic merges it with this one."""

    model_config = ConfigDict(extra="forbid")


def describe_errors(exc: PydanticValidationError, *, root: str = "(root)") -> str:
    """Every problem of a pydantic error as ``field.path: message``, joined by ``"; "``.

    Parameters:
        exc: the pydantic ``ValidationError``.
        root: the name shown for an error about the whole value (an empty location).

    Returns one line, e.g. ``"title: Field required; labels.0: Input should be a valid
    string"``.
    """
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}" for err in exc.errors()
    )


def check_display(call: str, name: Any, icon: Any, properties: Any) -> None:
    """Check a task call's display options where the call is made (``io.run_task``,
    ``io.parallel``), so a bad one fails there, naming the option, rather than leaving a task
    record ``runs show`` cannot read.

    Parameters:
        call: the call as shown in the message, e.g. ``"io.run_task('fetch')"``.
        name, icon: ``None`` or a non-empty string.
        properties: ``None`` or a list of objects (``{"label": ..., "text": ...}``) that JSON
            can encode.

    Raises:
        ValidationError: one of them is not that, naming it.
    """
    for field, value in (("name", name), ("icon", icon)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValidationError(f"{call}: {field} must be a non-empty string, got {value!r}")
    if properties is None:
        return
    if not isinstance(properties, list | tuple) or not all(
            isinstance(p, dict) for p in properties):
        raise ValidationError(f"{call}: properties must be a list of objects "
                              f"({{'label': ..., 'text': ...}}), got {properties!r:.200}")
    try:
        json.dumps(properties)
    except (TypeError, ValueError) as err:
        raise ValidationError(f"{call}: properties must be JSON: {err}") from None

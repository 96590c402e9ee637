"""Pydantic in one place: strict models (unknown fields are errors) and one readable message
from a pydantic ``ValidationError``.

Public for integrations as :class:`trigger_celery.integration.StrictModel` and
:func:`trigger_celery.integration.describe_errors`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError


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

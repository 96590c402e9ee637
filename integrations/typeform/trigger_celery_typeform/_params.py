"""Base of the Typeform operations' param models: unknown params are errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Strict params: an unknown or misspelled param fails validation, naming it."""

    model_config = ConfigDict(extra="forbid")

"""Base of the Typeform operations' param models: unknown params are errors."""

from __future__ import annotations

from trigger_celery.integration import StrictModel


class Params(StrictModel):
    """Strict params: an unknown or misspelled param fails validation, naming it."""

"""The web UI tests' fixtures (defined in :mod:`tests.core.ui.support`)."""

from tests.core.ui.support import browser, page, ui_client, ui_url, ui_worker  # noqa: F401

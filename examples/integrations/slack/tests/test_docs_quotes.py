"""``docs/writing-an-integration.md`` quotes this package: each fenced block whose first line is
``# <path>`` must appear in that file, chunk by chunk (``# ...`` lines mark cuts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
DOC = ROOT / "docs" / "writing-an-integration.md"
FENCE = re.compile(r"^```[a-z]*\n(.*?)^```$", re.S | re.M)
HEADER = re.compile(r"^# (\S+)$")

pytestmark = pytest.mark.skipif(not DOC.is_file(), reason="outside the repository")


def quotes() -> list[tuple[str, list[str]]]:
    """``(path, chunks)`` of each quoting block of the page, in order."""
    found = []
    for block in FENCE.findall(DOC.read_text(encoding="utf-8")):
        first, _, rest = block.partition("\n")
        header = HEADER.match(first)
        if header and ("/" in header.group(1) or header.group(1).endswith(".toml")):
            chunks = [c.strip("\n") for c in re.split(r"^# \.\.\.$", rest, flags=re.M)]
            found.append((header.group(1), [c for c in chunks if c]))
    return found


def test_the_page_quotes_the_package() -> None:
    paths = {path for path, _ in quotes()}
    assert {"examples/integrations/slack/pyproject.toml",
            "examples/integrations/slack/trigger_celery_slack/chat.py",
            "examples/integrations/slack/trigger_celery_slack/__init__.py",
            "examples/integrations/slack/trigger_celery_slack/errors.py",
            "examples/integrations/slack/tests/test_slack_client.py",
            "examples/integrations/slack/tests/test_slack_worker.py"} <= paths


@pytest.mark.parametrize(("path", "chunks"), quotes(),
                         ids=lambda v: v.rsplit("/", 1)[-1] if isinstance(v, str) else "")
def test_each_quote_is_in_its_file(path: str, chunks: list[str]) -> None:
    source = (ROOT / path).read_text(encoding="utf-8")
    for chunk in chunks:
        assert chunk in source, f"docs/writing-an-integration.md quotes {path} wrongly:\n{chunk}"

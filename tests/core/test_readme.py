"""The README says what the code does: examples match return types, and every variable the
suite reads to pick its Redis databases is documented."""

from __future__ import annotations

import re

from tests.support import ROOT

README = (ROOT / "README.md").read_text()


def test_send_event_is_shown_returning_a_list() -> None:
    lines = [ln for ln in README.splitlines() if "client.send_event(" in ln]
    assert lines
    for ln in lines:
        assert not re.match(r"\s*handle\s*=", ln), ln  # it returns a list of handles


def test_every_test_database_variable_is_documented() -> None:
    read = set()
    for path in [ROOT / "tests" / "support.py", *(ROOT / "tests" / "examples").glob("*.py"),
                 ROOT / "trigger_celery" / "testing" / "plugin.py"]:
        read |= set(re.findall(r'environ\.get\("((?:TESTS_|TRIGGER_CELERY_TEST_)\w+)"',
                               path.read_text()))
    assert {"TESTS_REDIS_URL", "TESTS_STORE_DB", "TESTS_BROKER_DB", "TESTS_EXAMPLES_DB",
            "TRIGGER_CELERY_TEST_REDIS_URL"} <= read
    for name in read:
        assert f"`{name}`" in README, name
    assert "flushes" in README and "20 minutes on 2 cores" in README


def test_flower_api_and_webhook_answers_are_documented() -> None:
    assert "FLOWER_UNAUTHENTICATED_API=true" in README
    assert '"duplicate": false' in README and "runs" in README


def test_time_skipping_example_is_the_test_that_runs() -> None:
    test = (ROOT / "tests" / "kit" / "test_time_skipping.py").read_text()
    example = test.split("# example: begin\n")[1].split("# example: end\n")[0]
    assert f"```python\n{example}```" in README
    assert "`test_clock`" in README and "`trigger_clock`" in README

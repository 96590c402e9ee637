"""Odd text helpers (trigger_celery._text): JSON that always encodes, terminal-inert text."""

from __future__ import annotations

import json

import pytest

from trigger_celery import ValidationError
from trigger_celery._keys import idempotency_key
from trigger_celery._store import dumps
from trigger_celery._text import escape_surrogates, inert, is_encoding_error, require_utf8


@pytest.mark.parametrize("value", [
    "\ud83d", "\udc00 tail", "a\udfffb", {"\ud800": ["\udbff", 1]}, "caf\u00e9 \u4e2d", "\x00",
    ["\\ud83d", "\\\ud83d"],  # a literal backslash-u next to a real lone surrogate
])
def test_store_json_round_trips_and_encodes(value: object) -> None:
    text = dumps(value)
    text.encode("utf-8")  # never raises
    assert json.loads(text) == value


def test_ordinary_text_is_unchanged() -> None:
    assert dumps({"k": "caf\u00e9 \u4e2d \U0001f600"}) == '{"k":"caf\u00e9 \u4e2d \U0001f600"}'
    assert escape_surrogates('"plain"') == '"plain"'
    # idempotency keys of ordinary text keep their hashes (same bytes as before)
    assert idempotency_key("r", None, "caf\u00e9") == \
        "5c585d6e824d2a35a756198bfda3cd1a0f720ce38ddba43fa2e4b66cb8d4e02d"
    assert len(idempotency_key("r", None, "\ud83d")) == 64


def test_inert_makes_controls_visible() -> None:
    assert inert("\x1b]0;t\x07 \x1b[2J \r\x08 \x9b \u202e ok\ttab\nline") == \
        "\\x1b]0;t\\x07 \\x1b[2J \\x0d\\x08 \\x9b \\u202e ok\ttab\nline"
    assert inert("\ud83d") == "\\ud83d"
    assert inert("caf\u00e9 \u4e2d") == "caf\u00e9 \u4e2d"


def test_require_utf8_and_encoding_errors() -> None:
    require_utf8("id", "caf\u00e9")
    require_utf8("id", None)
    with pytest.raises(ValidationError, match="send_event: id"):
        require_utf8("send_event: id", "a\ud83d")
    try:
        "\ud83d".encode()
    except UnicodeEncodeError as exc:
        wrapped = RuntimeError("wrapped")
        wrapped.__cause__ = exc
        assert is_encoding_error(exc) and is_encoding_error(wrapped)
    assert not is_encoding_error(ValueError("x"))

"""Text that is not plain: lone surrogates in JSON, control characters on a terminal.

JSON may carry a lone UTF-16 surrogate as an escape (``"\\ud83d"``); ``json.loads`` turns it into
a Python ``str`` holding that code point, which UTF-8 cannot encode. Everything we write to Redis
or hash therefore goes through :func:`json_encoder`: compact JSON with non-ASCII characters kept
as they are (so stored text and idempotency keys of ordinary text do not change), except that
each surrogate code point is written as its ``\\uXXXX`` escape, which decodes back to the same
``str``. Celery messages need nothing: kombu's JSON serializer escapes all non-ASCII text.

A Python ``str`` holding a high surrogate directly followed by a low one is written as two
escapes, which JSON decodes as the one character they pair to; JSON never decodes to such a
``str``, so text that came from JSON round-trips exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from trigger_celery._errors import ValidationError

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_surrogates(text: str) -> str:
    """``text`` (JSON) with each surrogate code point replaced by its ``\\uXXXX`` escape, so it
    encodes as UTF-8. Only valid on JSON text, where such code points sit inside strings."""
    if text.isascii():
        return text
    return _SURROGATE.sub(_escape, text)


def json_encoder(**options: Any) -> Callable[[Any], str]:
    """A ``value -> JSON str`` function built once from ``json.JSONEncoder(**options)`` whose
    output always encodes as UTF-8 (lone surrogates escaped). Raises what the encoder raises:
    ``TypeError`` / ``ValueError`` for what is not JSON, ``RecursionError`` for deep nesting."""
    encode = json.JSONEncoder(**options).encode

    def dumps(value: Any) -> str:
        return escape_surrogates(encode(value))

    return dumps


def require_utf8(what: str, value: str | None) -> None:
    """Refuse a name that becomes part of a Redis key or hash field (an event name or id, an
    idempotency key) when UTF-8 cannot encode it.

    Raises:
        ValidationError: ``value`` holds a lone surrogate; the message names ``what``.
    """
    if value is not None and not value.isascii() and _SURROGATE.search(value):
        raise ValidationError(f"{what} {value!r} is not valid Unicode (a lone surrogate); "
                              "it cannot be stored")


def is_encoding_error(error: BaseException) -> bool:
    """Whether ``error`` (or the error it was raised ``from``) is a text encoding or decoding error
    (``UnicodeError``): the same data fails the same way every time, so retrying cannot help."""
    seen: set[int] = set()
    err: BaseException | None = error
    while err is not None and id(err) not in seen:
        if isinstance(err, UnicodeError):
            return True
        seen.add(id(err))
        err = err.__cause__
    return False


# -- terminal --------------------------------------------------------------------------------

# C0 and C1 controls and DEL, except tab and newline (shown as such); also the bidi overrides
# and isolates, which reorder what a reader sees, and lone surrogates, which a UTF-8 terminal
# cannot be sent.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """``text`` safe to print on a terminal: every control character except tab and newline
    (ESC of an ANSI or OSC sequence, BEL, carriage return, backspace, C1 controls, bidi
    overrides) and every lone surrogate is written as a visible escape (``\\x1b``,
    ``\\u202e``)."""
    return _CONTROL.sub(_visible, text)

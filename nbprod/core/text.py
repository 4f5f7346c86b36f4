"""How values appear in messages: quoted, on one line, cut to a sane length."""

from __future__ import annotations

from typing import Any

QUOTE_LIMIT = 120


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``value`` as text in quotes for a message, cut in the middle to at most ``limit``
    characters (a path keeps its beginning and its file name); control characters are escaped,
    so an echoed value can never break a message into several lines."""
    text = str(value)
    if len(text) > limit:
        head = limit // 3
        text = f"{text[:head]}...{text[-(limit - head - 3):]}"
    return repr(text)

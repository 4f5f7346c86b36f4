"""How values appear in messages: quoted, on one line, cut to a sane length; and in Markdown,
literally."""

from __future__ import annotations

from typing import Any

QUOTE_LIMIT = 120


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``value`` as text in quotes for a message, cut in the middle to at most ``limit``
    characters (a path keeps its beginning and its file name); control characters are escaped,
    so an echoed value can never break a message into several lines."""
    return repr(_cut(str(value), limit))


def _cut(text: str, limit: int) -> str:
    """``text`` cut in the middle to at most ``limit`` characters."""
    if len(text) <= limit:
        return text
    head = limit // 3
    return f"{text[:head]}...{text[-(limit - head - 3):]}"


def one_line(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``value`` as text for a message, unquoted but on one line: control characters (a newline,
    a tab, a line separator) are escaped as in :func:`quote`, and text longer than ``limit`` is
    cut in the middle. For names listed in a sentence, where quotes would be noise."""
    text = _cut(str(value), limit)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# Markdown punctuation that can start emphasis, code, links, HTML, math, tables, strikethrough
# or close a heading wherever it stands, and what GitHub-flavoured renderers turn into links
# (``http://``, ``www.``, ``a@b.c``); `-`, `+`, `(`, `)` only matter at a line's start, which this
# text never is (it follows a title's words).
_MARKDOWN_SPECIAL = {"\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]",
                     "$": "\\$", "|": "\\|", "~": "\\~", "#": "\\#", ":": "\\:", ".": "\\.",
                     "@": "\\@", "<": "&lt;", ">": "&gt;", "&": "&amp;"}


def markdown_text(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``value`` (a name, a message) as Markdown that renders literally inside a line: one line
    (:func:`one_line`), every character Markdown, HTML or Jupyter's math could act on escaped."""
    return "".join(_MARKDOWN_SPECIAL.get(c, c) for c in one_line(value, limit))


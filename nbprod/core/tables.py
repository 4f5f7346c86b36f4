"""HTML for every view nbprod shows: tables, status badges, and displayable HTML with a text twin.

The capture results, the scoring report, the comparison report and the notebook panels all
build their HTML from these, so a table or a badge looks the same wherever it appears. Plain
HTML without scripts or external resources: it survives papermill, nbconvert and HTML export.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from typing import Any

from .results import number

_COLOURS = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "skip": "#57606a",
            "ok": "#1a7f37", "alert": "#cf222e", "error": "#cf222e"}


def badge(status: str) -> str:
    """A coloured status label (pass, warn, fail, skip; ok, alert, error) as inline HTML."""
    colour = _COLOURS.get(status, "#57606a")
    return (f'<span class="nbprod-badge nbprod-{html.escape(status)}" style="background:{colour};'
            f'color:white;border-radius:4px;padding:1px 7px;font-weight:600;font-size:90%">'
            f"{html.escape(status.upper())}</span>")


@dataclass
class Html:
    """Something a notebook displays as HTML, with a plain-text form for terminals and logs."""

    html: str
    text: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


# MathJax skips elements of these classes (MathJax 2 in the classic Notebook and nbconvert's
# templates, MathJax 3 in JupyterLab and Notebook 7), so a '$' in a column name or a message
# stays a dollar sign instead of starting a formula.
NO_MATH = "tex2jax_ignore mathjax_ignore"


def literal(view: Html) -> Html:
    """``view`` in an element that Jupyter's math typesetting leaves alone (:data:`NO_MATH`):
    user text in it (column names, values, messages) shows literally."""
    return Html(f'<div class="nbprod-view {NO_MATH}">{view.html}</div>', view.text)


_TABLE = ("<table><thead><tr>{% for c in columns %}<th style='text-align:left'>{{ c }}</th>"
          "{% endfor %}</tr></thead><tbody>{% for row in rows %}<tr>{% for v in row %}"
          "<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>")


@functools.cache
def _table_template() -> Any:
    import jinja2  # loaded on the first table, not with nbprod

    return jinja2.Environment(autoescape=True).from_string(_TABLE)


def table(rows: list[dict[str, Any]], columns: list[str], raw: tuple[str, ...] = ("status",)) -> str:
    """An HTML table of ``rows`` (dicts) in ``columns``, rendered by a jinja2 template that
    escapes every cell (:func:`cell_text`), except the ``raw`` columns, which hold HTML already
    (a status badge).

    Examples
    --------
    >>> table([{"check": "a < b", "status": badge("pass")}], ["check", "status"])[:60]
    "<table><thead><tr><th style='text-align:left'>check</th><th "
    >>> "<td>a &lt; b</td>" in table([{"check": "a < b"}], ["check"])
    True
    """
    from markupsafe import Markup

    cells = [[Markup(r.get(c, "")) if c in raw else cell_text(r.get(c, "")) for c in columns]
             for r in rows]
    return _table_template().render(columns=columns, rows=cells)


def cell_text(v: Any) -> str:
    """A value as a table cell shows it: yes/no, 4 significant digits, empty for None."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return number(v)
    if v is None:
        return ""
    return str(v)

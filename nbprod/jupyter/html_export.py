"""Self-contained HTML from an executed report notebook: code hidden, no external URLs.

nbconvert's HTML exporter does the work; inputs tagged ``remove-input``/``hide-input`` are
dropped and prompts are hidden. The report needs no JavaScript (tables and inline SVG plots),
so the template's scripts — which would fetch MathJax and Mermaid from a CDN — are removed, as
are the stylesheet comments that cite web pages. Any ``http(s)://`` address left in the page is
an error rather than shipped; an address written in the page's text (a column named
``see http://...``, quoted in a message) is text, not a fetch, and its ``:`` is written as
``&#58;`` so that it shows unchanged and the check stays strict for the markup.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..exceptions import InputError, NbprodError

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.I | re.S)
_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.I | re.S)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_URL = re.compile(r"https?://", re.I)
_TEXT = re.compile(r">([^<>]+)<")  # a text node between two tags


def to_html(notebook: str | Path) -> str:
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    path = Path(notebook)
    if not path.is_file():
        raise InputError(f"report notebook {str(path)!r} does not exist.")
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:
        raise InputError(f"{str(path)!r} is not a readable notebook: {exc}") from None
    c = Config()
    c.TagRemovePreprocessor.remove_input_tags = ("remove-input", "hide-input", "injected-parameters")
    c.TagRemovePreprocessor.remove_cell_tags = ("remove-cell",)
    c.TagRemovePreprocessor.enabled = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    c.HTMLExporter.mathjax_url = ""
    c.HTMLExporter.require_js_url = ""
    c.HTMLExporter.preprocessors = [TagRemovePreprocessor]
    exporter = HTMLExporter(config=c)
    body, _ = exporter.from_notebook_node(nb)
    body = _SCRIPT.sub("", body)
    body = _STYLE.sub(lambda m: m.group(1) + _CSS_COMMENT.sub("", m.group(2)) + m.group(3), body)
    body = _text_addresses_defused(body)
    left = _URL.search(body)
    if left:
        context = body[max(0, left.start() - 40):left.start() + 60].replace("\n", " ")
        raise NbprodError(f"the HTML report would still contain an external URL: ...{context}...")
    return body


def _text_addresses_defused(body: str) -> str:
    """``body`` with ``http(s)://`` in its text nodes written ``http(s)&#58;//`` (the same text
    on screen); style sheets and attributes are left as they are, for the URL check."""
    parts = _STYLE.split(body)  # [outside, open tag, css, close tag, outside, ...]
    for i in range(0, len(parts), 4):
        parts[i] = _TEXT.sub(lambda m: ">" + re.sub(r"(?i)(https?):(?=//)", r"\1&#58;",
                                                       m.group(1)) + "<", parts[i])
    return "".join(parts)


def write_html(notebook: str | Path, output: str | Path | None = None) -> Path:
    from ..core.files import atomic_path

    out = Path(output) if output else Path(notebook).with_suffix(".html")
    body = to_html(notebook)
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(body)
    return out

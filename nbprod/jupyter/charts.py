"""nbprod's one way to draw a plot: inline SVG, written as text.

Every chart nbprod shows (the scoring report's distributions, the drift explorer's column) is a
grouped bar chart of shares, built here as an ``<svg>`` element: a static image that survives
papermill, nbconvert and HTML export, needs no plotting library, and costs nothing to import on
the scoring path.
"""

from __future__ import annotations

import html

from ..core.results import number

REFERENCE_FILL = "#8c959f"
CURRENT_FILL = "#0969da"
DRIFTED_FILL = "#cf222e"


def bars_svg(title: str, labels: list[object], ref: list[float], cur: list[float] | None = None,
             *, drifted: bool = False) -> str:
    """Reference (grey) and current (blue; red when ``drifted``) shares as grouped bars.

    Parameters
    ----------
    title : str
        The chart's title (a column name); `` (drifted)`` is added when ``drifted``.
    labels : list
        One label per group of bars (a bin's lower edge or a category).
    ref, cur : list of float
        The reference and current shares, one per label; ``cur`` None draws the reference alone.
    drifted : bool
        Whether the column drifted (colours the current bars red).

    Returns
    -------
    str
        An ``<svg>`` element; each bar's tooltip gives its label and share.

    Examples
    --------
    >>> svg = bars_svg("spend", ["0", "10"], [0.5, 0.5], [0.2, 0.8], drifted=True)
    >>> svg.startswith("<svg") and "spend (drifted)" in svg and svg.count("<rect") == 4
    True
    """
    width, height, pad, top = 300, 170, 28, 22
    n = max(len(labels), 1)
    peak = max(max(ref, default=0), max(cur or [], default=0)) or 1.0
    slot = (width - 2 * pad) / n
    bar = slot * 0.4 if cur is not None else slot * 0.8
    scale = (height - top - pad) / peak
    colour = DRIFTED_FILL if drifted else CURRENT_FILL
    parts = [f'<svg width="{width}" height="{height}" '
             f'role="img" aria-label="{html.escape(title)}">',
             f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="12" '
             f'font-family="sans-serif">{html.escape(title)}{" (drifted)" if drifted else ""}</text>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
             'stroke="#57606a" stroke-width="1"/>']
    series = [(ref, 0.0, REFERENCE_FILL)] + ([(cur, bar, colour)] if cur is not None else [])
    for i in range(len(labels)):
        x = pad + i * slot + slot * 0.1
        for values, dx, fill in series:
            h = values[i] * scale
            parts.append(f'<rect x="{x + dx:.1f}" y="{height - pad - h:.1f}" width="{bar:.1f}" '
                         f'height="{h:.1f}" fill="{fill}"><title>{html.escape(str(labels[i]))}: '
                         f'{number(values[i])}</title></rect>')
    step = max(1, n // 5)
    for i in range(0, len(labels), step):
        x = pad + i * slot + slot / 2
        parts.append(f'<text x="{x:.1f}" y="{height - pad + 12}" text-anchor="middle" font-size="9" '
                     f'font-family="sans-serif">{html.escape(str(labels[i])[:9])}</text>')
    parts.append(f'<text x="4" y="{top + 8}" font-size="9" font-family="sans-serif">{number(peak)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend(reference_label: str, current_label: str, *, drifted_label: str | None = None) -> str:
    """The colour key under a chart, as an HTML paragraph.

    Examples
    --------
    >>> "this batch" in legend("reference (train)", "this batch")
    True
    """
    keys = [(REFERENCE_FILL, reference_label), (CURRENT_FILL, current_label)]
    if drifted_label:
        keys.append((DRIFTED_FILL, drifted_label))
    return ('<p style="font-size:85%">'
            + " ".join(f'<span style="color:{c}">&#9632;</span> {html.escape(t)}' for c, t in keys)
            + "</p>")

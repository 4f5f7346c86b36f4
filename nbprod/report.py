"""HTML pieces of the scoring report: verdict first, then evidence.

Each function returns an object with ``_repr_html_`` (and a plain-text ``__repr__``), so it
renders in JupyterLab, in the executed notebook's HTML, and in a terminal alike.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

_COLOURS = {"ok": "#1a7f37", "warn": "#9a6700", "alert": "#cf222e", "error": "#cf222e",
            "pass": "#1a7f37", "fail": "#cf222e", "skip": "#57606a"}


@dataclass
class Html:
    html: str
    text: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def badge(status: str) -> str:
    colour = _COLOURS.get(status, "#57606a")
    return (
        f'<span style="background:{colour};color:white;border-radius:4px;padding:1px 8px;'
        f'font-weight:600">{html.escape(status.upper())}</span>'
    )


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            cells.append(f"<td>{v if c == 'status' else html.escape(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return ""
    return str(v)


def verdict(run) -> Html:
    s = run.summary()
    status = s["status"]
    art = s["artifact"]
    failed = [c for c in s["checks"] if c["status"] in ("fail", "warn")]
    what = {
        "ok": "The model scored this batch and every check passed.",
        "warn": "The model scored this batch; some checks raised warnings.",
        "alert": "The model scored this batch, but a check failed: look before trusting it.",
    }[status]
    lines = [f"<h2>Verdict: {badge(status)}</h2>", f"<p>{html.escape(what)}</p>"]
    if failed:
        lines.append("<ul>")
        lines += [f"<li>{badge(c['status'])} {html.escape(c['message'])}</li>" for c in failed]
        lines.append("</ul>")
    override = art.get("override")
    if override:
        lines.append(
            f"<p>{badge('warn')} <b>Packaged past failed checks</b> by {html.escape(str(override['by']))} "
            f"at {html.escape(str(override['at']))}: {html.escape(', '.join(override['checks']))}.</p>"
        )
    out = s["output"] or "(not written)"
    lines.append(
        f"<p>{s['rows']:,} rows from <code>{html.escape(s['input'])}</code> scored by "
        f"<b>{html.escape(art['name'])}</b> ({art['task']}) into <code>{html.escape(out)}</code>.</p>"
    )
    text = f"Verdict: {status.upper()} - {what} {s['rows']} rows scored into {out}."
    if override:
        text += f" OVERRIDE: packaged past failed checks {', '.join(override['checks'])} by {override['by']}."
    return Html("\n".join(lines), text)


def details(run) -> Html:
    s = run.summary()
    parts = ["<h3>Input checks</h3>"]
    rows = [{"status": badge(c["status"]), "check": c["name"], "message": c["message"]}
            for c in s["checks"]]
    parts.append(table(rows, ["status", "check", "message"]))
    parts.append("<h3>Predictions</h3>")
    pred = s["prediction"]
    parts.append(table([{"statistic": k, "value": v} for k, v in pred.get("class_counts", pred).items()],
                       ["statistic", "value"]))
    if s["performance"]:
        perf = s["performance"]
        parts.append(f"<h3>Performance ({perf['labelled_rows']:,} labelled rows)</h3>")
        parts.append(table([{"metric": k, "value": v} for k, v in perf.get("metrics", {}).items()],
                           ["metric", "value"]))
    art = s["artifact"]
    parts.append("<h3>Artifact</h3>")
    parts.append(table([
        {"field": "name", "value": art["name"]},
        {"field": "path", "value": art["path"]},
        {"field": "artifact id", "value": art["artifact_id"]},
        {"field": "digest", "value": art["digest"][:16]},
        {"field": "timings (s)", "value": ", ".join(f"{k}={v}" for k, v in s["timings"].items())},
    ], ["field", "value"]))
    return Html("\n".join(parts), f"{s['rows']} rows; checks: " +
                ", ".join(f"{c['name']}={c['status']}" for c in s["checks"]))

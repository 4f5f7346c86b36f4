"""The scoring report: verdict first, then evidence and plots.

Each function takes a :class:`~nbprod.jobs.run.ScoringRun` and returns something the notebook
displays: HTML objects (with a plain-text form for terminals; plots are inline SVG), so the
report survives papermill, nbconvert and HTML export with the code hidden.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from ..core.results import fmt, listing, number
from ..core.tables import Html, badge, cell_text, table

MAX_DRIFT_ROWS = 30
PLOT_COLUMNS = 4


_PLAIN = {
    "ok": "The model scored this batch and every check passed.",
    "warn": "The model scored this batch; some checks raised warnings worth a look.",
    "alert": "The model scored this batch, but a monitoring check failed: look before trusting it.",
}


def verdict(run) -> Html:
    s = run.summary()
    status = s["status"]
    art = s["artifact"]
    lines = [f"<h2>Verdict: {badge(status)}</h2>", f"<p>{html.escape(_PLAIN[status])}</p>"]
    text = [f"Verdict: {status.upper()} - {_PLAIN[status]}"]
    flagged = [c for c in s["checks"] if c["status"] in ("fail", "warn")]
    if flagged:
        lines.append("<ul>")
        for c in sorted(flagged, key=lambda c: c["status"] != "fail"):
            lines.append(f"<li>{badge(c['status'])} <b>{html.escape(c['name'])}</b>: "
                         f"{html.escape(c['message'])}</li>")
            text.append(f"  {c['status'].upper()} {c['name']}: {c['message']}")
        lines.append("</ul>")
    retrain = s.get("retrain") or {}
    if retrain.get("recommended"):
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in retrain["reasons"])
        lines.append(f"<p><b>Retraining is recommended.</b></p><ul>{reasons}</ul>")
        if retrain.get("command"):
            lines.append(f"<p>Retrain with: <code>{html.escape(retrain['command'])}</code></p>")
        text.append("Retraining is recommended: " + "; ".join(retrain["reasons"]))
    elif retrain:
        note = retrain.get("note") or "no performance problem and no persistent drift"
        lines.append(f"<p>Retraining is not needed now ({html.escape(note)}).</p>")
        text.append(f"Retraining is not needed now ({note}).")
    override = art.get("override")
    if override:
        lines.append(
            f"<p>{badge('warn')} <b>Packaged past failed checks</b> by "
            f"{html.escape(str(override['by']))} at {html.escape(str(override['at']))}: "
            f"{html.escape(', '.join(override['checks']))}.</p>")
        text.append(f"OVERRIDE: packaged past failed checks {', '.join(override['checks'])} "
                    f"by {override['by']}.")
    out = s["output"] or "(not written)"
    rows_in = s.get("rows_in", s["rows"])
    counted = f"{s['rows']:,} rows" if rows_in == s["rows"] else f"{s['rows']:,} of {rows_in:,} rows"
    lines.append(
        f"<p>{counted} from <code>{html.escape(s['input'])}</code> scored by "
        f"<b>{html.escape(art['name'])}</b> ({art['task']}) into <code>{html.escape(out)}</code>.</p>")
    text.append(f"{counted} scored into {out}.")
    if s.get("rejected") or s.get("flagged"):
        where = f" Issues in {s['issues_path']}." if s.get("issues_path") else ""
        said = (f"{s.get('rejected', 0):,} row(s) rejected (not scored), {s.get('flagged', 0):,} "
                f"flagged (scored, outside what the model saw).{where}")
        lines.append(f"<p>{html.escape(said)}</p>")
        text.append(said)
    return Html("\n".join(lines), "\n".join(text))


def checks_table(run, kinds: tuple[str, ...] = ("input", "output", "tracking")) -> Html:
    rows = [{"status": badge(c.status), "check": c.name, "result": c.message}
            for c in run.checks if c.kind in kinds]
    text = "\n".join(f"{c.status.upper():<5} {c.name}: {c.message}" for c in run.checks if c.kind in kinds)
    issues = row_issues(run)
    return Html("<h3>Input and output checks</h3>" + table(rows, ["status", "check", "result"])
                + issues.html, text + ("\n" + issues.text if issues.text else ""))


ISSUE_FIELDS = ["row", "column", "value", "rule", "action", "detail"]


def row_issues(run) -> Html:
    """The first rejected and flagged rows (``input:rows`` details); empty when there are none."""
    check = next((c for c in run.checks if c.name == "input:rows"), None)
    first = (check.details or {}).get("first") if check else None
    if not first:
        return Html("", "")
    ident = [k for k in first[0] if k not in ISSUE_FIELDS]
    columns = ["row", *ident, *ISSUE_FIELDS[1:]]
    total = check.details.get("issues", len(first))
    where = check.details.get("issues_path")
    more = f" The first {len(first)} of {total:,} are shown." if total > len(first) else ""
    file_note = f" The issues file is <code>{html.escape(where)}</code>." if where else ""
    head = (f"<h4>Row issues</h4><p>Rejected rows were not scored; flagged rows were scored "
            f"but lie outside what the model saw.{more}{file_note}</p>")
    text = "Row issues: " + "; ".join(
        f"row {r['row']} {r['column'] or '(model)'} {r['rule']} ({r['action']})" for r in first[:10])
    return Html(head + table(first, columns), text)


def drift_table(run) -> Html:
    d = run.drift
    ds = d["dataset"]
    cols = sorted(d["columns"].items(), key=lambda kv: -kv[1]["score"])
    rows = []
    for name, c in cols[:MAX_DRIFT_ROWS]:
        rows.append({
            "column": name,
            "importance": c.get("importance"),
            "status": badge("fail" if c["drifted"] else "pass"),
            "why": ", ".join(c["reasons"]),
            "PSI (threshold)": _pair(c.get("psi"), c.get("psi_threshold")),
            "Wasserstein/σ (threshold)": _pair(c.get("wasserstein"), c.get("wasserstein_threshold")),
            "null rate Δ": c.get("null_rate_change"),
            "new categories": c.get("new_share"),
            "KS p (info)": c.get("ks_pvalue"),
        })
    more = f"<p>{len(cols) - MAX_DRIFT_ROWS} more columns in the summary JSON.</p>" if len(cols) > MAX_DRIFT_ROWS else ""
    state = "fail" if ds["drifted"] else ("warn" if ds["drifted_columns"] else "pass")
    head = (f"<h3>Data drift {badge(state)}</h3>"
            f"<p>{len(ds['drifted_columns'])} of {len(cols)} input columns drifted; "
            f"importance-weighted share {ds['weighted_share']:.0%} (alarm at {ds['threshold']:.0%}). "
            f"Rule: {html.escape(ds['rule'])}. A column drifts when a statistic exceeds both its "
            f"minimum effect size and its noise level at this batch size; p-values are shown for "
            f"information only.</p>")
    columns = ["column", "importance", "status", "why", "PSI (threshold)",
               "Wasserstein/σ (threshold)", "null rate Δ", "new categories", "KS p (info)"]
    text = (f"Data drift: {len(ds['drifted_columns'])} of {len(cols)} columns drifted "
            f"(weighted share {ds['weighted_share']:.0%}): {', '.join(ds['drifted_columns'])}")
    mv = d.get("multivariate")
    if mv:  # joint drift over the numeric inputs (monitoring.joint)
        state = "fail" if mv["drifted"] else ("pass" if mv["statistic"] is not None else "skip")
        head += (f"<p>{badge(state)} <b>Joint drift</b> over {len(mv['columns'])} numeric columns "
                 f"(PCA reconstruction error, {mv['components'] or 0} components): "
                 f"{html.escape(mv['reason'])}.</p>")
        text += f"\nJoint drift: {mv['reason']}"
    return Html(head + table(rows, columns) + more, text)


def _pair(v: float | None, t: float | None) -> str:
    return "" if v is None else f"{fmt(v)} ({'' if t is None else fmt(t)})"


def drift_plots(run, top: int = PLOT_COLUMNS) -> Any:
    """Reference versus current distributions of the most drifted columns, as inline SVG, drawn
    from the binned profiles the run merged over its chunks (no row is binned again)."""
    d = run.drift
    ranked = [c for c, _ in sorted(d["columns"].items(), key=lambda kv: -kv[1]["score"])]
    drifted = [c for c in ranked if d["columns"][c]["drifted"]]
    chosen = (drifted + [c for c in ranked if c not in drifted])[:top]
    profile = run.artifact.snapshot("train")["profile"]
    merged = (run.profiles or {}).get("columns") or {}  # the batch's binned counts, merged

    panels = []
    for col in chosen:
        ref = profile[col]
        cur = merged.get(col)
        if ref.get("hidden") or cur is None:
            continue
        bars = distribution_bars(ref, cur)
        if bars:
            panels.append((col, d["columns"][col]["drifted"], *bars))
    if not panels:
        return Html("<p>No column to plot.</p>", "No column to plot.")
    return _svg_panels(panels)


def distribution_bars(ref: dict[str, Any], cur: dict[str, Any]) -> tuple[list[str], list[float], list[float]] | None:
    """(labels, reference shares, current shares) of a column's binned profiles, grouped for a
    bar chart (at most 20 numeric groups or 12 categories); None when there is nothing to draw."""
    import numpy as np

    if ref["type"] == "numeric" and "counts" in ref and "counts" in cur:
        rc = np.asarray(ref["counts"], dtype=float)
        cc = np.asarray(cur["counts"], dtype=float)
        if cc.sum() == 0:
            return None
        groups = np.array_split(np.arange(rc.size), min(20, rc.size))
        cuts = [ref["min"]] + list(ref["cuts"]) + [ref["max"]]
        labels = [number(cuts[g[0]]) for g in groups]
        return (labels, [rc[g].sum() / rc.sum() for g in groups],
                [cc[g].sum() / cc.sum() for g in groups])
    if ref["type"] == "categorical" and "frequencies" in ref and "frequencies" in cur:
        m = sum(ref["frequencies"].values()) + ref.get("other_count", 0)
        n = sum(cur["frequencies"].values())
        if n == 0:
            return None
        keys = list(ref["frequencies"])[:12]
        extra = [k for k in ("__new__", "__other__") if cur["frequencies"].get(k)]
        labels = keys + extra
        return (labels, [ref["frequencies"].get(k, 0) / m for k in labels],
                [cur["frequencies"].get(k, 0) / n for k in labels])
    return None


def _svg_panels(panels: list[tuple]) -> Html:
    """Grouped bar charts as inline SVG (:mod:`nbprod.jupyter.charts`): a static image that
    survives papermill and HTML export, drawn without a plotting library on the scoring path."""
    from .charts import bars_svg, legend

    figures = [bars_svg(col, labels, ref, cur, drifted=drifted)
               for col, drifted, labels, ref, cur in panels]
    body = "".join(f'<div style="display:inline-block;margin:0 12px 8px 0">{f}</div>' for f in figures)
    key = legend("reference (train)", "this batch", drifted_label="this batch, drifted column")
    return Html(f'<div class="nbprod-drift-plots">{body}{key}</div>',
                "Reference vs current distributions: " + ", ".join(p[0] for p in panels))


def predictions(run) -> Html:
    p = run.drift["predictions"]
    rows = [{"output": name, "status": badge("warn" if c["drifted"] else "pass"),
             "PSI (threshold)": _pair(c.get("psi"), c.get("psi_threshold")),
             "Wasserstein/σ (threshold)": _pair(c.get("wasserstein"), c.get("wasserstein_threshold"))}
            for name, c in p["columns"].items()]
    summary = run.summary()["prediction"]
    dist = ", ".join(f"{k}: {cell_text(v)}" for k, v in summary.get("class_counts", summary).items())
    text = f"Prediction drift: {'yes' if p['drifted'] else 'no'}; {dist}"
    out = (f"<h3>Predictions</h3><p>{html.escape(dist)}. Compared with the model's outputs on the "
           f"{p['reference']} snapshot:</p>" + table(rows, ["output", "status", "PSI (threshold)",
                                                            "Wasserstein/σ (threshold)"]))
    feats = run.drift.get("features")
    if feats is not None:
        out += (f"<p>Model-input features drifted: {html.escape(listing(feats['drifted'], 20) or 'none')}"
                f" (of {len(feats['columns'])}).</p>")
    return Html(out, text)


def explained(run, top: int | None = None) -> Html:
    """The most extreme and the flagged predictions, each with its largest contributions:
    ``base value + contributions (shown and the rest) = output``, on the named scale."""
    from ..core.results import number
    from ..monitoring.notable import TOP

    top = TOP if top is None else top
    e = getattr(run, "explained", None)
    if not e:
        return Html("", "")
    head = "<h3>Why: the most extreme and the flagged predictions</h3>"
    if not e.get("rows"):
        text = f"Explanations: {e.get('message', 'none')}"
        return Html(f"{head}<p>{html.escape(text)}</p>", text)
    rows = []
    for r in e["rows"]:
        parts = r["contributions"]
        shown = "; ".join(f"{c['feature']} = {c['value'] if c['value'] is not None else 'missing'}: "
                          f"{'+' if c['contribution'] >= 0 else '−'}{number(abs(c['contribution']))}"
                          for c in parts[:top])
        rest = sum(c["contribution"] for c in parts[top:])
        rows.append({"why": r["why"], "row": r["row"], "id": r.get("id"),
                     e.get("score", "score"): r["score"], "class": r.get("class"),
                     "base value": r["base_value"], f"top {top} contributions": shown,
                     "the rest": rest if len(parts) > top else None, "output": r["output"]})
    columns = ["why", "row", *(["id"] if any("id" in r for r in e["rows"]) else []),
               e.get("score", "score"), *(["class"] if any(r.get("class") for r in e["rows"]) else []),
               "base value", f"top {top} contributions", "the rest", "output"]
    note = (f"Contributions on the {e['scale']} scale (method {e['method']}): how far each model "
            "input moved this row's output from the base value (the average output over the "
            "reference rows). They describe the model, not the world; correlated inputs share "
            "credit. Base value + contributions = output.")
    if e["budget"].get("status") == "sampled":
        note += f" Only some rows were explained: {e['budget'].get('reason', '')}."
    text = (f"Explained {len(rows)} row(s) on the {e['scale']} scale: "
            + "; ".join(f"row {r['row']} ({r['why']})" for r in rows))
    return Html(f"{head}{table(rows, columns)}<p><small>{html.escape(note)}</small></p>", text)


def performance(run) -> Html:
    shown = _performance(run)
    est = estimated(run)
    return Html(shown.html + est.html, shown.text + ("\n" + est.text if est.text else ""))


def estimated(run) -> Html:
    """Performance estimated without labels, beside the realised values once labels came."""
    from ..monitoring.estimation import LABELS

    est = getattr(run, "estimated_performance", None)
    if not est:
        return Html("", "")
    if not est.get("metrics"):
        return Html(f"<h3>Estimated performance</h3><p>{html.escape(est['reason'])}.</p>",
                    f"Estimated performance: {est['reason']}.")
    realised = {k: v.get("value") for k, v in ((run.performance or {}).get("metrics") or {}).items()}
    rows = [{"metric": LABELS.get(name, name), "estimated": m["value"], "lower": m["lower"],
             "upper": m["upper"], "realised": realised.get(name), "validation": m["validation"],
             "status": badge("warn" if m["dropped"] else "pass")}
            for name, m in est["metrics"].items()]
    notes = [est["method"], "Assumes " + est["assumption"]]
    if est.get("reliability", "ok") != "ok":
        notes.append("Reliability " + est["reliability"])
    out = (f"<h3>Estimated performance ({est['rows']:,} rows, no labels needed)</h3>"
           + table(rows, ["metric", "status", "estimated", "lower", "upper", "realised", "validation"])
           + "".join(f"<p>{html.escape(n)}.</p>" for n in notes))
    return Html(out, f"Estimated performance: {est['reason']}")


def _performance(run) -> Html:
    perf = run.performance
    if not perf:
        return Html("<h3>Performance</h3><p>No labels for this batch (pass <code>labels_path</code> "
                    "when they arrive).</p>", "Performance: no labels for this batch.")
    checks = {c.name: c for c in run.checks if c.kind == "performance"}
    rows = []
    for name, m in perf["metrics"].items():
        c = checks.get(f"performance:{name}")
        rows.append({"metric": name, "status": badge(c.status) if c else "",
                     "this batch": m.get("value"), "validation": m.get("validation"),
                     "decay": m.get("decay"), "tolerated decay": m.get("tolerance"),
                     "minimum": m.get("min"), "maximum": m.get("max"), "note": m.get("error")})
    text = "Performance: " + ", ".join(f"{k} {cell_text(v.get('value'))}" for k, v in perf["metrics"].items())
    labels = next((c for c in run.checks if c.name == "labels"), None)
    note = ""
    if labels is not None:
        note = f"<p>{badge(labels.status)} Labels: {html.escape(labels.message)}</p>"
        text += f"\nLabels: {labels.status.upper()} {labels.message}"
    return Html(f"<h3>Performance ({perf['labelled_rows']:,} labelled rows)</h3>" + note
                + table(rows, ["metric", "status", "this batch", "validation", "decay",
                               "tolerated decay", "minimum", "maximum", "note"]), text)


def history(run) -> Any:
    past = list(reversed(run.history))  # oldest first
    current = {"start_time": None, "status": run.status, "rows": run.row_count,
               "drift_share": run.drift["dataset"]["weighted_share"],
               "performance": {k: v.get("value") for k, v in (run.performance or {}).get("metrics", {}).items()},
               "estimated": {k: v.get("value") for k, v in
                             ((getattr(run, "estimated_performance", None) or {}).get("metrics") or {}).items()}}
    series = past + [current]
    if len(series) < 2:
        return Html("<h3>History</h3><p>First monitored run of this artifact.</p>",
                    "History: first monitored run of this artifact.")
    rows = []
    for h in series[-12:]:
        when = (datetime.fromtimestamp(h["start_time"] / 1000, UTC).strftime("%Y-%m-%d %H:%M")
                if h["start_time"] else "this run")
        rows.append({"run": when, "status": badge(_status(h["status"])), "rows": h.get("rows"),
                     "drift share": h.get("drift_share"),
                     **{k: v for k, v in (h.get("performance") or {}).items()},
                     **{f"est. {k}": v for k, v in (h.get("estimated") or {}).items()}})
    metric_cols = sorted({k for h in series for k in (h.get("performance") or {})}
                         | {f"est. {k}" for h in series for k in (h.get("estimated") or {})},
                         key=lambda k: (k.removeprefix("est. "), k.startswith("est. ")))
    out = ("<h3>History</h3>" + table(rows, ["run", "status", "rows", "drift share", *metric_cols]))
    text = "History: " + " -> ".join(f"{cell_text(h.get('drift_share'))}" for h in series[-12:])
    return Html(out, text)


def _status(s: str | None) -> str:
    return s or "skip"


def details(run) -> Html:
    s = run.summary()
    art = s["artifact"]
    rows = [
        {"field": "artifact", "value": f"{art['name']} at {art['path']}"},
        {"field": "artifact id", "value": art["artifact_id"]},
        {"field": "digest", "value": art["digest"][:16]},
        {"field": "timings (s)", "value": ", ".join(f"{k}={number(v)}" for k, v in s["timings"].items())},
    ]
    tr = s.get("tracking") or {}
    if tr.get("run_id"):
        rows.append({"field": "MLflow run", "value": f"{tr['run_id']} in {tr['experiment']} ({tr['tracking_uri']})"})
    elif tr.get("error"):
        rows.append({"field": "MLflow", "value": tr["error"]})
    return Html("<h3>Details</h3>" + table(rows, ["field", "value"]),
                "; ".join(f"{r['field']}: {r['value']}" for r in rows))

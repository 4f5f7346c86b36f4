"""The drift explorer: one column's reference and current distributions, with its statistics.

``nbprod.explore(source)`` works on whatever a scoring run leaves behind:

- a scoring run: the ``job`` of a scoring notebook (``nbprod.scoring_job``), or the
  :class:`~nbprod.jobs.run.ScoringRun` that :func:`nbprod.jobs.run.execute` returns;
- its summary: a dict, or the path of the summary JSON;
- the executed report notebook (papermill's output). The summary is read from the
  ``summary_path`` parameter when that file still exists; otherwise the batch is binned again
  from the notebook's parameters (``input_path``, ``output_path``, ``artifact_path`` or the
  packaging location written in the notebook). Nothing is scored again.

The reference distributions come from the artifact (the train snapshot's profile for inputs,
``reference.json`` for the model's outputs); the current ones are the batch's counts in the
same bins (``drift.profiles`` of the summary). The statistics are those the run decided with.

This module is the pure-Python core: :class:`Explorer` answers questions and renders static
HTML. Displayed in a notebook it becomes an interactive panel when widgets are available; that
face lives in :mod:`nbprod.jupyter.widgets`.
"""

from __future__ import annotations

import ast
import difflib
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import IntegrityError, NbprodUsageError

GROUPS = {"inputs": "input column", "predictions": "model output"}
MAX_CATEGORIES = 12


# -- where a run's files are -------------------------------------------------------------------
@dataclass
class RunRecord:
    """What a scoring run left: its summary (when known) and the files it read and wrote."""

    summary: dict[str, Any] | None
    artifact_root: Path | None
    input_path: str | None = None
    output_path: str | None = None
    labels_path: str | None = None
    run: Any = None  # the live ScoringRun, when the source was one
    source: str = ""


def locate(source: Any, *, artifact: str | Path | None = None) -> RunRecord:
    """Resolve a ScoringRun, a summary (dict or JSON path) or a report notebook path."""
    from ..jobs.run import ScoringRun
    from .scoring_job import ScoringJob

    if isinstance(source, ScoringJob):  # what the scoring notebook calls `job`
        source = source.run
    if isinstance(source, ScoringRun):
        s = source.summary()
        return RunRecord(s, Path(artifact) if artifact else source.artifact.root, s["input"],
                         s["output"], s.get("labels"), run=source, source="scoring run")
    if isinstance(source, dict):
        return _from_summary(source, artifact, "summary")
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise NbprodUsageError(f"{str(path)!r} does not exist; pass a ScoringRun, a summary "
                                   "JSON or an executed report notebook.")
        if path.suffix == ".ipynb":
            return _from_notebook(path, artifact)
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise NbprodUsageError(f"{str(path)!r} is not a summary JSON: {exc}") from None
        if not isinstance(summary, dict) or "drift" not in summary:
            raise NbprodUsageError(f"{str(path)!r} is not an nbprod run summary (no 'drift').")
        return _from_summary(summary, artifact, str(path))
    raise NbprodUsageError(
        "Expected a ScoringRun, a summary (dict or JSON path) or an executed report notebook. "
        f"Got {type(source).__name__}.")


def _from_summary(s: dict[str, Any], artifact: Any, source: str) -> RunRecord:
    root = Path(artifact) if artifact else Path((s.get("artifact") or {}).get("path") or ".")
    return RunRecord(s, root, s.get("input"), s.get("output"), s.get("labels"), source=source)


def _literals(source: str) -> dict[str, Any]:
    """``NAME = literal`` assignments and literal keyword arguments of calls in ``source``."""
    out: dict[str, Any] = {}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return out
    for node in ast.walk(tree):
        pairs: list[tuple[str, ast.AST]] = []
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            pairs = [(node.targets[0].id, node.value)]
        elif isinstance(node, ast.Call):
            pairs = [(k.arg, k.value) for k in node.keywords if k.arg]
        for name, value in pairs:
            try:
                out[name] = ast.literal_eval(value)
            except ValueError:
                continue
    return out


def _from_notebook(path: Path, artifact: Any) -> RunRecord:
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:
        raise NbprodUsageError(f"{str(path)!r} is not a readable notebook: {exc}") from None
    if "nbprod" not in nb.metadata:
        raise NbprodUsageError(f"{str(path)!r} is not an nbprod scoring report.")
    params: dict[str, Any] = {}
    call: dict[str, Any] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags or "injected-parameters" in tags:
            params.update(_literals(cell.source))
        elif "nbprod.scoring_job(" in cell.source or "nbprod.run.execute(" in cell.source:
            call = _literals(cell.source)  # the call of this layout, or of notebooks before it
    params.update(nb.metadata.get("papermill", {}).get("parameters") or {})

    def where(p: Any) -> str | None:  # relative paths: the working directory, else the notebook's
        if not p:
            return None
        here = Path(p)
        return str(here if here.is_absolute() or here.exists() else path.parent / here)

    summary_path = where(params.get("summary_path"))
    summary = None
    if summary_path and Path(summary_path).is_file():
        summary = json.loads(Path(summary_path).read_text(encoding="utf-8"))
    root = artifact or where(params.get("artifact_path"))
    if root is None and summary is not None:
        root = summary["artifact"]["path"]
    if root is None:
        from ..jobs.run import locate_artifact

        root = locate_artifact(None, call.get("packaged_at"), nb.metadata["nbprod"].get("artifact_id"))
    return RunRecord(summary, Path(root), where(params.get("input_path")),
                     where(params.get("output_path")), where(params.get("labels_path")),
                     source=str(path))


def open_artifact(record: RunRecord) -> Any:
    """The run's artifact, read (not loaded: no model is deserialised) and checked to be the one
    that scored the batch."""
    from ..core import manifest as mf
    from ..core.artifact import Artifact

    if record.run is not None and record.artifact_root == record.run.artifact.root:
        return record.run.artifact
    root = record.artifact_root
    if root is None or not (root / "nbprod.json").is_file():
        raise IntegrityError(f"Cannot find the artifact that scored this batch (looked at {root}); "
                             "pass artifact=PATH.")
    art = Artifact(root, mf.read(root))
    expected = ((record.summary or {}).get("artifact") or {}).get("artifact_id")
    if expected and art.manifest.get("artifact_id") != expected:
        raise IntegrityError(f"The artifact at {root} is not the one that scored this batch "
                             f"(artifact id {expected}); pass artifact=PATH.")
    return art


# -- the explorer ------------------------------------------------------------------------------
@dataclass
class Group:
    """Reference profiles, current batch profiles and drift statistics of a set of columns."""

    reference: dict[str, dict[str, Any]]
    current: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    def ranked(self) -> list[str]:
        """Drifted columns first, then by importance-weighted severity."""
        names = [c for c in self.reference if c in self.current or not self.current]
        return sorted(names, key=lambda c: (not self.stats.get(c, {}).get("drifted", False),
                                            -self.stats.get(c, {}).get("score",
                                                                       self.stats.get(c, {}).get("severity", 0.0))))


class Explorer:
    """Reference versus current distributions and statistics, one column at a time.

    ``explorer.columns`` lists the input columns (drifted first), ``explorer.outputs`` the model
    outputs; :meth:`details`, :meth:`column_html` and :meth:`plot` describe one of them.
    """

    def __init__(self, groups: dict[str, Group], *, title: str,
                 reference_label: str = "reference (train)", current_label: str = "this batch",
                 note: str = "") -> None:
        self.groups = groups
        self.title = title
        self.reference_label = reference_label
        self.current_label = current_label
        self.note = note

    @property
    def columns(self) -> list[str]:
        return self.groups["inputs"].ranked() if "inputs" in self.groups else []

    @property
    def outputs(self) -> list[str]:
        return self.groups["predictions"].ranked() if "predictions" in self.groups else []

    def keys(self) -> list[tuple[str, str]]:
        return [(g, c) for g in GROUPS if g in self.groups for c in self.groups[g].ranked()]

    def choices(self) -> list[tuple[str, tuple[str, str]]]:
        """(label, key) pairs for a picker: drifted columns marked, outputs prefixed."""
        out = []
        for g, c in self.keys():
            drifted = self.groups[g].stats.get(c, {}).get("drifted")
            out.append((f"{'output: ' if g == 'predictions' else ''}{c}{' (drifted)' if drifted else ''}", (g, c)))
        return out

    def resolve(self, column: str | tuple[str, str] | None) -> tuple[str, str]:
        keys = self.keys()
        if not keys:
            raise NbprodUsageError("There is no column to explore.")
        if column is None:
            return keys[0]
        if isinstance(column, tuple) and column in keys:
            return column
        for g, c in keys:
            if c == column:
                return g, c
        near = difflib.get_close_matches(str(column), [c for _, c in keys], n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise NbprodUsageError(f"No column {column!r} to explore.{hint}")

    # -- one column ------------------------------------------------------------------------
    def details(self, column: str | tuple[str, str] | None = None) -> dict[str, Any]:
        """Everything known about one column: verdict, statistics, distribution."""
        g, c = self.resolve(column)
        grp = self.groups[g]
        ref, cur, st = grp.reference[c], grp.current.get(c), grp.stats.get(c, {})
        out: dict[str, Any] = {"column": c, "group": g, "type": ref["type"],
                               "hidden": bool(ref.get("hidden")), "drifted": st.get("drifted"),
                               "reasons": st.get("reasons", []), "importance": st.get("importance"),
                               "statistics": _statistic_rows(st), "summary": _summary_rows(ref, cur)}
        out["categories"] = _category_rows(ref, cur) if ref["type"] == "categorical" else None
        out["distribution"] = _distribution(ref, cur)
        return out

    def plot(self, column: str | tuple[str, str] | None = None) -> str | None:
        """Reference and current distributions as an inline SVG image with its colour key
        (HTML text; None for PII or empty columns)."""
        from .charts import bars_svg, legend

        d = self.details(column)
        if d["distribution"] is None:
            return None
        labels, ref, cur = d["distribution"]
        return (bars_svg(d["column"], labels, ref, cur, drifted=bool(d["drifted"]))
                + legend(self.reference_label, self.current_label))

    def column_html(self, column: str | tuple[str, str] | None = None, *, image: bool = True) -> str:
        from ..core.tables import badge, table

        d = self.details(column)
        state = "skip" if d["drifted"] is None else ("fail" if d["drifted"] else "pass")
        word = {"skip": "", "fail": "drifted", "pass": "no drift"}[state]
        why = f" ({html.escape(', '.join(d['reasons']))})" if d["reasons"] else ""
        imp = f"; importance {d['importance']:.0%}" if d["importance"] is not None else ""
        parts = [f"<h4>{html.escape(GROUPS[d['group']])} <code>{html.escape(d['column'])}</code> "
                 f"{badge(state) if word else ''} {word}{why}{imp}</h4>"]
        if d["statistics"]:
            parts.append(table(d["statistics"], ["statistic", "value", "threshold", "exceeded"]))
        for rows, first in ((d["summary"], ""), (d["categories"] or [], "category")):
            if rows:
                named = [{first: r[first], self.reference_label: r["reference"],
                          self.current_label: r["current"]} for r in rows]
                parts.append(table(named, [first, self.reference_label, self.current_label]))
        if d["hidden"]:
            parts.append("<p>PII column: only null counts are kept.</p>")
        svg = self.plot(column) if image else None
        if svg:
            parts.append(svg)
        return "\n".join(parts)

    def column_text(self, column: str | tuple[str, str] | None = None) -> str:
        d = self.details(column)
        state = "n/a" if d["drifted"] is None else ("DRIFTED" if d["drifted"] else "no drift")
        lines = [f"{d['column']}: {state}" + (f" ({', '.join(d['reasons'])})" if d["reasons"] else "")]
        lines += [f"  {r['statistic']}: {r['value']}" + (f" (threshold {r['threshold']})" if r["threshold"] else "")
                  for r in d["statistics"]]
        return "\n".join(lines)

    # -- all columns -----------------------------------------------------------------------
    def overview_rows(self) -> list[dict[str, Any]]:
        rows = []
        for g, c in self.keys():
            st = self.groups[g].stats.get(c, {})
            rows.append({"column": c, "kind": GROUPS[g], "drifted": st.get("drifted"),
                         "why": ", ".join(st.get("reasons", [])), "importance": st.get("importance"),
                         "PSI": st.get("psi"), "Wasserstein/σ": st.get("wasserstein"),
                         "null rate Δ": st.get("null_rate_change"), "new categories": st.get("new_share")})
        return rows

    def overview_html(self) -> str:
        from ..core.tables import table

        cols = ["column", "kind", "drifted", "why", "importance", "PSI", "Wasserstein/σ",
                "null rate Δ", "new categories"]
        return table(self.overview_rows(), cols)

    def html(self, column: str | tuple[str, str] | None = None) -> str:
        """Static form: every column's statistics, then one column (default: the most drifted)."""
        note = f"<p>{html.escape(self.note)}</p>" if self.note else ""
        return (f'<div class="nbprod-explorer"><h3>{html.escape(self.title)}</h3>{note}'
                f"{self.overview_html()}{self.column_html(column)}</div>")

    def text(self, column: str | tuple[str, str] | None = None) -> str:
        drifted = [c for c in self.columns if self.groups["inputs"].stats.get(c, {}).get("drifted")]
        return (f"{self.title}: {len(drifted)} of {len(self.columns)} input columns drifted"
                + (f" ({', '.join(drifted)})" if drifted else "") + "\n" + self.column_text(column))

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .widgets import bundle  # the face: an interactive panel, or this static HTML

        return bundle(self)

    def widget(self) -> Any:
        """The interactive panel (needs ipywidgets)."""
        from .widgets import ExplorerPanel

        return ExplorerPanel(self)


# -- building explorers ------------------------------------------------------------------------
def from_record(record: RunRecord) -> Explorer:
    """An explorer over a scoring run's batch against the artifact's reference."""
    from ..monitoring import drift as dr

    art = open_artifact(record)
    ref_inputs = art.snapshot("train")["profile"]
    ref_outputs = art.reference["outputs"]["profile"]
    drift = (record.summary or {}).get("drift") or {}
    profiles = drift.get("profiles")
    note = ""
    if profiles is None:  # an older summary, or no summary: bin the batch's files again
        profiles = _profiles_from_files(record, art, ref_inputs, ref_outputs)
        note = "Current distributions binned again from the run's input and output files."
    if drift.get("columns") is None:
        columns = dr.compare(ref_inputs, profiles["columns"])
        importance = {c: v["weight"] for c, v in (art.manifest.get("importance") or {}).get("columns", {}).items()}
        dr.dataset_verdict(columns, importance)
        preds = dr.compare(ref_outputs, profiles["predictions"])
    else:
        columns, preds = drift["columns"], (drift.get("predictions") or {}).get("columns", {})
    snapshot = art.reference["outputs"].get("snapshot", "valid")
    groups = {"inputs": Group(ref_inputs, profiles["columns"], columns)}
    if profiles.get("predictions"):
        groups["predictions"] = Group(ref_outputs, profiles["predictions"], preds)
    rows = (record.summary or {}).get("rows")
    title = f"Drift explorer: {art.name}" + (f", {rows:,} rows" if rows else "")
    if "predictions" in groups:
        note = (note + f" Outputs compare with the model's outputs on the {snapshot} snapshot.").strip()
    return Explorer(groups, title=title, note=note)


def _profiles_from_files(record: RunRecord, art: Any, ref_in: dict, ref_out: dict) -> dict[str, Any]:
    from ..core.dataio import read_frame
    from ..core.schema import conform
    from ..monitoring import drift as dr
    from ..monitoring.batch import shareable_profiles

    if not record.input_path or not Path(record.input_path).is_file():
        raise NbprodUsageError(
            f"The summary has no batch profiles and the input file {record.input_path!r} is gone; "
            "nothing to compare with the reference.")
    inputs = conform(read_frame(record.input_path, art.schema, what="input"), art.schema)
    out: dict[str, Any] = {"columns": shareable_profiles(dr.frame_batch_profile(inputs, ref_in), ref_in),
                           "predictions": {}}
    if record.output_path and Path(record.output_path).is_file():
        preds = read_frame(record.output_path, what="predictions")
        out["predictions"] = dr.frame_batch_profile(preds, ref_out)
    return out


def from_session(session: Any) -> Explorer:
    """Training versus validation snapshot of a capture session (the dashboard's Drift tab)."""
    from ..monitoring import drift as dr
    from ..monitoring.batch import shareable_profiles

    train, valid = session.train, session.valid
    ref = snapshot_profile(train)
    current: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    if valid is not None:
        cols = [c for c in train.feature_columns if c in valid.data.columns]
        current = shareable_profiles(dr.frame_batch_profile(valid.data[cols], ref), ref)
        stats = dr.compare(ref, current)
        dr.dataset_verdict(stats, None)
    note = "" if valid is not None else "No valid snapshot yet: the training distributions alone."
    return Explorer({"inputs": Group(ref, current, stats)}, title="Validation versus training",
                    reference_label="train snapshot", current_label="valid snapshot", note=note)


_PROFILE_CACHE: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}


def snapshot_profile(snap: Any) -> dict[str, Any]:
    """The snapshot's reference profile (as packaging computes it), cached by fingerprint."""
    from ..core.profile import frame_profile

    key = (snap.fingerprint, tuple(snap.pii))
    if key not in _PROFILE_CACHE:
        if len(_PROFILE_CACHE) >= 8:
            _PROFILE_CACHE.pop(next(iter(_PROFILE_CACHE)))
        _PROFILE_CACHE[key] = frame_profile(snap.X, hidden=set(snap.pii))
    return _PROFILE_CACHE[key]


def explore(source: Any, *, artifact: str | Path | None = None) -> Explorer:
    """The drift explorer of a scoring run: each column's verdict, statistics and distributions.

    Parameters
    ----------
    source : ScoringRun, dict, str or Path
        A scoring run, its summary (dict or JSON path) or its executed report notebook.
    artifact : str or Path, optional
        Where the artifact is, when it moved since the run.

    Returns
    -------
    Explorer
        Displayed in a notebook as an interactive panel (or static HTML); ``details(col)``,
        ``plot(col)`` and ``columns`` read it in code.

    Examples
    --------
    >>> job = nbprod.scoring_job(input_path=str(BATCH_CSV), output_path=str(TMP / "out.csv"),
    ...                          summary_path=str(TMP / "out.summary.json"),
    ...                          artifact_path=str(ARTIFACT), log_to_mlflow=False)
    >>> ex = nbprod.explore(str(TMP / "out.summary.json"))
    >>> ex.columns  # drifted first, then by importance times severity
    ['usage', 'plan', 'tenure']
    >>> ex.details("usage")["drifted"]
    False
    """
    return from_record(locate(source, artifact=artifact))


# -- rendering helpers -------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    """A table cell as every nbprod table shows it, empty for a statistic not measured (NaN)."""
    from ..core.tables import cell_text

    return "" if isinstance(v, float) and v != v else cell_text(v)


_STATISTICS = (  # (label, value key, threshold key)
    ("PSI", "psi", "psi_threshold"),
    ("Wasserstein / σ", "wasserstein", "wasserstein_threshold"),
    ("Jensen-Shannon distance", "jensen_shannon", None),
    ("share of new categories", "new_share", "new_share_threshold"),
    ("null rate change", "null_rate_change", "null_rate_threshold"),
    ("KS p-value (information only)", "ks_pvalue", None),
)


def _statistic_rows(st: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label, key, th in _STATISTICS:
        if st.get(key) is None:
            continue
        value, limit = st[key], st.get(th) if th else None
        exceeded = None if limit is None else abs(value) > limit
        rows.append({"statistic": label, "value": _fmt(value), "threshold": _fmt(limit),
                     "exceeded": exceeded})
    return rows


def _summary_rows(ref: dict[str, Any], cur: dict[str, Any] | None) -> list[dict[str, Any]]:
    def null_rate(p: dict[str, Any] | None) -> str:
        return f"{p['null_count'] / p['count']:.1%}" if p and p.get("count") else ""

    rows = [{"": "rows", "r": ref["count"], "c": cur["count"] if cur else None},
            {"": "null rate", "r": null_rate(ref), "c": null_rate(cur)}]
    if ref["type"] == "numeric" and "cuts" in ref:
        from ..core.profile import binned_quantiles, edges

        qs = (0.1, 0.5, 0.9)
        rq = binned_quantiles(ref["counts"], edges(ref), qs)
        cq = binned_quantiles(cur["counts"], edges(ref, cur), qs) if cur and "counts" in cur else [None] * 3
        rows.append({"": "min", "r": ref.get("min"), "c": cur.get("min") if cur else None})
        for q, r, c in zip(qs, rq, cq, strict=True):
            rows.append({"": f"{'median' if q == 0.5 else f'p{int(q * 100)}'} (binned)", "r": r, "c": c})
        rows.append({"": "max", "r": ref.get("max"), "c": cur.get("max") if cur else None})
        rows.append({"": "mean", "r": ref.get("mean"), "c": None})
    elif ref["type"] == "categorical" and "frequencies" in ref:
        rows.append({"": "categories (reference)", "r": len(ref["frequencies"]), "c": None})
    return [{"": r[""], "reference": _fmt(r["r"]), "current": _fmt(r["c"])} for r in rows]


def _category_rows(ref: dict[str, Any], cur: dict[str, Any] | None) -> list[dict[str, Any]]:
    if "frequencies" not in ref:
        return []
    m = sum(ref["frequencies"].values()) + ref.get("other_count", 0)
    freq = (cur or {}).get("frequencies") or {}
    n = sum(freq.values())
    keys = list(ref["frequencies"])[:MAX_CATEGORIES] + [k for k in ("__new__", "__other__") if freq.get(k)]
    return [{"category": k, "reference": f"{ref['frequencies'].get(k, 0) / m:.1%}" if m else "",
             "current": f"{freq.get(k, 0) / n:.1%}" if n else ""} for k in keys]


def _distribution(ref: dict[str, Any], cur: dict[str, Any] | None) -> tuple[list, list, list | None] | None:
    from .report import distribution_bars

    if ref.get("hidden"):
        return None
    bars = distribution_bars(ref, cur if cur else ref)
    if bars is None:
        return None
    labels, r, c = bars
    return labels, r, (c if cur else None)

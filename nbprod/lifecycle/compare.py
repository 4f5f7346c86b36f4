"""Champion versus challenger on the same data, through the same scoring path.

:func:`compare` scores one batch with both artifacts, puts their metrics side by side (when
labels are given), measures how often they agree and where they disagree most, measures each
one's drift against its own reference, and writes all of it as a report notebook. The verdict
— the challenger wins when its primary metric beats the champion's by at least ``margin`` — is
recorded in MLflow, and on the challenger's registry version when it is registered, so that
promotion can rely on it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.results import listing, number
from ..core.tables import Html, table
from ..exceptions import NbprodUsageError

TOP_DISAGREEMENTS = 20


@dataclass
class Comparison:
    champion: Any
    challenger: Any
    rows: int
    metric: str | None
    margin: float
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    agreement: float = 0.0
    disagreements: pd.DataFrame | None = None
    drift: dict[str, Any] = field(default_factory=dict)
    verdict: str = "inconclusive"
    gain: float | None = None
    recorded: dict[str, Any] = field(default_factory=dict)
    report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion": {"name": self.champion.name, "artifact_id": self.champion.manifest["artifact_id"],
                         "path": str(self.champion.root)},
            "challenger": {"name": self.challenger.name,
                           "artifact_id": self.challenger.manifest["artifact_id"],
                           "path": str(self.challenger.root)},
            "rows": self.rows, "metric": self.metric, "margin": self.margin,
            "metrics": self.metrics, "agreement": self.agreement, "drift": self.drift,
            "verdict": self.verdict, "gain": self.gain, "recorded": self.recorded,
            "report": self.report,
        }


def _label(art: Any, role: str) -> str:
    return f"{role} ({art.manifest['artifact_id'][:8]})"


def compare(champion: str | Path, challenger: str | Path, data: str | Path, *,
            labels: str | Path | None = None, metric: str | None = None, margin: float = 0.0,
            report: str | Path | None = None, record: bool = True) -> Comparison:
    """Score ``data`` with both artifacts and compare them: agreement, drift, and (with
    ``labels``) metrics side by side and a verdict.

    The steps: load both (:func:`_load_pair`), score the same rows through each one's scoring
    path, keep the rows both accepted (:func:`_common_rows`), measure how often they agree
    (:func:`_agreement`), each one's drift against its own reference (:func:`_drift`), the
    metrics and the verdict (:func:`_judge`), then write the report and record the verdict.

    Parameters
    ----------
    champion, challenger : str or Path
        Artifact directories or registry URIs (``models:/NAME@champion``).
    data : str or Path
        A CSV or Parquet file of inputs, scored by both.
    labels : str or Path, optional
        Labels for ``data`` (the target column, and the id column when the model has one).
    metric : str, optional
        The metric that decides the verdict (default ROC AUC for classification, R² for
        regression).
    margin : float
        How much the challenger must beat the champion by (>= 0).
    report : str or Path, optional
        Where to write the comparison report notebook.
    record : bool
        Record the verdict in MLflow (and on the challenger's registry version).

    Returns
    -------
    Comparison
        ``verdict`` is ``win``, ``lose`` or ``inconclusive`` (no labels).

    Examples
    --------
    >>> from nbprod.lifecycle.compare import compare
    >>> c = compare("champion/", "challenger/", "batch.csv", labels="labels.csv",
    ...             record=False)  # doctest: +SKIP
    >>> c.verdict, c.agreement  # doctest: +SKIP
    ('win', 0.97)
    """
    from ..core.dataio import read_frame

    champ, chal = _load_pair(champion, challenger, margin)
    df = read_frame(data, champ.schema, what="data")
    a, b = champ.scorer.score_detailed(df), chal.scorer.score_detailed(df)
    common, pa, pb = _common_rows(a, b)
    result = Comparison(champion=champ, challenger=chal, rows=len(common), metric=None,
                        margin=margin)
    result.agreement, result.disagreements = _agreement(champ, chal, pa, pb)
    result.drift = {"champion": _drift(champ, a), "challenger": _drift(chal, b)}
    if labels is not None:
        lab = read_frame(labels, what="labels")
        if not champ.id_column and len(lab) == len(df):  # by row order: the rows compared
            lab = lab.iloc[common]
        _judge(result, lab, pa, pb, metric)
    if report is not None:
        result.report = str(write_report(result, Path(report)))
    if record:
        result.recorded = _record(result)
    return result


def _load_pair(champion: str | Path, challenger: str | Path, margin: float) -> tuple[Any, Any]:
    """Both artifacts, refused when their tasks differ or the margin is negative."""
    from ..tracking.resolve import load

    champ, chal = load(champion), load(challenger)
    if champ.task != chal.task:
        raise NbprodUsageError(f"Cannot compare a {champ.task} model with a {chal.task} model.")
    if margin < 0:
        raise NbprodUsageError(f"--margin must be a number >= 0. Got {margin!r}.")
    return champ, chal


def _common_rows(a: Any, b: Any) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """The positions both models scored, and each one's outputs on them: rows either model
    rejects (see docs/scoring.md, row issues) are compared by neither."""
    common = np.intersect1d(a.positions, b.positions)
    pa = a.all_outputs.iloc[np.searchsorted(a.positions, common)].reset_index(drop=True)
    pb = b.all_outputs.iloc[np.searchsorted(b.positions, common)].reset_index(drop=True)
    return common, pa, pb


def _agreement(champ: Any, chal: Any, pa: pd.DataFrame,
               pb: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    """The share of rows on which both agree, and the rows where they disagree most."""
    from ..core.pii import columns_of

    if champ.task == "classification":
        same = pa["prediction"].astype("object").map(str).to_numpy() == pb["prediction"].astype("object").map(str).to_numpy()
        shared = [c for c in pa.columns if c.startswith("proba_") and c in pb.columns]
        gap = np.abs(pa[shared].to_numpy(float) - pb[shared].to_numpy(float)).max(axis=1) if shared else (~same).astype(float)
    else:
        scale = float(np.std(pa["prediction"].to_numpy(float))) or 1.0
        gap = np.abs(pa["prediction"].to_numpy(float) - pb["prediction"].to_numpy(float))
        same = gap <= 0.1 * scale  # "agree": within a tenth of the champion's prediction spread
    order = np.argsort(-gap, kind="stable")[:TOP_DISAGREEMENTS]
    top = pd.DataFrame({"champion": pa["prediction"].to_numpy()[order],
                        "challenger": pb["prediction"].to_numpy()[order], "difference": gap[order]})
    if champ.id_column and champ.id_column in columns_of(champ) | columns_of(chal):
        top.insert(0, "row", order)  # personal ids are never quoted: row numbers instead
    elif champ.id_column:
        top.insert(0, champ.id_column, pa[champ.id_column].to_numpy()[order])
    return float(np.mean(same)), top


def _drift(art: Any, scored: Any) -> dict[str, Any]:
    """The batch's drift against the artifact's own reference, in brief."""
    from ..monitoring.batch import measure_drift

    d = measure_drift(art, scored)
    return {"drifted": d["dataset"]["drifted"], "weighted_share": d["dataset"]["weighted_share"],
            "drifted_columns": d["dataset"]["drifted_columns"]}


def _judge(result: Comparison, lab: pd.DataFrame, pa: pd.DataFrame, pb: pd.DataFrame,
           metric: str | None) -> None:
    """Both models' metrics on the labelled rows, side by side, and the verdict on the
    primary metric (``result.metrics``, ``metric``, ``gain``, ``verdict``)."""
    from ..core.metrics import default_metric, resolve
    from ..monitoring.performance import align_labels, coerce_labels, precomputed

    champ, chal = result.champion, result.challenger
    n_classes = len(champ.classes or []) or None
    primary = resolve(metric) if metric else default_metric(champ.task, n_classes)
    names = [primary.name] + [n for n in dict.fromkeys(
        list(champ.reference["metrics"]["values"]) + list(chal.reference["metrics"]["values"]))
        if n != primary.name]
    for role, art, outputs in (("champion", champ, pa), ("challenger", chal, pb)):
        y = align_labels(art, outputs, lab)
        known = y.notna().to_numpy()
        yk = coerce_labels(y[known].reset_index(drop=True), art.classes)
        est = precomputed(art.task, outputs.loc[known].reset_index(drop=True), art.classes)
        rows = np.arange(len(yk)).reshape(-1, 1)
        for name in names:
            m = resolve(name)
            try:
                result.metrics.setdefault(name, {})[role] = m.natural(m.score(est, rows, yk))
            except ValueError:
                continue
    result.metric = primary.name
    pair = result.metrics.get(primary.name, {})
    if "champion" in pair and "challenger" in pair:
        sign = 1 if primary.greater_is_better else -1
        result.gain = sign * (pair["challenger"] - pair["champion"])
        result.verdict = "win" if result.gain > 0 and result.gain >= result.margin else "lose"


def _record(result: Comparison) -> dict[str, Any]:
    """Log the comparison to MLflow; tag the challenger's registry version when it has one."""
    from ..tracking.registry import champion_version, find_version
    from ..tracking.store import client as store_client
    from ..tracking.store import get_or_create_experiment

    client = store_client()
    name = result.challenger.name
    exp_name = f"{name}/compare"
    exp_id = get_or_create_experiment(client, exp_name)
    run = client.create_run(exp_id, run_name=f"compare {datetime.now(UTC):%Y-%m-%d %H:%M}", tags={
        "nbprod.kind": "compare", "nbprod.verdict": result.verdict,
        "nbprod.champion_artifact_id": result.champion.manifest["artifact_id"],
        "nbprod.challenger_artifact_id": result.challenger.manifest["artifact_id"]})
    for metric, pair in result.metrics.items():
        for role, value in pair.items():
            client.log_metric(run.info.run_id, f"{role}.{metric}", float(value))
    client.log_metric(run.info.run_id, "agreement", result.agreement)
    if result.gain is not None:
        client.log_metric(run.info.run_id, "gain", result.gain)
    from ..core.files import finite

    client.log_dict(run.info.run_id,
                    finite({k: v for k, v in result.to_dict().items() if k != "recorded"}),
                    "comparison.json")
    if result.report:
        client.log_artifact(run.info.run_id, result.report)
    client.set_terminated(run.info.run_id, "FINISHED")
    out: dict[str, Any] = {"run_id": run.info.run_id, "experiment": exp_name}
    version = find_version(name, result.challenger.manifest["artifact_id"])
    champ_version = find_version(result.champion.name, result.champion.manifest["artifact_id"])
    if version is not None:
        tags = {
            "nbprod.compare.verdict": result.verdict,
            "nbprod.compare.champion_version": str(champ_version.version) if champ_version else "",
            "nbprod.compare.champion_artifact_id": result.champion.manifest["artifact_id"],
            "nbprod.compare.metric": str(result.metric),
            "nbprod.compare.gain": "" if result.gain is None else f"{result.gain:.6g}",
            "nbprod.compare.margin": f"{result.margin:g}",
            "nbprod.compare.run_id": run.info.run_id,
            "nbprod.compare.at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        for k, v in tags.items():
            client.set_model_version_tag(name, version.version, k, v)
        out["version"] = str(version.version)
        out["champion_is_current"] = (champ_version is not None and
                                      champion_version(name) == str(champ_version.version))
    return out


def _sections(result: Comparison) -> list[Html]:
    champ, chal = result.champion, result.challenger
    words = {"win": f"The challenger wins: {result.metric} better by {number(result.gain)} "
                    f"(margin {result.margin:g})." if result.gain is not None else "",
             "lose": f"The challenger does not win: {result.metric} gain {number(result.gain)} "
                     f"(margin {result.margin:g})." if result.gain is not None else "",
             "inconclusive": "No labels were given, so there is no winner; agreement and drift "
                             "are shown below."}[result.verdict]
    from ..core.tables import badge

    status = {"win": "pass", "lose": "fail", "inconclusive": "skip"}[result.verdict]
    out = [Html(f"<h2>Champion vs challenger: {badge(status)} {html.escape(result.verdict)}</h2>"
                f"<p>{html.escape(words)}</p><p>{result.rows:,} rows scored by both through the same "
                f"path. Champion: <code>{html.escape(str(champ.root))}</code>; challenger: "
                f"<code>{html.escape(str(chal.root))}</code>.</p>", f"{result.verdict}: {words}")]
    if result.metrics:
        rows = [{"metric": k, "champion": v.get("champion"), "challenger": v.get("challenger")}
                for k, v in result.metrics.items()]
        out.append(Html("<h3>Metrics</h3>" + table(rows, ["metric", "champion", "challenger"]),
                        str(result.metrics)))
    out.append(Html(f"<h3>Agreement</h3><p>The two agree on {result.agreement:.1%} of rows. "
                    "Largest disagreements:</p>"
                    + (result.disagreements.to_html(index=False) if result.disagreements is not None else ""),
                    f"agreement {result.agreement:.1%}"))
    rows = [{"model": role, "dataset drifted": d["drifted"], "weighted share": d["weighted_share"],
             "drifted columns": listing(d["drifted_columns"], 8)} for role, d in result.drift.items()]
    out.append(Html("<h3>Drift against each model's own training data</h3>"
                    + table(rows, ["model", "dataset drifted", "weighted share", "drifted columns"]),
                    str(result.drift)))
    return out


def write_report(result: Comparison, path: Path) -> Path:
    """The comparison as a notebook whose outputs are the report (code cells hidden)."""
    import nbformat
    import nbformat.v4 as nbf

    from ..core.text import markdown_text

    cells = [nbf.new_markdown_cell(f"# Comparison: {markdown_text(result.challenger.name)}\n\nWritten by "
                                   "`nbprod compare`.")]
    for i, section in enumerate(_sections(result)):
        cell = nbf.new_code_cell(f"# section {i}", metadata={"tags": ["remove-input"]})
        cell.outputs = [nbf.new_output("display_data", data={"text/html": section.html,
                                                             "text/plain": section.text})]
        cells.append(cell)
    nb = nbf.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
    nbformat.write(nb, str(path))
    return path

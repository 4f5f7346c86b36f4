"""The rows a reviewer of a scoring report looks at, explained: the most extreme predictions and
the flagged rows.

While the batch streams, :func:`candidates` keeps of each chunk at most :data:`K` rows with the
highest and :data:`K` with the lowest **score** (a regressor's prediction; a binary classifier's
probability of its positive class, ``classes_[1]``; a multiclass one's probability of the class
it predicts) and the first :data:`FLAGGED` flagged rows (scored, outside what the model saw),
with their conformed inputs. :func:`merge` joins consecutive chunks' candidates and keeps the same
numbers again. Ties break by input position, so the rows chosen are the same whether the batch
is scored in one piece, in chunks or on a Dask cluster, and the memory held is bounded by
``2 K + FLAGGED`` rows whatever the batch. Rejected rows are never candidates: they were not
scored.

At the end of the run :func:`explain_notable` explains the chosen rows once, within the same
budget as explanation drift (:func:`nbprod.monitoring.explanations.plan`; run option
``explain_drift``), and returns the summary's ``explained``: one record per row (``why``:
``highest``, ``lowest`` and/or ``flagged``; ``row``; the id unless it is personal data; the
score; the model's output on ``scale`` with its ``base_value``; every contribution, largest
first, personal values hidden) so that ``base_value + sum(contributions) == output``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

K = 3  # highest and lowest scores kept
FLAGGED = 4  # first flagged rows kept
TOP = 3  # contributions shown per row in the report (the summary keeps all)
ROW, SCORE, WHY, ID = "_nbprod_row", "_nbprod_score", "_nbprod_why", "_nbprod_id"
AT = "_nbprod_at"  # a candidate's row in its chunk's conformed inputs (while choosing)


def scores(art: Any, outputs: pd.DataFrame) -> np.ndarray | None:
    """The score of each output row (see the module docs); None when the model gives none (a
    classifier without probabilities)."""
    from ..core.scoring import PREDICTION, PROBA_PREFIX

    if art.task != "classification":
        if PREDICTION not in outputs.columns:
            return None
        return pd.to_numeric(outputs[PREDICTION], errors="coerce").to_numpy(dtype="float64")
    proba = [c for c in outputs.columns if str(c).startswith(PROBA_PREFIX)]
    if not proba:
        return None
    values = outputs[proba].to_numpy(dtype="float64")
    return values[:, 1] if len(proba) == 2 else values.max(axis=1)


def candidates(art: Any, scored: Any) -> pd.DataFrame | None:
    """A chunk's candidates: its conformed inputs of the chosen scored rows, with their position
    in the chunk (``ROW``), score and why they were chosen; None when the chunk scored nothing."""
    inputs = getattr(scored, "inputs", None)
    if inputs is None or not len(inputs):
        return None
    positions = np.asarray(scored.positions if scored.positions is not None
                           else np.arange(len(inputs)), dtype="int64")
    score = scores(art, scored.all_outputs)
    flagged = np.asarray(scored.issues.flagged, dtype=bool)[positions] \
        if scored.issues is not None else np.zeros(len(positions), dtype=bool)
    score = np.full(len(positions), np.nan) if score is None else score
    # chosen among the rows that can be: the first flagged ones, and every row scoring at least
    # the K-th highest or at most the K-th lowest score (ties included, so _select breaks them
    # by position as on the whole chunk); only the chosen rows' inputs are copied
    at = np.flatnonzero(_contenders(score, flagged))
    light = pd.DataFrame({ROW: positions[at], SCORE: score[at],
                          WHY: np.where(flagged[at], "flagged", ""), AT: at})
    if art.id_column and art.id_column in scored.all_outputs.columns:
        light[ID] = scored.all_outputs[art.id_column].to_numpy()[at]
    chosen = _select(light)
    at = chosen.pop(AT).to_numpy()
    return pd.concat([inputs.iloc[at].reset_index(drop=True), chosen], axis=1)


def _contenders(score: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """The rows :func:`_select` may choose: the first FLAGGED flagged rows and the rows whose
    score reaches the K-th highest or the K-th lowest."""
    keep = np.zeros(len(score), dtype=bool)
    keep[np.flatnonzero(flagged)[:FLAGGED]] = True
    valued = ~np.isnan(score)
    values = score[valued]
    if len(values):
        k = min(K, len(values))
        high = np.partition(values, len(values) - k)[len(values) - k]
        low = np.partition(values, k - 1)[k - 1]
        keep |= valued & ((score >= high) | (score <= low))
    return keep


def merge(a: pd.DataFrame | None, b: pd.DataFrame | None, offset: int) -> pd.DataFrame | None:
    """Candidates of two consecutive chunks; ``b``'s rows follow ``offset`` rows of ``a``'s."""
    if b is None:
        return a
    b = b.assign(**{ROW: b[ROW] + offset})
    return b if a is None else _select(pd.concat([a, b], ignore_index=True))


def _select(frame: pd.DataFrame) -> pd.DataFrame:
    """At most K highest, K lowest (ties by position) and the FLAGGED first flagged rows."""
    frame = frame.sort_values(ROW, kind="stable").reset_index(drop=True)
    flagged = frame.index[frame[WHY].str.contains("flagged")][:FLAGGED]
    valued = frame[frame[SCORE].notna()]
    order = np.lexsort((valued[ROW].to_numpy(), -valued[SCORE].to_numpy()))
    high = valued.index[order[:K]]
    order = np.lexsort((valued[ROW].to_numpy(), valued[SCORE].to_numpy()))
    taken = set(high)
    low = [i for i in valued.index[order][:2 * K] if i not in taken][:K]
    why = {i: [] for i in [*high, *low, *flagged]}
    for name, chosen in (("highest", high), ("lowest", low), ("flagged", flagged)):
        for i in chosen:
            why[i].append(name)
    keep = sorted(why)
    out = frame.loc[keep].copy()
    out[WHY] = [", ".join(why[i]) for i in keep]
    return out.reset_index(drop=True)


def explain_notable(art: Any, chosen: pd.DataFrame | None, mode: str | float = "auto", *,
                    show_ids: bool = True, elapsed_s: float | None = None) -> dict[str, Any] | None:
    """Explain the chosen rows once (see the module docs); None when there are none.
    ``show_ids``: False when the id column is personal data (rows are named by position);
    ``elapsed_s``: the run's time so far (the ``auto`` budget grows with it)."""
    from ..exceptions import ExplainWarning, NbprodError
    from .explanations import one_thread, plan

    if chosen is None or not len(chosen):
        return None
    ref = (art.reference or {}).get("explanations") or {}
    method = ref.get("method", "exact")
    budget = plan(method, len(chosen), mode, min_rows=1, what="the report's explanations",
                  elapsed_s=elapsed_s)
    head = {"rows": [], "scale": ref.get("scale"), "method": method, "budget": budget,
            "score": _score_name(art)}
    if budget["status"] in ("skipped", "off"):
        return {**head, "message": f"not explained: {budget['reason']}"}
    rows = chosen.sort_values(ROW, kind="stable").reset_index(drop=True)
    if budget["status"] == "sampled":  # the extremes first, then the flagged rows
        rows = rows.iloc[np.argsort(~rows[WHY].str.contains("highest|lowest"), kind="stable")]
        rows = rows.iloc[:budget["rows"]].sort_values(ROW, kind="stable").reset_index(drop=True)
    inputs = rows.drop(columns=[c for c in (ROW, SCORE, WHY, ID) if c in rows.columns])
    if art.id_column:  # the conformed inputs hold no id: any unique one serves
        inputs = inputs.assign(**{art.id_column: np.arange(len(inputs))})
    try:
        with warnings.catch_warnings(), one_thread(method):  # a note says why a slower one was used
            warnings.simplefilter("ignore", ExplainWarning)
            result = art.explain(inputs, method=method if method in ("linear", "tree") else "auto")
    except NbprodError as exc:
        return {**head, "error": str(exc)[:300], "message": f"not explained: {str(exc)[:300]}"}
    records = []
    for i, part in result.frame.groupby("row", sort=True):
        row = rows.iloc[int(i)]
        pos = int(row[ROW])
        record: dict[str, Any] = {"why": row[WHY], "row": pos}
        if ID in rows.columns and show_ids:
            record["id"] = _plain(row[ID])
        record.update({
            "score": None if pd.isna(row[SCORE]) else float(row[SCORE]),
            "class": str(part["class"].iloc[0]) if "class" in part.columns else None,
            "output": float(part["prediction"].iloc[0]),
            "base_value": float(part["base_value"].iloc[0]),
            "contributions": [{"feature": f, "value": v, "contribution": float(c)} for f, v, c in
                              zip(part["feature"], part["value"], part["contribution"], strict=True)]})
        records.append(record)
    return {**head, "rows": records, "scale": result.scale, "method": result.method,
            "message": f"{len(records)} row(s) explained on the {result.scale} scale by "
                       f"{result.method}" + (f" (sampled: {budget['reason']})"
                                             if budget["status"] == "sampled" else "")}


def _plain(v: Any) -> Any:
    """A JSON-ready id."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v if isinstance(v, int | float | str | bool) else str(v)


def _score_name(art: Any) -> str:
    if art.task != "classification":
        return "prediction"
    classes = list(getattr(art.scorer.model, "classes_", []))
    if len(classes) == 2:
        return f"probability of {classes[1]}"
    return "probability of the predicted class"

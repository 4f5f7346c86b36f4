"""One chunk of a batch: scored through the one scoring path, measured, and merged with the rest.

:func:`score_chunk` scores a chunk (:meth:`nbprod.core.scoring.Scorer.score_detailed` with
``part=True``) and measures what the run reports, in a form whose chunks add up
(:class:`Measured`): the row issues' tally (:mod:`nbprod.core.tally`), the input checks' counts,
the drift profiles, the output bounds, the prediction summary, and the labelled rows'
outputs when labels were given. It also spills what only the whole batch can judge to a
directory: the ids, for ids repeated across chunks (:mod:`nbprod.core.duplicates`), and a
regressor's predictions, for the exact quartiles of the summary (:mod:`nbprod.core.quantiles`).

Measures of consecutive chunks merge with :meth:`Measured.merge`, in any grouping, so the local
engine (chunk after chunk) and a Dask cluster (partitions in parallel, merged in order) reach
the same figures, and :func:`settle` turns the merged measure into the judgements that need the
whole batch: every row rejected, a column where no value converts, too many rows the model
fails on, output bounds under the ``fail`` policy, ids repeated across chunks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.rows import MODEL_ERROR
from ..core.tally import IssueTally


@dataclass
class Measured:
    """What a run reports about one chunk, or about consecutive chunks merged (rows from 0)."""

    rows_in: int
    scored: int  # rows scored (before the bounds policy)
    written: int  # rows in the output
    columns: list[str]  # the input's columns
    issues: IssueTally
    inputs: dict[str, Any]  # nbprod.monitoring.input_checks.measure
    profiles: dict[str, Any]  # nbprod.monitoring.batch.drift_profiles
    bounds: dict[str, Any]  # nbprod.monitoring.input_checks.bounds_measure
    prediction: dict[str, Any]  # class counts, or moments and spilled runs
    lost: dict[str, dict[str, Any]] = field(default_factory=dict)  # type failures per column
    model_errors: int = 0
    failure: str | None = None  # the first model-error's line
    labelled: pd.DataFrame | None = None  # outputs of rows that may have a label
    positions: np.ndarray | None = None  # input positions of the labelled rows (no id column)
    spilled: list[Any] = field(default_factory=list)  # nbprod.core.duplicates.Spilled
    explain: pd.DataFrame | None = None  # the explanation drift's sample of scored inputs
    explain_keys: np.ndarray | None = None  # their sampling keys (see _explain_sample)
    notable: pd.DataFrame | None = None  # the report's rows to explain (monitoring.notable)
    depth: Any = None  # nbprod.monitoring.depth.DepthPartial
    timings: dict[str, float] = field(default_factory=dict)
    chunks: int = 1

    def merge(self, other: Measured) -> Measured:
        """This measure and the next chunk's (whose rows follow)."""
        from ..monitoring.batch import merge_profiles
        from ..monitoring.input_checks import merge_bounds, merge_measures

        lost = {c: dict(v) for c, v in self.lost.items()}
        for c, v in other.lost.items():
            if c in lost:
                lost[c]["count"] += v["count"]
                lost[c]["converted"] = lost[c]["converted"] or v["converted"]
            else:
                lost[c] = {**v, "row": v["row"] + self.rows_in}
        pred = merge_prediction(self.prediction, other.prediction)
        labelled, positions = self.labelled, self.positions
        if other.labelled is not None:
            labelled = other.labelled if labelled is None else pd.concat(
                [labelled, other.labelled], ignore_index=True)
            if other.positions is not None:
                shifted = other.positions + self.rows_in
                positions = shifted if positions is None else np.concatenate([positions, shifted])
        explain, explain_keys = _merge_samples(self, other)
        from ..monitoring.notable import merge as merge_notable

        notable = merge_notable(self.notable, other.notable, self.rows_in)
        depth = (self.depth.merge(other.depth) if self.depth is not None and other.depth is not None
                 else self.depth if other.depth is None else other.depth)
        return Measured(
            rows_in=self.rows_in + other.rows_in, scored=self.scored + other.scored,
            written=self.written + other.written,
            columns=self.columns + [c for c in other.columns if c not in self.columns],
            issues=self.issues.merge(other.issues),
            inputs=merge_measures(self.inputs, other.inputs),
            profiles=merge_profiles(self.profiles, other.profiles),
            bounds=merge_bounds(self.bounds, other.bounds), prediction=pred, lost=lost,
            model_errors=self.model_errors + other.model_errors,
            failure=self.failure or other.failure, labelled=labelled, positions=positions,
            spilled=self.spilled + other.spilled, explain=explain, explain_keys=explain_keys,
            depth=depth, notable=notable,
            timings={k: self.timings.get(k, 0.0) + other.timings.get(k, 0.0)
                     for k in self.timings.keys() | other.timings.keys()},
            chunks=self.chunks + other.chunks)


def _explain_sample(art: Any, inputs: pd.DataFrame) -> tuple[Any, Any]:
    """The explanation drift's sample of a chunk's scored inputs: the rows whose content hashes
    lowest (at most ``ROWS``, in input order), with their hashes. Chosen by content, not by
    position, the sample of a batch is the same whatever its chunks; a uniform random sample
    for any batch whose rows are not repeated."""
    from ..monitoring.explanations import ROWS

    ref = (art.reference or {}).get("explanations")
    if not ref or "mean_abs" not in ref or not len(inputs):
        return None, None
    keys = pd.util.hash_pandas_object(inputs, index=False).to_numpy()
    pick = np.sort(np.argsort(keys, kind="stable")[:ROWS])
    return inputs.iloc[pick].reset_index(drop=True), keys[pick]


def _depth_part(art: Any, scored: Any) -> Any:
    """The chunk's part of joint drift and of performance estimated without labels."""
    ref = art.reference or {}
    if not ref.get("multivariate") and not ref.get("estimation"):
        return None
    from ..monitoring import depth

    return depth.partial(ref, scored.inputs, scored.output)


def _merge_samples(a: Measured, b: Measured) -> tuple[Any, Any]:
    from ..monitoring.explanations import ROWS

    if a.explain is None or b.explain is None:
        return (a.explain, a.explain_keys) if b.explain is None else (b.explain, b.explain_keys)
    both = pd.concat([a.explain, b.explain], ignore_index=True)
    keys = np.concatenate([a.explain_keys, b.explain_keys])
    pick = np.sort(np.argsort(keys, kind="stable")[:ROWS])
    return both.iloc[pick].reset_index(drop=True), keys[pick]


def merge_all(parts: list[Measured]) -> Measured:
    out = parts[0]
    for p in parts[1:]:
        out = out.merge(p)
    return out


def score_chunk(art: Any, frame: pd.DataFrame, key: str, *, spill_dir: Path | None,
                labels: Any = None) -> tuple[Any, Measured]:
    """Score one chunk (its rows numbered from 0) and measure it; see the module docs.

    Returns the :class:`~nbprod.core.scoring.Scored` chunk and its :class:`Measured`."""
    from ..core.pii import columns_of
    from ..monitoring.batch import drift_profiles
    from ..monitoring.input_checks import bounds_measure, measure

    t0 = time.perf_counter()
    scorer = art.scorer
    scored = scorer.score_detailed(frame, part=True)
    t1 = time.perf_counter()
    profile = art.train_profile
    issues = scored.issues
    frame_issues = issues.frame
    lost: dict[str, dict[str, Any]] = {}
    types = frame_issues[frame_issues["rule"] == "type"] if len(frame_issues) else frame_issues
    for col, group in types.groupby("column", sort=False) if len(types) else ():
        first = group.iloc[0]
        lost[str(col)] = {"count": len(group), "row": int(first["row"]),
                          "value": first["value"], "converted": bool(
                              scored.all_inputs[col].notna().any())}
    model = frame_issues[frame_issues["rule"] == MODEL_ERROR] if len(frame_issues) else frame_issues
    hide = art.id_column in columns_of(art)
    measured = Measured(
        rows_in=len(frame), scored=len(scored.all_outputs), written=len(scored.output),
        columns=[str(c) for c in frame.columns], issues=IssueTally.of(issues),
        inputs=measure(scored.all_inputs, profile),
        profiles=drift_profiles(art, scored, mergeable=True),
        bounds=bounds_measure(scored.all_outputs, scored.out_of_bounds, art.id_column,
                              hide_ids=hide),
        prediction=_prediction(art, scored.output, spill_dir, key), lost=lost,
        model_errors=len(model), failure=str(model["detail"].iloc[0]) if len(model) else None)
    if labels is not None and len(scored.all_outputs):
        pick = labels.pick(scored.all_outputs)
        measured.labelled = scored.all_outputs.loc[pick].reset_index(drop=True)
        if not art.id_column:
            measured.positions = np.asarray(scored.positions, dtype="int64")[pick]
    elif labels is not None:
        measured.labelled = scored.all_outputs
        measured.positions = np.zeros(0, dtype="int64") if not art.id_column else None
    if spill_dir is not None and art.id_column and art.id_column in frame.columns:
        from ..core import duplicates
        from ..core.rows import missing_ids

        ids = frame[art.id_column]
        schema = art.reading_schema
        kind = schema[art.id_column].kind if art.id_column in schema.names else None
        measured.spilled = [duplicates.spill(spill_dir, key, ids, missing_ids(ids), kind)]
    measured.explain, measured.explain_keys = _explain_sample(art, scored.inputs)
    measured.depth = _depth_part(art, scored)
    from ..monitoring.notable import candidates

    measured.notable = candidates(art, scored)
    measured.timings = {"score_s": t1 - t0, "monitor_s": time.perf_counter() - t1}
    return scored, measured


def merge_prediction(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two parts' prediction figures (:func:`_prediction`), the second's rows after the first's."""
    from ..core.quantiles import merge_moments

    pred = dict(a)
    if "class_counts" in pred:
        counts = dict(pred["class_counts"])
        for k, n in b["class_counts"].items():
            counts[k] = counts.get(k, 0) + n
        pred["class_counts"] = counts
    else:
        pred["moments"] = merge_moments(pred["moments"], b["moments"])
        pred["runs"] = pred["runs"] + b["runs"]
        held = [v for v in (pred.get("values"), b.get("values")) if v is not None]
        pred["values"] = np.concatenate(held) if held else None
    return pred


def _prediction(art: Any, output: pd.DataFrame, spill_dir: Path | None, key: str) -> dict[str, Any]:
    """The summary's prediction figures of a chunk's output, in a mergeable form."""
    pred = output["prediction"] if "prediction" in output.columns else pd.Series([], dtype="object")
    if art.task == "classification":  # counted per class first, then named as text
        counts: dict[str, int] = {}
        for k, v in pred.value_counts(dropna=False, sort=False).items():
            counts[str(k)] = counts.get(str(k), 0) + int(v)
        return {"class_counts": counts}
    from ..core.quantiles import moments, spill

    values = pred.to_numpy(dtype="float64", na_value=np.nan) if len(pred) else np.zeros(0)
    runs = []
    if spill_dir is not None and len(values):
        spill_dir.mkdir(parents=True, exist_ok=True)
        path = spill_dir / f"pred-{key}.npy"
        spill(path, values)
        runs = [str(path)]
    return {"moments": moments(values), "runs": runs, "values": None if runs else values}

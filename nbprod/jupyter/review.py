"""The review queue: the rows of a scored batch that a person should look at, and their verdicts.

Which rows, and why (a row may have several reasons):

- ``out_of_bounds``: the prediction breaks the output bounds declared at packaging (the
  ``out_of_bounds`` column of the predictions, or the bounds applied again to them);
- ``large_error`` (when labels are known): for classifiers a misclassified row; for regressors
  an absolute error at or above ``max_error``, or else at or above the ``error_quantile``
  (default 0.95) of the batch's labelled errors;
- ``low_confidence`` (classifiers): the highest class probability below ``min_confidence``
  (default 0.6);
- ``flagged_input``: the row was scored, but its input lies outside what the model saw (a
  flagged row of the issues file: out of the training range, a sign or category never seen,
  a repeated id...), when the issues are known (the scoring run, the issues file beside the
  predictions, or ``issues=``).

Order: out-of-bounds rows first, then large errors, then low confidence, then flagged input
(a row counts in its first group); inside a group the largest error first, then the least
confident, then file order. ``limit`` (default 200) keeps at most that many rows of each group, so a batch full of
mistakes still shows its uncertain rows.

A reviewer accepts a row (the prediction is right: its label is the prediction) or relabels it.
Every decision is written at once to the feedback file, whose format and writing (one row per
id, the last decision wins, atomic and locked) belong to :mod:`nbprod.lifecycle.feedback`; it
is the current truth that retraining merges (``nbprod.apply_feedback``).

Personal data: input columns the artifact hides (declared ``--pii`` or found personal) show as
``[personal data]`` beside a row. The ids are the caller's own, as in the predictions file the
queue reads: the feedback file needs them to relabel the training rows.

This module is the pure-Python core; displayed in a notebook, a queue becomes an interactive
panel when widgets are available (:mod:`nbprod.jupyter.widgets`).
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.files import plain
from ..core.results import number
from ..core.text import one_line
from ..exceptions import InputError, NbprodUsageError
from ..lifecycle import feedback as feedback_file
from ..lifecycle.feedback import Decision
from ..monitoring.performance import label_text

REASONS = {  # code -> (rank in the queue, what a reviewer reads)
    "out_of_bounds": (0, "output outside the declared bounds"),
    "large_error": (1, "large error"),
    "low_confidence": (2, "low confidence"),
    "flagged_input": (3, "input outside what the model saw"),
}
DEFAULT_FEEDBACK = "feedback.parquet"
DEFAULT_LIMIT = 200
SHOWN = 50  # rows in the static HTML table
EXPLAINED = SHOWN  # rows of the queue whose top contributions are computed
TOP = 3  # contributions shown per row


# -- which rows ----------------------------------------------------------------------------------
def select(outputs: pd.DataFrame, *, task: str, classes: list[Any] | None, ids: pd.Series,
           out_of_bounds: np.ndarray | None = None, labels: pd.Series | None = None,
           min_confidence: float = 0.6, error_quantile: float = 0.95,
           max_error: float | None = None, limit: int | None = DEFAULT_LIMIT,
           input_flags: np.ndarray | None = None) -> pd.DataFrame:
    """The queue: one row per flagged output row, sorted (see the module docs).

    ``input_flags`` holds, per output row, the words of its flagged input issues (None when
    it has none)."""
    if not 0 < min_confidence <= 1:
        raise NbprodUsageError(f"min_confidence must be in (0, 1]. Got {min_confidence!r}.")
    if not 0 < error_quantile < 1:
        raise NbprodUsageError(f"error_quantile must be in (0, 1). Got {error_quantile!r}.")
    n = len(outputs)
    oob = np.zeros(n, bool) if out_of_bounds is None else np.asarray(out_of_bounds, bool)
    confidence = np.full(n, np.nan)
    proba_cols = [f"proba_{c}" for c in classes or []]
    if task == "classification" and proba_cols and all(c in outputs.columns for c in proba_cols):
        confidence = outputs[proba_cols].to_numpy(dtype="float64").max(axis=1)
    low = confidence < min_confidence  # NaN compares False
    error = np.full(n, np.nan)
    large = np.zeros(n, bool)
    threshold = None
    known = np.zeros(n, bool) if labels is None else labels.notna().to_numpy()
    if known.any():
        if task == "classification":
            pred = outputs["prediction"].astype("object").map(label_text).to_numpy()
            truth = np.array([label_text(v) if k else "" for v, k in zip(labels, known, strict=True)], dtype=object)
            large = known & (pred != truth)
            p_true = np.ones(n)  # the probability the model gave the true class
            for cls, col in zip(classes or [], proba_cols, strict=True):
                if col in outputs.columns:
                    hit = truth == label_text(cls)
                    p_true[hit] = outputs[col].to_numpy(dtype="float64")[hit]
            error = np.where(known & large, 1.0 - p_true, np.where(known, 0.0, np.nan))
        else:
            y = pd.to_numeric(labels, errors="coerce").to_numpy(dtype="float64")
            error = np.abs(outputs["prediction"].to_numpy(dtype="float64") - y)
            finite = ~np.isnan(error)
            if max_error is not None:
                threshold = float(max_error)
            elif finite.any():
                threshold = float(np.quantile(error[finite], error_quantile))
            if threshold is not None:
                large = finite & (error >= threshold) & (error > 0)
    inflag = (np.zeros(n, bool) if input_flags is None
              else np.array([f is not None for f in input_flags], dtype=bool))
    groups_of = np.where(oob, 0, np.where(large, 1, np.where(low, 2, 3)))
    flagged = np.flatnonzero(oob | large | low | inflag)
    tier = groups_of[flagged]
    err = np.nan_to_num(error[flagged], nan=-np.inf)
    conf = np.nan_to_num(confidence[flagged], nan=np.inf)
    order = flagged[np.lexsort((flagged, conf, -err, tier))]
    if limit is not None:  # at most `limit` rows of each group, so every kind of problem shows
        groups = groups_of[order]
        order = np.concatenate([order[groups == g][:limit] for g in range(4)])
    rows = []
    for i in order:
        reasons, why = [], []
        if oob[i]:
            reasons.append("out_of_bounds")
            why.append(REASONS["out_of_bounds"][1])
        if large[i]:
            reasons.append("large_error")
            why.append(f"misclassified (label {label_text(labels.iloc[i])}, p(label) {number(1 - error[i])})"
                       if task == "classification" else f"|error| {number(error[i])} ≥ {number(threshold)}")
        if low[i]:
            reasons.append("low_confidence")
            why.append(f"low confidence {number(confidence[i])} < {min_confidence:g}")
        if inflag[i]:
            reasons.append("flagged_input")
            why.append(f"input outside what the model saw: {input_flags[i]}")
        rows.append({"id": str(ids.iloc[i]), "position": int(i), "prediction": plain(outputs["prediction"].iloc[i]),
                     "confidence": float(confidence[i]), "label": plain(labels.iloc[i]) if known[i] else None,
                     "error": float(error[i]), "reasons": tuple(reasons), "why": "; ".join(why)})
    cols = ["id", "position", "prediction", "confidence", "label", "error", "reasons", "why"]
    out = pd.DataFrame(rows, columns=cols)
    for col in ("prediction", "label"):  # keep classes as they are (no 1 -> 1.0 beside a None)
        out[col] = pd.Series([r[col] for r in rows], dtype=object)
    return out


def id_text(v: Any) -> str:
    return str(plain(v))


# -- the queue ---------------------------------------------------------------------------------
class ReviewQueue:
    """The rows to review in one scored batch, and the decisions taken on them."""

    def __init__(self, items: pd.DataFrame, *, outputs: pd.DataFrame, ids: pd.Series,
                 inputs: pd.DataFrame | None, labels: pd.Series | None, task: str,
                 classes: list[Any] | None, feedback: str | Path, reviewer: str | None = None,
                 artifact_id: str | None = None, criteria: dict[str, Any] | None = None) -> None:
        self.items = items
        self.outputs = outputs
        self.inputs = inputs
        self.labels = labels
        self.task = task
        self.classes = classes
        self.feedback = Path(feedback)
        self.reviewer = reviewer or default_reviewer()
        self.artifact_id = artifact_id
        self.criteria = criteria or {}
        self._position = {str(v): i for i, v in enumerate(ids)}
        self.decided: dict[str, str] = {}  # id -> decision, for the ids of this queue
        if self.feedback.is_file():
            earlier = feedback_file.read(self.feedback)
            mine = earlier[earlier["id"].isin(set(items["id"]))]
            # a file of the required columns alone holds labels: relabelled rows
            kinds = mine["decision"] if "decision" in mine.columns else ["relabel"] * len(mine)
            self.decided = dict(zip(mine["id"].astype("str"), kinds, strict=True))

    def __len__(self) -> int:
        return len(self.items)

    def status(self, id: Any) -> str:
        return {"accept": "accepted", "relabel": "relabelled"}.get(self.decided.get(str(id), ""), "pending")

    def pending(self) -> pd.DataFrame:
        return self.items[[self.status(i) == "pending" for i in self.items["id"]]]

    def row(self, id: Any) -> dict[str, Any]:
        """Everything about one row of the batch: its inputs, the model's outputs, its label."""
        i = self._locate(id)
        out = {} if self.inputs is None else {k: plain(v) for k, v in self.inputs.iloc[i].items()}
        out.update({k: plain(v) for k, v in self.outputs.iloc[i].items()})
        if self.labels is not None and pd.notna(self.labels.iloc[i]):
            out["label"] = plain(self.labels.iloc[i])
        return out

    def _locate(self, id: Any) -> int:
        key = str(id)
        if key not in self._position:
            raise NbprodUsageError(f"No row with id {key!r} in this batch.")
        return self._position[key]

    # -- decisions ---------------------------------------------------------------------------
    def accept(self, id: Any, *, note: str = "", reviewer: str | None = None) -> Decision:
        """The prediction is right: record it as the row's label."""
        pred = plain(self.outputs["prediction"].iloc[self._locate(id)])
        return self._record(id, "accept", self.coerce_label(pred), note, reviewer)

    def relabel(self, id: Any, label: Any, *, note: str = "", reviewer: str | None = None) -> Decision:
        """The prediction is wrong: record ``label`` as the row's label."""
        return self._record(id, "relabel", self.coerce_label(label), note, reviewer)

    def coerce_label(self, label: Any) -> Any:
        """``label`` as the model's class (matched as text) or as a finite float."""
        if self.task == "classification":
            for cls in self.classes or []:
                if label_text(cls) == label_text(label):
                    return plain(cls)
            raise NbprodUsageError(f"{label!r} is not a class of this model; one of: "
                                   f"{', '.join(map(str, self.classes or []))}.")
        try:
            value = float(label)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise NbprodUsageError(f"A label of this regression model must be a finite number. Got {label!r}.")
        return value

    def _record(self, id: Any, decision: str, label: Any, note: str, reviewer: str | None) -> Decision:
        key = str(id)
        i = self._locate(key)
        hit = self.items.loc[self.items["id"] == key, "why"]
        d = Decision(id=key, label=label, reviewer=reviewer or self.reviewer,
                     time=pd.Timestamp.now(tz="UTC"), note=note or "", decision=decision,
                     prediction=self.coerce_prediction(self.outputs["prediction"].iloc[i]),
                     reasons=hit.iloc[0] if len(hit) else "", artifact_id=self.artifact_id)
        feedback_file.append(self.feedback, [d])
        self.decided[key] = decision
        return d

    def coerce_prediction(self, value: Any) -> Any:
        try:
            return self.coerce_label(plain(value))
        except NbprodUsageError:  # an out-of-bounds prediction may be no class, or not finite
            return None

    def decisions(self) -> pd.DataFrame:
        """The feedback file as it is now (every id reviewed, from any queue)."""
        return feedback_file.read(self.feedback, missing_ok=True)

    # -- display -----------------------------------------------------------------------------
    def html(self) -> str:
        from ..core.tables import table

        shown = self.items.head(SHOWN)
        rows = [{"id": r.id, "status": self.status(r.id), "why": r.why, "prediction": r.prediction,
                 "confidence": r.confidence, "label": r.label, "error": r.error,
                 "top contributions": getattr(r, "contributions", None)}
                for r in shown.itertuples()]
        more = f"<p>{len(self.items) - SHOWN} more rows in <code>queue.items</code>.</p>" if len(self.items) > SHOWN else ""
        done = sum(1 for i in self.items["id"] if self.status(i) != "pending")
        head = (f"<h3>Review queue: {len(self.items)} rows to look at ({done} decided)</h3>"
                f"<p>Decisions go to <code>{html.escape(str(self.feedback))}</code>. Record them with "
                "<code>queue.accept(id)</code> or <code>queue.relabel(id, label, note=...)</code>.</p>")
        cols = ["id", "status", "why", "prediction", "confidence", "label", "error"]
        if "contributions" in self.items.columns:
            cols.append("top contributions")
        return f'<div class="nbprod-review">{head}{table(rows, cols)}{more}</div>'

    def __repr__(self) -> str:
        lines = [f"Review queue: {len(self.items)} rows; decisions -> {self.feedback}"]
        lines += [f"  {r.id}: {r.why} [{self.status(r.id)}]" for r in self.items.head(SHOWN).itertuples()]
        return "\n".join(lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .widgets import bundle  # the face: an interactive panel, or the static table

        return bundle(self)

    def widget(self) -> Any:
        """The interactive panel (needs ipywidgets)."""
        from .widgets import ReviewPanel

        return ReviewPanel(self)


def default_reviewer() -> str:
    """``NBPROD_REVIEWER``, else the user's login name."""
    from ..core.user import user_name

    return os.environ.get("NBPROD_REVIEWER") or user_name()


# -- building a queue ------------------------------------------------------------------------------
def review(source: Any = None, *, predictions: str | Path | pd.DataFrame | None = None,
           artifact: str | Path | None = None, labels: str | Path | pd.DataFrame | None = None,
           inputs: str | Path | pd.DataFrame | None = None,
           feedback: str | Path = DEFAULT_FEEDBACK, reviewer: str | None = None,
           min_confidence: float = 0.6, error_quantile: float = 0.95,
           max_error: float | None = None, limit: int | None = DEFAULT_LIMIT,
           issues: str | Path | pd.DataFrame | None = None, explain: bool = True) -> ReviewQueue:
    """The review queue of a scored batch.

    ``source`` is a ScoringRun, a summary (dict or JSON path) or an executed report notebook;
    or give the files: ``predictions`` (the output file) with ``artifact``, and optionally
    ``labels`` and ``inputs`` (shown beside each row). Explicit files override the source's.
    ``issues`` is the run's issues file (or its table); by default the run's own, or the file
    beside the predictions, when it exists: its flagged rows join the queue.

    The steps: find the run and its artifact (:func:`_locate`), read the batch's outputs and
    inputs (:func:`_read_batch`), the rows out of bounds (:func:`_out_of_bounds`) and flagged
    by input checks (:func:`_issue_flags`), the rows' ids, the inputs a reviewer may see
    (:func:`_aligned_inputs`, :func:`_explanations`, :func:`_hide_personal`) and the labels
    (:func:`_labels`), then :func:`select` the rows.

    Parameters
    ----------
    source : ScoringRun, dict, str or Path, optional
        The scoring run, its summary, or its executed report notebook.
    predictions, artifact, labels, inputs, issues : str, Path or DataFrame, optional
        The batch's files, when there is no ``source`` or to override its own.
    feedback : str or Path
        The feedback file decisions are appended to.
    reviewer : str, optional
        Who reviews (default ``NBPROD_REVIEWER``, else the login name).
    min_confidence, error_quantile, max_error, limit
        What makes a row worth reviewing, and how many rows at most.
    explain : bool
        When the inputs are known, each of the first rows of the queue (:data:`EXPLAINED`)
        gets its largest contributions in ``items["contributions"]`` (see
        ``docs/explain.md``), computed before personal inputs are hidden.

    Returns
    -------
    ReviewQueue
        The rows to review, each with the reasons it was picked.

    Examples
    --------
    >>> job = nbprod.scoring_job(input_path=str(BATCH_CSV), output_path=str(TMP / "out.csv"),
    ...                          labels_path=str(LABELS_CSV), artifact_path=str(ARTIFACT),
    ...                          log_to_mlflow=False)
    >>> queue = nbprod.review(job.run, feedback=TMP / "feedback.parquet")
    >>> queue.items[["id", "reasons"]].head(2)
           id         reasons
    0  C00386  (large_error,)
    1  C00384  (large_error,)
    """
    from ..core.dataio import read_frame
    from ..core.schema import Schema

    run, record, art = _locate(source, artifact)
    reading = Schema.from_list(art.snapshot("train")["schema"])  # text ids stay text (00042)

    def frame(value: Any, what: str) -> pd.DataFrame | None:
        if value is None or isinstance(value, pd.DataFrame):
            return value
        return read_frame(value, reading, what=what)

    outputs, inputs_df, oob, flags = _read_batch(run, record, predictions, inputs, issues, frame)
    oob = _out_of_bounds(outputs, art, oob)
    if flags is None:
        flags = _issue_flags(outputs, art, record, predictions, issues)
    id_column = art.id_column
    if id_column and id_column in outputs.columns:
        ids = outputs[id_column].map(id_text)
    else:
        ids = pd.Series([str(i) for i in range(len(outputs))])
    inputs_df = _aligned_inputs(inputs_df, outputs, art)
    explained = None
    if explain and inputs_df is not None:  # before personal inputs are hidden: the model needs them
        explained = _explanations(art, inputs_df, ids, id_column)
    inputs_df = _hide_personal(inputs_df, art)
    y = _labels(art, outputs, run, record, labels, frame)
    criteria = {"min_confidence": min_confidence, "error_quantile": error_quantile,
                "max_error": max_error, "limit": limit}
    items = select(outputs, task=art.task, classes=art.classes, ids=ids, out_of_bounds=oob,
                   labels=y, input_flags=flags, **criteria)
    if explained is not None:
        items["contributions"] = explained(items)
    return ReviewQueue(items, outputs=outputs, ids=ids, inputs=inputs_df, labels=y, task=art.task,
                       classes=art.classes, feedback=feedback, reviewer=reviewer,
                       artifact_id=art.manifest.get("artifact_id"), criteria=criteria)


def _locate(source: Any, artifact: str | Path | None) -> tuple[Any, Any, Any]:
    """The scoring run (or None), its record (or None) and the artifact to review against."""
    from .explore import RunRecord, locate, open_artifact

    run = record = None
    if source is not None:
        record = locate(source, artifact=artifact)
        run = record.run
    if run is not None:
        return run, record, run.artifact
    if record is not None:
        return run, record, open_artifact(record)
    if artifact is not None:
        return run, record, open_artifact(RunRecord(None, Path(artifact)))
    raise NbprodUsageError("nbprod.review needs a scoring run, summary or report, or "
                           "predictions= with artifact=.")


def _read_batch(run: Any, record: Any, predictions: Any, inputs: Any, issues: Any,
                frame: Any) -> tuple[pd.DataFrame, pd.DataFrame | None, Any, Any]:
    """The batch's outputs and inputs, with the out-of-bounds mask and the input checks' flags
    when the run in memory has them (None otherwise)."""
    oob = flags = None
    held = run is not None and (run.scored is not None or run.predictions is not None)
    if predictions is None and held:
        scored = run.scored
        outputs = scored.all_outputs if scored is not None else run.predictions
        oob = scored.out_of_bounds if scored is not None else None
        if issues is None and scored is not None and scored.issues is not None:
            flags = _flags_by_position(scored.issues.table(), scored.positions)
        inputs_df = frame(inputs, "inputs") if inputs is not None else (
            scored.inputs if scored is not None else None)
    else:
        path = predictions if predictions is not None else (
            record.output_path if record else getattr(run, "output_path", None))
        if path is not None and run is not None and inputs is None and record is None:
            inputs = run.input_path  # a run streamed to its output file: read both back
        if path is None:
            raise NbprodUsageError("No predictions to review: pass predictions=FILE.")
        outputs = frame(path, "predictions")
        inputs_df = frame(inputs if inputs is not None else (record.input_path if record else None),
                          "inputs")
    outputs = outputs.reset_index(drop=True)
    if "prediction" not in outputs.columns:
        raise InputError("the predictions have no 'prediction' column; pass the scoring output file.")
    return outputs, inputs_df, oob, flags


def _out_of_bounds(outputs: pd.DataFrame, art: Any, oob: Any) -> Any:
    """The rows whose outputs are out of bounds: the run's own mask, else the output file's
    ``out_of_bounds`` column, else the artifact's bounds applied again (None without bounds)."""
    if oob is not None:
        return oob
    if "out_of_bounds" in outputs.columns:
        return outputs["out_of_bounds"].astype("object").map(lambda v: str(v).lower() in ("true", "1")).to_numpy(bool)
    if art.manifest.get("bounds"):
        from ..core.bounds import violations

        return violations(outputs, art.manifest["bounds"])
    return None


def _issue_flags(outputs: pd.DataFrame, art: Any, record: Any, predictions: Any,
                 issues: Any) -> Any:
    """The input checks' flags from the issues file (given, or beside the predictions)."""
    table = issues if issues is not None else _issues_file(predictions, record)
    if table is None:
        return None
    rows_in = (record.summary or {}).get("rows_in") if record is not None else None
    return input_flags(outputs, read_issues(table), art.id_column, rows_in)


def _aligned_inputs(inputs_df: pd.DataFrame | None, outputs: pd.DataFrame,
                    art: Any) -> pd.DataFrame | None:
    """The inputs beside each output row (None when unknown)."""
    if inputs_df is None:
        return None
    return _align(inputs_df.reset_index(drop=True), outputs, art.id_column)


def _hide_personal(inputs_df: pd.DataFrame | None, art: Any) -> pd.DataFrame | None:
    """The inputs a reviewer may see: personal inputs are not shown to reviewers."""
    if inputs_df is None:
        return None
    from ..core.pii import HIDDEN, columns_of

    hidden = [c for c in inputs_df.columns if c in columns_of(art)]
    return inputs_df.assign(**{c: HIDDEN for c in hidden}) if hidden else inputs_df


def _labels(art: Any, outputs: pd.DataFrame, run: Any, record: Any, labels: Any,
            frame: Any) -> pd.Series | None:
    """Each output row's label (given, or the run's labels file), or None."""
    labels_path = labels if labels is not None else (
        run.labels_path if run is not None else (record.labels_path if record else None))
    if labels_path is None:
        return None
    from ..monitoring.performance import align_labels

    return align_labels(art, outputs, frame(labels_path, "labels")).reset_index(drop=True)


def _explanations(art: Any, inputs: pd.DataFrame, ids: pd.Series,
                  id_column: str | None) -> Any:
    """A function of the queue's items giving, for each of its first :data:`EXPLAINED` rows,
    the row's :data:`TOP` largest contributions in words (None for the others, and for a row
    the explanation could not be computed for)."""

    def words(items: pd.DataFrame) -> list[str | None]:
        import logging

        from ..exceptions import NbprodError

        out: list[str | None] = [None] * len(items)
        head = items.head(EXPLAINED)
        if head.empty:
            return out
        rows = inputs.iloc[head["position"].to_numpy()].reset_index(drop=True)
        if id_column:
            rows = rows.assign(**{id_column: head["id"].to_numpy()})
        try:
            result = art.explain(rows)
        except NbprodError as exc:  # the queue still works without its explanations
            logging.getLogger(__name__).warning("no explanations in the review queue: %s", exc)
            return out
        for row, part in result.top(TOP).groupby("row", sort=False):
            said = ", ".join(f"{one_line(f)}={'?' if v is None else number(v)} "
                             f"{'+' if c > 0 else ''}{number(c)}" for f, v, c in
                             zip(part["feature"], part["value"], part["contribution"], strict=True))
            out[int(row)] = f"{said} ({result.scale})"
        return out

    return words


def _issues_file(predictions: Any, record: Any) -> Path | None:
    """The issues file of the run: named by its summary, or beside the predictions."""
    from ..core.rows import default_issues_path

    named = (record.summary or {}).get("issues_path") if record is not None else None
    if named and Path(named).is_file():
        return Path(named)
    path = predictions if isinstance(predictions, str | Path) else (
        record.output_path if record is not None else None)
    if path is None:
        return None
    beside = default_issues_path(path)
    return beside if beside.is_file() else None


def read_issues(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """An issues file (CSV, .csv.gz or Parquet) as written by scoring; a clean run's file has a
    header only, which gives an empty table."""
    if isinstance(source, pd.DataFrame):
        return source
    from ..core.dataio import file_format

    p = Path(source)
    if not p.is_file():
        raise InputError(f"issues file {str(p)!r} does not exist.")
    try:
        if file_format(p, "issues") == "csv":
            table = pd.read_csv(p, dtype="str", keep_default_na=False, na_values=[""])
        else:
            table = pd.read_parquet(p)
    except Exception as exc:
        raise InputError(f"issues file {str(p)!r} is not readable: {type(exc).__name__}: {exc}") from None
    if "row" in table.columns:
        table["row"] = pd.to_numeric(table["row"], errors="coerce").fillna(-1).astype("int64")
    return table


def _flag_words(issues: pd.DataFrame) -> pd.Series:
    """Per input row, its flagged issues in words, e.g. ``usage out-of-range (outside ...)``."""
    flagged = issues[issues["action"] == "flagged"]
    words = (flagged["column"].fillna("(model)").astype("str") + " " + flagged["rule"].astype("str")
             + " (" + flagged["detail"].fillna("").astype("str") + ")")
    return words.groupby(flagged["row"].astype("int64").to_numpy()).agg("; ".join)


def _flags_by_position(issues: pd.DataFrame, positions: np.ndarray | None) -> np.ndarray | None:
    if positions is None:
        return None
    words = _flag_words(issues)
    return np.array([words.get(int(p)) for p in positions], dtype=object)


def input_flags(outputs: pd.DataFrame, issues: pd.DataFrame, id_column: str | None,
                rows_in: int | None = None) -> np.ndarray | None:
    """Per row of the predictions file, the words of its flagged input issues (or None).

    The predictions hold the input rows not rejected, in input order, so their input positions
    follow from the rejected rows; when that does not add up (rows dropped by an output-bounds
    policy), rows are matched by id instead."""
    need = {"row", "action", "rule", "column", "detail"}
    if not need <= set(issues.columns):
        raise InputError(f"the issues file lacks column(s) {sorted(need - set(issues.columns))}; "
                         "pass the issues file written by nbprod score.")
    rejected = set(issues.loc[issues["action"] == "rejected", "row"].astype("int64"))
    total = len(outputs) + len(rejected)
    if rows_in is None or rows_in == total:
        kept = np.array([p for p in range(total) if p not in rejected], dtype="int64")
        return _flags_by_position(issues, kept)
    from ..core.rows import issue_id_column

    idc = issue_id_column(id_column)
    if not (idc and idc in issues.columns and id_column in outputs.columns):
        return None  # rows cannot be matched: no flags rather than wrong ones
    words = _flag_words(issues)
    by_id = {id_text(i): words[r] for r, i in zip(issues["row"], issues[idc], strict=True)
             if r in words.index}
    return np.array([by_id.get(id_text(v)) for v in outputs[id_column]], dtype=object)


def _align(inputs: pd.DataFrame, outputs: pd.DataFrame, id_column: str | None) -> pd.DataFrame | None:
    """The input rows in the order of the output rows (by id, else by position)."""
    if id_column and id_column in inputs.columns and id_column in outputs.columns:
        keyed = inputs.drop_duplicates(id_column)
        keyed.index = pd.Index(keyed[id_column].map(id_text).to_numpy())
        out = keyed.reindex(outputs[id_column].map(id_text).to_numpy()).reset_index(drop=True)
        return out.drop(columns=[id_column])
    return inputs if len(inputs) == len(outputs) else None

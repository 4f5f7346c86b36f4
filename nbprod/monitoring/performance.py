"""Joining the labels of a scored batch to its rows, once they are known, and checking them.

Labels are joined on the id column declared at snapshot time, or by row order when no id was
declared. Ids join when they are equal, or, when one side holds numbers and the other text,
when they agree as text: the text ``"42"`` joins the number 42 (and ``"42.0"``, an integer
written as a float, joins it too), but ``"00042"`` does not. A labels file that repeats an id is
refused. Rows without a label (no matching id, or an empty target) are left out of the metrics.

:func:`label_values` checks the labels against the model: a class the model never saw, a
regression target that is not a finite number.

:func:`evaluate_performance` measures the metrics on the labelled rows against the validation
values and thresholds recorded at packaging, with a bootstrap noise level, and checks the labels
themselves (the ``labels`` check).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..core.results import CheckResult, fmt, listing
from ..exceptions import InputError

_CANONICAL_INT_TEXT = re.compile(r"-?(?:0|[1-9]\d*)(?:\.0+)?")
MAX_SHOWN = 40  # characters of a label value quoted in a message
BOOTSTRAP = 100
BOOTSTRAP_ROWS = 5000
DEFAULT_DECAY = 0.05  # relative decay tolerated when no overfit gap was declared
MIN_LABELLED_ROWS = 10  # fewer labelled rows are reported, never judged
MIN_MATCHED_SHARE = 0.5  # fewer label rows matching a scored row: warn (wrong file or ids?)


@dataclass
class LabelJoin:
    """The label of each scored row, and how the join went."""

    y: pd.Series  # label per scored row (NaN where none), on the scored rows' index
    label_rows: int  # rows in the labels file
    matched: int  # label rows that found a scored row
    empty: int  # label rows whose target is empty (not used)
    how: str  # "by id 'customer'", "by row order", ...


def align_labels(art: Any, preds: pd.DataFrame, labels: pd.DataFrame) -> pd.Series:
    """The label of each scored row (NaN where a row has no label)."""
    return join_labels(art, preds, labels).y


def join_labels(art: Any, preds: pd.DataFrame, labels: pd.DataFrame) -> LabelJoin:
    target = art.target
    source = labels.attrs.get("source")
    where = f"labels file {source!r}" if source else "labels file"
    if target not in labels.columns:
        raise InputError(f"{where} has no target column {target!r}.")
    empty = int(labels[target].isna().sum())
    if not art.id_column:
        if len(labels) != len(preds):
            raise InputError(
                f"{where} has {len(labels)} rows for {len(preds)} scored rows; without an id "
                "column labels are matched by row order, so the counts must be equal."
            )
        y = pd.Series(labels[target].to_numpy(), index=preds.index)
        return LabelJoin(y, len(labels), len(labels), empty, "by row order")
    id_column = art.id_column
    if id_column not in labels.columns:
        raise InputError(f"{where} has no id column {id_column!r} to join on.")
    from ..core.pii import columns_of

    personal = id_column in columns_of(art)
    lab_ids, batch_ids = labels[id_column], preds[id_column]
    how = f"by id {id_column!r}"
    if _kind(lab_ids) != _kind(batch_ids) and "empty" not in (_kind(lab_ids), _kind(batch_ids)):
        lab_keys = id_keys(lab_ids, other_numeric=_kind(batch_ids) == "number")
        batch_keys = id_keys(batch_ids, other_numeric=_kind(lab_ids) == "number")
        how += (f", compared as text (the labels' ids are {_kind(lab_ids)}s, the batch's "
                f"{_kind(batch_ids)}s)")
    else:
        lab_keys, batch_keys = lab_ids, batch_ids
    present = lab_keys.notna().to_numpy()
    dup = lab_keys.duplicated(keep=False).to_numpy() & present
    if dup.any():
        rows = np.flatnonzero(dup)[:2].tolist()
        shown = "an id" if personal else f"id {_short(lab_ids.iloc[rows[0]])}"
        raise InputError(f"{where} repeats {shown} (rows {rows[0]} and {rows[1]}); ids must be "
                         "unique.")
    keys = pd.Index(lab_keys.to_numpy()[present])
    values = labels[target].to_numpy()[present]
    pos = keys.get_indexer(pd.Index(batch_keys.to_numpy()))
    hit = pos >= 0
    out = np.full(len(pos), None, dtype=object)
    out[hit] = values[pos[hit]]
    y = pd.Series(out, index=preds.index, dtype="object")
    if values.dtype.kind in "iuf":  # numbers stay numbers (NaN where no label)
        y = pd.to_numeric(y)
    matched = int(np.unique(pos[hit]).size)
    return LabelJoin(y, len(labels), matched, empty, how)


def id_kind(s: pd.Series) -> str:
    """What a column of ids holds: ``number``, ``text``, ``bool`` or ``empty``; ids of different
    kinds join as text (:func:`id_keys`)."""
    return _kind(s)


def _kind(s: pd.Series) -> str:
    nonnull = s.dropna()
    if nonnull.empty:
        return "empty"
    if pd.api.types.is_bool_dtype(nonnull.dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(nonnull.dtype):
        return "number"
    inferred = pd.api.types.infer_dtype(nonnull, skipna=True)
    return "number" if inferred in ("integer", "floating", "mixed-integer-float", "decimal") else "text"


def id_keys(s: pd.Series, *, other_numeric: bool) -> pd.Series:
    """Ids as the text they agree on: numbers in their shortest form (42.0 -> "42"); text as
    it is, except that an integer written as text (``"42"``, ``"42.0"``) joins a number."""

    def key(v: Any) -> str | None:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return None
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, bool):
            return str(v)
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return str(int(v)) if v.is_integer() else repr(v)
        text = str(v)
        if other_numeric and _CANONICAL_INT_TEXT.fullmatch(text):
            return text.split(".")[0]
        return text

    return s.astype("object").map(key).astype("object")


def _short(value: Any) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…'"


# -- labels against the model -------------------------------------------------------------------
@dataclass
class LabelValues:
    """Labels coerced to the model's classes (or to floats), and the ones that cannot be."""

    values: pd.Series  # the usable labels, on the labelled rows' index
    valid: np.ndarray  # which of the given labels are usable
    invalid: dict[str, int]  # shown value -> rows: unseen classes, text or inf for a regressor
    reason: str | None  # what is wrong with the invalid ones


def label_text(v: Any) -> str:
    """A label as text, so that 1, 1.0 and "1" compare equal."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


def label_values(y: pd.Series, task: str, classes: list[Any] | None) -> LabelValues:
    """The labels as the model's classes (matched as text) or finite floats; see the docs."""
    if task == "classification" and classes:
        if all(isinstance(c, bool) for c in classes):
            def as_class(v: Any) -> Any:
                t = label_text(v).strip().lower()
                return True if t in _TRUE else (False if t in _FALSE else _INVALID)
        else:
            by_text = {label_text(c): c for c in classes}

            def as_class(v: Any) -> Any:
                return by_text.get(label_text(v), _INVALID)

        mapped = y.map(as_class)
        bad = mapped.map(lambda v: v is _INVALID).to_numpy(dtype=bool)
        shown = ", ".join(_short(c) for c in classes)
        reason = f"values that are not classes of the model (its classes: {shown})"
        good = mapped[~bad]
        values = good.astype(type(classes[0])) if not good.empty and classes else good
    else:
        numbers = pd.to_numeric(y, errors="coerce").astype("float64")
        bad = ~np.isfinite(numbers.to_numpy())
        reason = "values that are not finite numbers (text, inf or -inf)"
        values = numbers[~bad]
    counts = y[bad].map(_short).value_counts()
    invalid = {str(k): int(v) for k, v in counts.items()}
    return LabelValues(values=values, valid=~bad, invalid=invalid,
                       reason=reason if invalid else None)


_INVALID = object()


# -- metrics on the labelled rows ------------------------------------------------------------------
def precomputed(task: str, outputs: pd.DataFrame, classes: list[Any] | None) -> Any:
    """An estimator that answers with already computed outputs, indexed by row number."""
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

    pred = outputs["prediction"].to_numpy()
    if task == "classification":
        proba = outputs[[f"proba_{c}" for c in classes or []]].to_numpy(dtype="float64")

        class Fixed(ClassifierMixin, BaseEstimator):
            def __init__(self) -> None:
                self.classes_ = np.asarray(classes)

            def predict(self, X):
                return pred[np.asarray(X)[:, 0]]

            def predict_proba(self, X):
                return proba[np.asarray(X)[:, 0]]

        return Fixed()

    class FixedReg(RegressorMixin, BaseEstimator):
        def predict(self, X):
            return pred[np.asarray(X)[:, 0]]

    return FixedReg()


def coerce_labels(y: pd.Series, classes: list[Any] | None) -> pd.Series:
    """Labels as the model's classes (or floats); InputError when some cannot be."""
    lv = label_values(y, "classification" if classes else "regression", classes)
    if lv.invalid:
        shown = listing([f"{v} ({n:,} row{'s' if n != 1 else ''})" for v, n in lv.invalid.items()], 5)
        raise InputError(f"The labels hold {lv.reason}: {shown}.")
    return lv.values.reset_index(drop=True)


def _labels_check(perf: dict[str, Any], invalid: dict[str, int], reason: str | None,
                  usable: int) -> CheckResult:
    """How the labels joined and whether they make sense for this model."""
    join = perf["join"]
    scored, label_rows, matched = perf["rows"], perf["label_rows"], perf["matched_label_rows"]
    counts = (f"{usable:,} of {scored:,} scored rows labelled; {matched:,} of {label_rows:,} "
              f"label rows matched a scored row ({join})")
    problems, status = [], "pass"
    if invalid:
        status = "fail"
        shown = ", ".join(f"{v} ({n} row{'s' if n != 1 else ''})"
                          for v, n in list(invalid.items())[:5])
        more = f" and {len(invalid) - 5} more" if len(invalid) > 5 else ""
        problems.append(f"the labels contradict the model: {sum(invalid.values()):,} hold "
                        f"{reason}: {shown}{more}")
    if perf["empty_targets"]:
        problems.append(f"{perf['empty_targets']:,} label rows have an empty target (not used)")
    if matched == 0:
        problems.append("no label matched a scored row: are these the labels of this batch, "
                        "with the ids written the same way?")
    elif matched < MIN_MATCHED_SHARE * (label_rows - perf["empty_targets"]):
        problems.append(f"only {matched / max(label_rows, 1):.0%} of the label rows matched: "
                        "are these the labels of this batch, with the ids written the same way?")
    if 0 < usable < MIN_LABELLED_ROWS:
        problems.append(f"{usable} labelled row{'s are' if usable != 1 else ' is'} too few to "
                        f"judge performance (at least {MIN_LABELLED_ROWS})")
    if problems and status == "pass":
        status = "warn"
    if usable == 0 and status == "pass":
        status = "warn"
    message = counts + ("; " + "; ".join(problems) if problems else "")
    return CheckResult(name="labels", kind="labels", status=status, message=message,
                       value=usable, threshold=MIN_LABELLED_ROWS,
                       details={"labelled_rows": usable, "label_rows": label_rows,
                                "matched_label_rows": matched, "scored_rows": scored,
                                "empty_targets": perf["empty_targets"], "invalid": invalid,
                                "join": join})


def _single_class_reason(yk: pd.Series, m: Any, task: str) -> str | None:
    if task != "classification" or yk.nunique() >= 2:
        return None
    only = label_text(yk.iloc[0]) if len(yk) else "none"
    return f"the labelled rows all hold class {only}; {m.label} needs at least two classes"


def evaluate_performance(art: Any, scored: Any, labels: pd.DataFrame, *,
                         scored_rows: int | None = None) -> tuple[dict[str, Any], list[CheckResult]]:
    """Metrics on the labelled rows against validation, and a ``labels`` check on the labels.

    Never passes on nonsense: labels with classes the model never saw or targets that are not
    finite numbers fail the ``labels`` check (and are left out of the metrics); a metric that
    cannot be computed (a single class, too few rows, an undefined value) is a ``warn`` with
    the reason; too few or no matched labels are a ``warn`` with the counts.

    ``scored_rows``: the batch's scored rows, when ``scored.all_outputs`` holds only those that
    may have a label (a batch scored in chunks keeps only those, see ``nbprod.jobs.chunk``).
    """
    import warnings

    from ..core.metrics import resolve

    outputs = scored.all_outputs
    positions = getattr(scored, "positions", None)
    if (not art.id_column and positions is not None and len(positions) != scored.rows_in
            and len(labels) == scored.rows_in):
        labels = labels.iloc[positions]  # by row order: the labels of the rows not rejected
    joined = join_labels(art, outputs, labels)
    y = joined.y
    known = y.notna().to_numpy()
    lv = label_values(y[known], art.task, art.classes)
    usable_pos = np.flatnonzero(known)[lv.valid]
    usable = len(usable_pos)
    perf: dict[str, Any] = {"labelled_rows": usable,
                            "rows": len(outputs) if scored_rows is None else scored_rows,
                            "label_rows": joined.label_rows, "matched_label_rows": joined.matched,
                            "empty_targets": joined.empty, "invalid_labels": lv.invalid,
                            "join": joined.how, "metrics": {}}
    label_check = _labels_check(perf, lv.invalid, lv.reason, usable)
    checks = [label_check]
    ref = art.reference["metrics"]
    if usable == 0:
        perf["note"] = "no scored row has a usable label"
        for name in ref["values"]:
            perf["metrics"][name] = {"value": None, "error": "no labelled rows"}
        perf["decayed"] = False
        return perf, checks
    yk = lv.values.reset_index(drop=True)
    est = precomputed(art.task, outputs.iloc[usable_pos].reset_index(drop=True), art.classes)
    rows = np.arange(len(yk)).reshape(-1, 1)
    rng = np.random.default_rng(0)
    for name, info in ref["values"].items():
        m = resolve(name)
        label = m.label
        why = _single_class_reason(yk, m, art.task) if _needs_two_classes(m) else None
        current = math.nan
        if why is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # undefined metrics come back as NaN here
                try:
                    current = m.natural(m.score(est, rows, yk))
                except ValueError as exc:  # e.g. a log loss without every class
                    why = f"{label} could not be computed: {str(exc)[:200]}"
        if why is None and not math.isfinite(current):
            why = f"{label} is undefined on these {len(yk):,} labelled rows"
        valid = info.get("value")
        if why is not None:
            perf["metrics"][name] = {"value": None, "validation": valid, "error": why}
            checks.append(CheckResult(
                name=f"performance:{name}", kind="performance", status="warn",
                message=f"{label} not measured on {len(yk):,} labelled rows: {why}",
                value=None, details=perf["metrics"][name]))
            continue
        se = _bootstrap_se(m, est, rows, yk, rng)
        th = ref.get("thresholds", {}).get(name, {})
        if valid is None or not math.isfinite(valid):
            perf["metrics"][name] = {"value": current, "validation": None, "standard_error": se,
                                     "error": "no validation value recorded at packaging"}
            checks.append(CheckResult(
                name=f"performance:{name}", kind="performance", status="warn",
                message=f"{label} {fmt(current)} on {len(yk):,} labelled rows; no validation "
                        "value was recorded at packaging to compare it with",
                value=current, details=perf["metrics"][name]))
            continue
        sign = 1 if m.greater_is_better else -1
        decay = sign * (valid - current)  # positive: worse than at validation
        tolerance = th.get("max_decay") if th.get("max_decay") is not None else DEFAULT_DECAY * max(abs(valid), 1e-12)
        noise = 2 * se if se is not None else 0.0
        breaches = []
        if th.get("min") is not None and current < th["min"]:
            breaches.append(f"below the minimum {fmt(th['min'])}")
        if th.get("max") is not None and current > th["max"]:
            breaches.append(f"above the maximum {fmt(th['max'])}")
        decayed = decay > max(tolerance, noise)
        problems = breaches + ([f"{fmt(decay)} worse than at validation ({fmt(valid)}); tolerated "
                                f"{fmt(max(tolerance, noise))}"] if decayed else [])
        perf["metrics"][name] = {"value": current, "validation": valid, "decay": decay,
                                 "standard_error": se, "tolerance": tolerance,
                                 "min": th.get("min"), "max": th.get("max"),
                                 "below_threshold": bool(breaches), "decayed": decayed}
        few = len(yk) < MIN_LABELLED_ROWS
        if problems:
            status = "warn" if few else "fail"
            text = f"{label} {fmt(current)} on {len(yk):,} labelled rows is " + "; ".join(problems)
        elif few:
            status = "warn"
            text = (f"{label} {fmt(current)} on only {len(yk):,} labelled rows (validation "
                    f"{fmt(valid)}): too few to judge (at least {MIN_LABELLED_ROWS})")
        else:
            status = "pass"
            text = f"{label} {fmt(current)} on {len(yk):,} labelled rows (validation {fmt(valid)})"
        if few and problems:
            text += f"; but {len(yk):,} labelled rows are too few to judge (at least {MIN_LABELLED_ROWS})"
        checks.append(CheckResult(
            name=f"performance:{name}", kind="performance", status=status, message=text,
            value=current, threshold={"min": th.get("min"), "max": th.get("max"), "max_decay": tolerance},
            details=perf["metrics"][name]))
    perf["decayed"] = any(c.status == "fail" for c in checks if c.kind == "performance")
    return perf, checks


def _needs_two_classes(m: Any) -> bool:
    """Metrics undefined on labels of a single class (ROC AUC, log loss, average precision)."""
    name = m.scorer_name
    return name.startswith(("roc_auc", "neg_log_loss", "average_precision", "neg_brier"))


def _bootstrap_se(m: Any, est: Any, rows: np.ndarray, yk: pd.Series,
                  rng: np.random.Generator) -> float | None:
    """Bootstrap standard error of the metric at this batch size (None when undefined), by
    :func:`scipy.stats.bootstrap` over at most ``BOOTSTRAP_ROWS`` of the rows, scaled to the
    batch. Resamples where the metric is undefined (one class drawn) are left out; with ten or
    fewer defined ones there is no estimate."""
    import warnings

    from scipy.stats import bootstrap

    boot_n = min(len(yk), BOOTSTRAP_ROWS)
    sample = rng.choice(len(yk), boot_n, replace=False) if boot_n < len(yk) else np.arange(boot_n)

    def metric(pick: np.ndarray) -> float:
        try:
            return m.natural(m.score(est, rows[pick], yk.iloc[pick]))
        except ValueError:
            return math.nan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined resamples, and a degenerate distribution
        if boot_n < 2:  # every resample of one row is that row: no spread, if defined at all
            return 0.0 if math.isfinite(metric(sample)) else None
        sims = bootstrap((sample,), metric, n_resamples=BOOTSTRAP, vectorized=False,
                         method="percentile", rng=rng).bootstrap_distribution
    sims = sims[np.isfinite(sims)]
    if len(sims) <= 10:
        return None
    return float(np.std(sims)) * math.sqrt(boot_n / len(yk))

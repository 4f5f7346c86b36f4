"""Joining the labels of a scored batch to its rows, once they are known, and checking them.

Labels are joined on the id column declared at snapshot time, or by row order when no id was
declared. Ids join when they are equal, or, when one side holds numbers and the other text,
when they agree as text: the text ``"42"`` joins the number 42 (and ``"42.0"``, an integer
written as a float, joins it too), but ``"00042"`` does not. A labels file that repeats an id is
refused. Rows without a label (no matching id, or an empty target) are left out of the metrics.

:func:`label_values` checks the labels against the model: a class the model never saw, a
regression target that is not a finite number. The metrics on them are the checks' own (see
:mod:`nbprod.monitor`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import InputError

_CANONICAL_INT_TEXT = re.compile(r"-?(?:0|[1-9]\d*)(?:\.0+)?")
MAX_SHOWN = 40  # characters of a label value quoted in a message


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
    from .core.pii import columns_of

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

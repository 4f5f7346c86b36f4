"""Row-level validation: which rows of a batch cannot be scored correctly, and which lie
outside what the model saw.

Every row is validated before it is scored. A row that cannot be scored correctly is
**rejected** (not scored); a row that can be scored but lies outside what the model saw is
**flagged** (scored). The rules come from the training snapshot (schema and profile) and from
what the model takes, probed at packaging (the manifest's ``row_rules``, see :class:`ModelTakes`).
Each (row, column) gets at most one issue: the first rule that applies, in this order.

======================  ===================================================  =========
kind                    rule: when                                           action
======================  ===================================================  =========
integer, float          ``type``: the value does not convert to a number      rejected
                        ``missing``: null, and the model cannot take it       rejected
                        ``missing``: null, the model takes it, none in train  flagged
                        ``non-finite``: +inf or -inf                          rejected
                        ``magnitude``: more than ``MAGNITUDE_FACTOR`` times   rejected
                        the training span beyond the training range (beyond
                        float32 when the range is unknown)
                        ``sign``: a sign never seen in training               flagged
                        ``out-of-range``: below the training min or above     flagged
                        the max
string, category        ``type``: does not convert (numeric categories)       rejected
                        ``missing``: as for numbers                           rejected/flagged
                        ``unseen-category``: never seen in training, and the  rejected
                        model cannot encode it (only where the profile knows
                        every training value)
                        ``unseen-category``: the same, the model ignores it   flagged
bool                    ``type``, ``missing`` as above                        rejected/flagged
datetime                ``type``, ``missing`` as above; ``out-of-range``      rejected/flagged
id column               ``null-id``: the id is missing or blank               rejected
                        ``duplicate-id``: the id repeats an earlier row's     flagged
any (while scoring)     ``model-error``: the feature function or the model    rejected
                        failed on this row alone, or returned a non-finite
                        output for it
======================  ===================================================  =========

Columns declared as personal data (PII) never have their values echoed: their ``value`` is
``[personal data]``. This module is pure: pandas and numpy, no IPython, papermill or MLflow.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import RowError, RowsRejectedError
from .pii import HIDDEN  # the one marker printed instead of a hidden value
from .schema import ColumnSpec, Schema

REJECTED, FLAGGED = "rejected", "flagged"
ISSUE_COLUMNS = ("row", "column", "value", "rule", "action", "detail")
MAGNITUDE_FACTOR = 1000.0  # "absurd": farther beyond the training range than 1000 x its span
FLOAT32_MAX = float(np.finfo(np.float32).max)  # many models compute in float32
VALUE_CHARS = 80  # a value echoed in the issues file or a message is cut to this length
MODEL_ERROR = "model-error"

RULES = {  # rule -> what it means, in words
    "type": "the value does not convert to the column's type",
    "missing": "the value is missing",
    "non-finite": "the number is infinite",
    "magnitude": "the number is absurdly far beyond the training range",
    "sign": "the number has a sign never seen in training",
    "out-of-range": "the value is outside the training range",
    "unseen-category": "the category was never seen in training",
    "null-id": "the id is missing",
    "duplicate-id": "the id repeats an earlier row's id",
    MODEL_ERROR: "the feature function or the model failed on this row",
}


# -- what the model takes -------------------------------------------------------------------
@dataclass(frozen=True)
class ModelTakes:
    """What the model takes in each input column, as probed at packaging.

    ``columns`` maps a column to ``{"takes_missing": bool, "takes_unseen": bool | None, ...}``
    (the manifest's ``row_rules.columns``). Artifacts packaged before the probe existed have
    none and get defaults: a missing value is taken only where training had missing values; an
    unseen category is flagged, and if the model then fails on it, the row is rejected as a
    ``model-error``.
    """

    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    probed: bool = False

    @classmethod
    def from_manifest(cls, data: dict[str, Any] | None) -> ModelTakes:
        if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
            return cls()
        return cls({str(k): v for k, v in data["columns"].items() if isinstance(v, dict)}, True)

    def missing(self, spec: ColumnSpec) -> bool:
        taken = self.columns.get(spec.name, {}).get("takes_missing")
        return spec.nullable if taken is None else bool(taken)

    def unseen(self, name: str) -> bool:
        taken = self.columns.get(name, {}).get("takes_unseen")
        return True if taken is None else bool(taken)


# -- the result -----------------------------------------------------------------------------
def issue_id_column(id_column: str | None) -> str | None:
    """The id column's name in the issues file: its own, unless it clashes with a fixed one."""
    if id_column is None:
        return None
    return f"input_{id_column}" if id_column in ISSUE_COLUMNS else id_column


@dataclass
class RowIssues:
    """The issues of one batch (or chunk): a table and two masks over input positions.

    ``frame`` has one row per (row, column) problem: ``row`` (0-based position in the whole
    input), the id column under its own name when there is one, ``column``, ``value`` (text,
    cut; ``[personal data]`` for personal data), ``rule``, ``action`` and ``detail`` (in words).
    ``rejected`` marks rows not scored; ``flagged`` marks scored rows with at least one flag.
    Chunks validated with consecutive ``start`` offsets merge with :meth:`concat`.
    """

    frame: pd.DataFrame
    rejected: np.ndarray
    flagged: np.ndarray
    id_column: str | None = None
    start: int = 0

    @classmethod
    def empty(cls, n: int, id_column: str | None = None, *, start: int = 0,
              id_dtype: Any = "object") -> RowIssues:
        return cls(_empty_frame(id_column, id_dtype), np.zeros(n, bool), np.zeros(n, bool),
                   id_column, start)

    @classmethod
    def concat(cls, parts: Sequence[RowIssues]) -> RowIssues:
        """Merge the issues of consecutive chunks (each ``start`` follows the previous chunk)."""
        if not parts:
            raise ValueError("RowIssues.concat needs at least one part")
        expected = parts[0].start
        for p in parts:
            if p.start != expected:
                raise ValueError(f"chunks are not consecutive: a part starts at row {p.start}, "
                                 f"expected {expected}")
            expected += p.rows_in
        frames = [p.frame for p in parts if len(p.frame)] or [parts[0].frame]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return cls(frame, np.concatenate([p.rejected for p in parts]),
                   np.concatenate([p.flagged for p in parts]), parts[0].id_column, parts[0].start)

    # -- counts -------------------------------------------------------------------------
    @property
    def rows_in(self) -> int:
        return len(self.rejected)

    @property
    def n_rejected(self) -> int:
        return int(self.rejected.sum())

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())

    def __len__(self) -> int:
        return len(self.frame)

    def __bool__(self) -> bool:
        return len(self.frame) > 0

    def counts(self, action: str | None = None) -> list[dict[str, Any]]:
        """Rows per (column, rule, action), most frequent first."""
        f = self.frame if action is None else self.frame[self.frame["action"] == action]
        if f.empty:
            return []
        counted = Counter(zip(f["column"].where(f["column"].notna(), None), f["rule"], f["action"],
                              strict=True))
        return [{"column": c, "rule": r, "action": a, "rows": n}
                for (c, r, a), n in counted.most_common()]

    def describe(self, action: str, limit: int = 5) -> str:
        """e.g. ``usage non-finite 2, plan unseen-category 1``."""
        return describe_counts(self.counts(action), limit)

    def summary(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "rejected": self.n_rejected, "flagged": self.n_flagged,
                "issues": len(self.frame), "by": self.counts()}

    def table(self) -> pd.DataFrame:
        """The issues file's table (``detail`` last)."""
        return self.frame.reset_index(drop=True)

    def for_rows(self, positions: Iterable[int]) -> pd.DataFrame:
        want = np.asarray(list(positions), dtype="int64")
        return self.frame[self.frame["row"].isin(want)]

    # -- errors -------------------------------------------------------------------------
    def first_rejection(self, *, where: str | None = None) -> RowError:
        """A :class:`RowError` for the first rejected row, naming row, column, rule, value."""
        f = self.frame[self.frame["action"] == REJECTED]
        r = f.iloc[0]
        row = int(r["row"])
        idc = issue_id_column(self.id_column)
        ident = f" (id {_plain(r[idc])!r})" if idc and pd.notna(r[idc]) else ""
        place = where or f"Row {row}{ident}"
        col = r["column"] if isinstance(r["column"], str) else None
        value = r["value"] if isinstance(r["value"], str) else None
        shown = "" if value is None else f" Value: {value!r}."
        more = self.n_rejected - 1
        others = f" {more} more row(s) are rejected too." if more > 0 else ""
        in_col = f"column {col!r}: " if col else ""
        return RowError(
            f"{place} cannot be scored: {in_col}{r['detail']} (rule {r['rule']}).{shown}{others} "
            "Fix the input, or score with errors='reject' to score the other rows and list "
            "the rejected ones.",
            col, row=row, rule=str(r["rule"]), value=value)

    def all_rejected_error(self) -> RowsRejectedError:
        return all_rejected(self.counts(REJECTED)[0], self.rows_in)

    # -- changes ------------------------------------------------------------------------
    def add(self, positions: np.ndarray, *, column: str | None, rule: str, action: str,
            detail: Sequence[str] | str, values: Sequence[str | None] | None = None,
            ids: Any = None) -> RowIssues:
        """These issues plus new ones at local ``positions`` (e.g. model errors)."""
        positions = np.asarray(positions, dtype="int64")
        if positions.size == 0:
            return self
        new = _frame([_Part(positions, column, rule, action, detail, values)], self.start,
                     self.id_column, ids, self.frame)
        frame = pd.concat([self.frame, new], ignore_index=True) if len(self.frame) else new
        frame = frame.sort_values("row", kind="stable", ignore_index=True)
        rejected = self.rejected.copy()
        flagged = self.flagged.copy()
        (rejected if action == REJECTED else flagged)[positions] = True
        return RowIssues(frame, rejected, flagged & ~rejected, self.id_column, self.start)


# -- validation -----------------------------------------------------------------------------
@dataclass
class _Part:
    positions: np.ndarray  # local positions
    column: str | None
    rule: str
    action: str
    detail: Sequence[str] | str
    values: Sequence[str | None] | None = None


def validate(raw: pd.DataFrame, X: pd.DataFrame, lost: dict[str, np.ndarray], schema: Schema, *,
             profile: dict[str, Any] | None = None, takes: ModelTakes | None = None,
             id_column: str | None = None, hidden: Iterable[str] = (),
             start: int = 0, duplicates: bool = True) -> RowIssues:
    """The issues of a batch: ``raw`` as read, ``X`` conformed in collecting mode
    (:func:`nbprod.core.schema.conform_rows`) with the positions of values that did not convert in
    ``lost``. ``profile`` is the training profile, ``takes`` what the model takes, ``hidden``
    the personal-data columns whose values are never echoed. ``start`` is the position of the
    first row in the whole input (for chunks). ``duplicates=False`` leaves the ``duplicate-id``
    rule to the caller: a chunk cannot see the ids of the others
    (:mod:`nbprod.core.duplicates` finds them across a whole batch)."""
    n = len(X)
    takes = takes or ModelTakes()
    profile = profile or {}
    hidden = set(hidden)
    parts: list[_Part] = []
    if id_column is not None and id_column in raw.columns:
        parts += _id_rules(raw[id_column], id_column, id_column in hidden, duplicates)
    for spec in schema.columns:
        ref = profile.get(spec.name) or {}
        is_hidden = spec.name in hidden or bool(ref.get("hidden"))
        candidates = _column_rules(X[spec.name], spec, lost.get(spec.name), ref, takes, is_hidden)
        taken = np.zeros(n, dtype=bool)
        for rule, action, mask, detail in candidates:
            if mask is None:
                continue
            m = mask & ~taken
            if m.any():
                pos = np.flatnonzero(m)
                parts.append(_Part(pos, spec.name, rule, action, detail,
                                   _value_texts(raw[spec.name], pos, is_hidden, spec.kind)))
                taken |= m
    ids = raw[id_column] if id_column is not None and id_column in raw.columns else None
    id_dtype = ids.dtype if ids is not None else "object"
    if not parts:
        return RowIssues.empty(n, id_column, start=start, id_dtype=id_dtype)
    rejected = np.zeros(n, dtype=bool)
    flagged = np.zeros(n, dtype=bool)
    for p in parts:
        (rejected if p.action == REJECTED else flagged)[p.positions] = True
    frame = _frame(parts, start, id_column, ids, None)
    order = {name: i for i, name in enumerate([id_column, *schema.names])}
    frame = (frame.assign(_c=frame["column"].map(order).fillna(len(order)))
             .sort_values(["row", "_c"], kind="stable", ignore_index=True).drop(columns="_c"))
    return RowIssues(frame, rejected, flagged & ~rejected, id_column, start)


def _column_rules(x: pd.Series, spec: ColumnSpec, lost: np.ndarray | None, ref: dict[str, Any],
                  takes: ModelTakes, hidden: bool) -> list[tuple[str, str, Any, Any]]:
    """(rule, action, mask, detail) in order of precedence for one column."""
    if lost is None and spec.kind in ("integer", "float") and _numbers_in_range(x, ref, hidden):
        return []  # the common case, in two passes: no null, nothing non-finite or out of range
    null = x.isna().to_numpy() if x.hasnans else np.zeros(len(x), dtype=bool)
    if lost is not None:
        null = null & ~lost
    rules: list[tuple[str, str, Any, Any]] = [
        ("type", REJECTED, lost, f"expected {spec.kind} ({spec.dtype}); the value does not "
                                 "convert"),
    ]
    if null.any():
        if takes.missing(spec):
            if not spec.nullable:
                rules.append(("missing", FLAGGED, null, "missing; the model takes it, but "
                                                        "training had no missing value here"))
        else:
            rules.append(("missing", REJECTED, null, "missing, and the model cannot take a "
                                                     "missing value in this column"))
    if spec.kind in ("integer", "float"):
        rules += _numeric_rules(x, ref, hidden)
    elif spec.kind == "datetime":
        rules += _datetime_rules(x, ref, hidden)
    elif spec.kind in ("string", "category"):
        rules += _category_rules(x, ref, takes.unseen(spec.name), hidden)
    return rules


def _numbers(x: pd.Series) -> np.ndarray:
    """The column as a numpy array of numbers (float64 with NaN where it needs one)."""
    if isinstance(x.dtype, np.dtype) and x.dtype.kind in "iuf":
        return x.to_numpy()
    return x.to_numpy(dtype="float64", na_value=np.nan)


def _numbers_in_range(x: pd.Series, ref: dict[str, Any], hidden: bool) -> bool:
    """Whether every value is present, finite and inside the training range (or, without a
    known range, inside float32's)."""
    v = _numbers(x)
    if v.size == 0:
        return True
    lo, hi = (None, None) if hidden else (ref.get("min"), ref.get("max"))
    if lo is None or hi is None:
        lo, hi = -FLOAT32_MAX, FLOAT32_MAX
    mn, mx = v.min(), v.max()  # NaN propagates: a null fails the test
    return bool(mn >= lo and mx <= hi)


def _numeric_rules(x: pd.Series, ref: dict[str, Any], hidden: bool) -> list[tuple[str, str, Any, Any]]:
    v = _numbers(x)
    out: list[tuple[str, str, Any, Any]] = []
    lo, hi = (None, None) if hidden else (ref.get("min"), ref.get("max"))
    if v.dtype.kind == "f":
        finite = np.isfinite(v)
        if not finite.all():
            inf = np.isinf(v)
            if inf.any():
                out.append(("non-finite", REJECTED, inf, "not a finite number"))
            # non-finite values and nulls are other rules' business: park them inside the range
            v = np.where(finite, v, 0.0 if lo is None or hi is None else (lo + hi) / 2.0)
    mn, mx = v.min(), v.max()
    if lo is None or hi is None:
        if mn < -FLOAT32_MAX or mx > FLOAT32_MAX:
            out.append(("magnitude", REJECTED, np.abs(v) > FLOAT32_MAX,
                        "beyond the float32 range that many models compute in"))
        return out
    if mn >= lo and mx <= hi:
        return out
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    limit_lo = max(lo - MAGNITUDE_FACTOR * span, -FLOAT32_MAX)
    limit_hi = min(hi + MAGNITUDE_FACTOR * span, FLOAT32_MAX)
    rng = f"[{_num(lo)}, {_num(hi)}]"
    if mn < limit_lo or mx > limit_hi:
        out.append(("magnitude", REJECTED, (v < limit_lo) | (v > limit_hi),
                    f"absurdly far from the training range {rng}: more than "
                    f"{MAGNITUDE_FACTOR:g} x its span beyond it"))
    if lo >= 0 and mn < 0:
        out.append(("sign", FLAGGED, v < 0, f"negative; every training value was >= {_num(lo)}"))
    elif hi <= 0 and mx > 0:
        out.append(("sign", FLAGGED, v > 0, f"positive; every training value was <= {_num(hi)}"))
    out.append(("out-of-range", FLAGGED, (v < lo) | (v > hi), f"outside the training range {rng}"))
    return out


def _datetime_rules(x: pd.Series, ref: dict[str, Any], hidden: bool) -> list[tuple[str, str, Any, Any]]:
    lo, hi = (None, None) if hidden else (ref.get("min"), ref.get("max"))
    if lo is None or hi is None or not pd.api.types.is_datetime64_any_dtype(x.dtype):
        return []
    s = x
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    arr = s.to_numpy(dtype="datetime64[ns]")
    nat = np.isnat(arr)
    v = np.where(nat, (lo + hi) / 2.0, arr.astype("int64").astype("float64"))
    outside = (v < lo) | (v > hi)
    if not outside.any():
        return []
    rng = f"[{_ts(lo)}, {_ts(hi)}]"
    return [("out-of-range", FLAGGED, outside, f"outside the training range {rng}")]


def _category_rules(x: pd.Series, ref: dict[str, Any], takes_unseen: bool,
                    hidden: bool) -> list[tuple[str, str, Any, Any]]:
    if (hidden or ref.get("type") != "categorical" or ref.get("other_count")
            or "frequencies" not in ref):
        return []  # the profile does not know every training value
    known = set(ref["frequencies"])
    if isinstance(x.dtype, pd.CategoricalDtype):
        new_c = np.array([_key(c) not in known for c in x.cat.categories], dtype=bool)
        if not new_c.any():
            return []
        codes = x.cat.codes.to_numpy()
        unseen = (codes >= 0) & new_c[np.maximum(codes, 0)]
    elif pd.api.types.is_string_dtype(x.dtype) and x.dtype != object:
        unseen = (~x.isin(list(known)) & x.notna()).to_numpy(dtype=bool)  # text: one hash pass
    else:  # objects: compare as text, once per distinct value
        codes, uniques = pd.factorize(x, use_na_sentinel=True)
        new_u = np.array([_key(u) not in known for u in uniques], dtype=bool)
        unseen = (codes >= 0) & (new_u[np.maximum(codes, 0)] if len(uniques) else False)
    if not unseen.any():
        return []
    if takes_unseen:
        return [("unseen-category", FLAGGED, unseen,
                 "a category never seen in training (the model ignores it)")]
    return [("unseen-category", REJECTED, unseen,
             "a category never seen in training, and the model cannot encode it")]


def _ids_unique(ids: pd.Series) -> bool:
    """A quick proof that the ids are present and unique (False means: look closer)."""
    if isinstance(ids.dtype, np.dtype) and ids.dtype.kind in "iu":
        v = ids.to_numpy()
        if v.size < 2:
            return True
        if bool((v[1:] > v[:-1]).all()):  # strictly increasing: row numbers, sequences
            return True
        s = np.sort(v)
        return bool((s[1:] != s[:-1]).all())
    if ids.dtype == object or pd.api.types.is_string_dtype(ids.dtype):
        return False  # text needs its blanks looked at too
    return not ids.isna().any() and ids.is_unique


def _id_rules(ids: pd.Series, name: str, hidden: bool, duplicates: bool = True) -> list[_Part]:
    if _ids_unique(ids):
        return []
    if pd.api.types.is_string_dtype(ids.dtype) and ids.dtype != object:
        blank = ids.str.strip().eq("").fillna(False).to_numpy(dtype=bool)
        if not blank.any() and not ids.isna().any() and (not duplicates or ids.is_unique):
            return []
    codes, null = _id_codes(ids)
    parts = []
    if null.any():
        pos = np.flatnonzero(null)
        parts.append(_Part(pos, name, "null-id", REJECTED, "the id is missing",
                           _value_texts(ids, pos, hidden)))
    valid = ~null
    if duplicates and valid.any():
        # factorize numbers ids in order of first appearance: a row is an id's first
        # occurrence exactly when its code exceeds every code before it
        runmax = np.maximum.accumulate(codes)
        first = codes > np.concatenate([[-1], runmax[:-1]])
        dup = valid & ~first
        if dup.any():
            first_pos = np.flatnonzero(first)  # first_pos[k]: where id k first appears
            pos = np.flatnonzero(dup)
            detail = [f"the id repeats row {int(r)}" for r in first_pos[codes[pos]]]
            parts.append(_Part(pos, name, "duplicate-id", FLAGGED, detail,
                               _value_texts(ids, pos, hidden)))
    return parts


def _id_codes(ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize`` codes of the ids, and which ids are missing (null, or blank text)."""
    codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    null = codes < 0
    if len(uniques) and (ids.dtype == object or pd.api.types.is_string_dtype(ids.dtype)):
        texts = pd.Series(uniques, dtype="object" if ids.dtype == object else ids.dtype)
        blank = texts.str.strip().eq("").fillna(False).to_numpy(dtype=bool)
        if blank.any():
            null = null | ((codes >= 0) & blank[np.maximum(codes, 0)])
    return codes, null


def missing_ids(ids: pd.Series) -> np.ndarray:
    """Which ids the ``null-id`` rule rejects: missing, or blank text."""
    if isinstance(ids.dtype, np.dtype) and ids.dtype.kind in "iu":
        return np.zeros(len(ids), dtype=bool)
    return _id_codes(ids)[1]


# -- the issues table -----------------------------------------------------------------------
def _empty_frame(id_column: str | None, id_dtype: Any = "object") -> pd.DataFrame:
    cols: dict[str, Any] = {"row": pd.Series([], dtype="int64")}
    idc = issue_id_column(id_column)
    if idc:
        cols[idc] = pd.Series([], dtype=id_dtype)
    for c in ISSUE_COLUMNS[1:]:
        cols[c] = pd.Series([], dtype="object")
    return pd.DataFrame(cols)


def _frame(parts: list[_Part], start: int, id_column: str | None, ids: pd.Series | None,
           like: pd.DataFrame | None) -> pd.DataFrame:
    pos = np.concatenate([p.positions for p in parts])
    n = pos.size

    def spread(attr: str) -> np.ndarray:
        out = np.empty(n, dtype=object)
        i = 0
        for p in parts:
            k = p.positions.size
            value = getattr(p, attr)
            if value is None or isinstance(value, str):
                out[i:i + k] = value
            else:
                out[i:i + k] = list(value)
            i += k
        return out

    cols: dict[str, Any] = {"row": (pos + start).astype("int64")}
    idc = issue_id_column(id_column)
    if idc:
        if ids is not None:
            cols[idc] = ids.iloc[pos].reset_index(drop=True)
        else:
            dtype = like[idc].dtype if like is not None and idc in like else "object"
            cols[idc] = pd.Series([None] * n, dtype=dtype)
    cols["column"] = spread("column")
    cols["value"] = spread("values")
    cols["rule"] = np.array([p.rule for p in parts for _ in range(p.positions.size)], dtype=object)
    cols["action"] = np.array([p.action for p in parts for _ in range(p.positions.size)],
                              dtype=object)
    cols["detail"] = spread("detail")
    return pd.DataFrame(cols)


def _value_texts(s: pd.Series, positions: np.ndarray, hidden: bool,
                 kind: str | None = None) -> list[str | None]:
    """The values at ``positions`` as text, cut to :data:`VALUE_CHARS` (nulls stay None).

    In a number column a value is shown as the column's kind reads it (integer ``5``, float
    ``5.0``), whether the reader gave it as an integer, a float or text: what a chunk of rows
    infers must not change how a value is shown."""
    if hidden:
        return [HIDDEN] * positions.size
    part = s.iloc[positions]
    missing = part.isna().to_numpy()
    values = part.to_numpy(dtype=object)
    if kind in ("integer", "float"):
        values = [_as_number(v, kind) for v in values]
    return [None if m else value_text(v) for v, m in zip(values, missing, strict=True)]


def _as_number(value: Any, kind: str) -> Any:
    """``value`` as a number of ``kind`` when it reads as one, else as it is."""
    value = _plain(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if "_" in text:  # Python's literals allow 1_000; readers do not
            return value
        try:
            value = int(text) if kind == "integer" else float(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return value
    if isinstance(value, int):
        return float(value) if kind == "float" else value
    if isinstance(value, float):
        if kind == "integer" and value.is_integer():
            return int(value)
        return value
    return value


def value_text(value: Any) -> str:
    """A value as readable text: control characters escaped, cut to :data:`VALUE_CHARS`."""
    value = _plain(value)
    text = value if isinstance(value, str) else str(value)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 3] + "..."


def default_issues_path(output_path: str | Path) -> Path:
    """``<output stem>.issues<ext>`` beside the output: preds.csv -> preds.issues.csv,
    preds.csv.gz -> preds.issues.csv.gz, preds.parquet -> preds.issues.parquet; for a directory
    of Parquet parts (``preds/``), preds.issues.parquet."""
    p = Path(output_path)
    if str(output_path).endswith(("/", os.sep)):
        return p.with_name(f"{p.name}.issues.parquet")
    name = p.name
    ext = name[-7:] if name.lower().endswith(".csv.gz") else p.suffix
    stem = name[: len(name) - len(ext)] if ext else name
    return p.with_name(f"{stem}.issues{ext}")


def all_rejected(top: dict[str, Any], rows_in: int) -> RowsRejectedError:
    """The error when every input row was rejected; ``top`` is the most common rejection
    (:meth:`RowIssues.counts`)."""
    col, rule = top["column"], top["rule"]
    return RowsRejectedError(
        f"Every one of the {rows_in:,} input rows was rejected; nothing to score. Most "
        f"common: {'column ' + repr(col) if col else 'the model'}, rule {rule} "
        f"({top['rows']:,} rows: {RULES.get(rule, rule)}). Is this the right file for this "
        "model?",
        col, rule=rule)


def describe_counts(parts: list[dict[str, Any]], limit: int = 5) -> str:
    """:meth:`RowIssues.counts` in words: ``usage non-finite 2, plan unseen-category 1``."""
    text = ", ".join(f"{_where(p['column'])} {p['rule']} {p['rows']}" for p in parts[:limit])
    return text + (f" and {len(parts) - limit} more" if len(parts) > limit else "")


def duplicate_issues(rows: np.ndarray, first: np.ndarray, ids: pd.Series, id_column: str,
                     hidden: bool) -> pd.DataFrame:
    """The issues table's rows for ids that repeat earlier rows' (found across a batch's
    chunks by :mod:`nbprod.core.duplicates`): ``rows`` repeat ``first``."""
    ids = ids.reset_index(drop=True)
    local = np.arange(len(ids), dtype="int64")
    part = _Part(local, id_column, "duplicate-id", FLAGGED,
                 [f"the id repeats row {int(r)}" for r in first], _value_texts(ids, local, hidden))
    frame = _frame([part], 0, id_column, ids, None)
    frame["row"] = np.asarray(rows, dtype="int64")
    return frame


# -- small helpers --------------------------------------------------------------------------
def _where(column: str | None) -> str:
    return column if column else "(model)"


def _key(value: Any) -> str:
    return str(_plain(value))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:.6g}"


def _ts(ns: float) -> str:
    return pd.Timestamp(int(ns)).isoformat()

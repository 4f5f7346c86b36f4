"""The schema of a data snapshot, and conforming new input to it.

A schema is recorded from the training snapshot: for each column its name, its pandas dtype,
its kind (integer, float, bool, string, category, datetime, other), whether it held nulls, and
the categories of categorical columns. At scoring time :func:`conform` makes a new frame look like
the training frame, or raises :class:`~nbprod.exceptions.SchemaError` naming the column.
:func:`conform_rows` is its collecting mode, for row-level validation: a value that does not
convert becomes a null and its position is reported, so one bad value costs one row, not the
batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import SchemaError

KINDS = ("integer", "float", "bool", "string", "category", "datetime", "other")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def column_kind(series: pd.Series) -> str:
    """Classify a column into one of :data:`KINDS`."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype):
        if dtype is np.dtype(object) and pd.api.types.infer_dtype(series, skipna=True) not in (
            "string",
            "empty",
        ):
            return "other"
        return "string"
    return "other"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    dtype: str
    kind: str
    nullable: bool
    categories: list[Any] | None = None
    ordered: bool = False
    pii: bool = False  # personal data: messages never quote its values

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "nullable": self.nullable,
        }
        if self.categories is not None:
            out["categories"] = list(self.categories)
            out["ordered"] = self.ordered
        if self.pii:
            out["pii"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSpec:
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            kind=data["kind"],
            nullable=bool(data["nullable"]),
            categories=data.get("categories"),
            ordered=bool(data.get("ordered", False)),
            pii=bool(data.get("pii", False)),
        )


@dataclass(frozen=True)
class Schema:
    columns: tuple[ColumnSpec, ...] = field(default_factory=tuple)

    @classmethod
    def infer(cls, df: pd.DataFrame, *, hide_categories: Iterable[str] = ()) -> Schema:
        """Record the schema of ``df``; ``hide_categories`` (PII columns) keep no values."""
        hidden = set(hide_categories)
        specs = []
        for name in df.columns:
            s = df[name]
            kind = column_kind(s)
            categories = None
            ordered = False
            if kind == "category" and name not in hidden:
                categories = [_plain(v) for v in s.cat.categories]
                ordered = bool(s.cat.ordered)
            specs.append(
                ColumnSpec(
                    name=str(name),
                    dtype="category" if kind == "category" else str(s.dtype),
                    kind=kind,
                    nullable=bool(s.isna().any()),
                    categories=categories,
                    ordered=ordered,
                    pii=name in hidden,
                )
            )
        return cls(tuple(specs))

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def select(self, names: Iterable[str]) -> Schema:
        keep = list(names)
        return Schema(tuple(self[n] for n in keep))

    def to_list(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.columns]

    @classmethod
    def from_list(cls, data: list[dict[str, Any]]) -> Schema:
        return cls(tuple(ColumnSpec.from_dict(d) for d in data))


def _plain(value: Any) -> Any:
    """A JSON-friendly Python scalar for a numpy/pandas scalar."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def conform(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Return ``df``'s schema columns, in schema order, converted to the recorded dtypes.

    Columns already of the recorded dtype are passed through untouched (no copy). Raises
    :class:`SchemaError` naming the first column that is missing or does not convert.
    """
    _require_columns(df, schema)
    out = {}
    for spec in schema.columns:
        out[spec.name] = _convert(df[spec.name], spec)
    return pd.DataFrame(out, index=df.index, copy=False)


def conform_rows(df: pd.DataFrame, schema: Schema, *,
                 whole: bool = True) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """:func:`conform` in collecting mode: values that do not convert become nulls.

    Returns the conformed frame and, for each column that had such values, a boolean mask of
    their positions. Problems of the input as a whole still raise :class:`SchemaError`: not a
    DataFrame, a missing column, or a column where no value converts (the wrong type as a whole,
    such as text in every row of a number column). ``whole=False`` (``df`` is one chunk of a
    batch) leaves that last judgement to the caller, who sees the whole batch.
    """
    _require_columns(df, schema)
    out = {}
    lost: dict[str, np.ndarray] = {}
    for spec in schema.columns:
        converted, bad = _convert_collecting(df[spec.name], spec, whole)
        out[spec.name] = converted
        if bad is not None and bad.any():
            lost[spec.name] = bad
    return pd.DataFrame(out, index=df.index, copy=False), lost


def _require_columns(df: pd.DataFrame, schema: Schema) -> None:
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"Expected a pandas DataFrame to score. Got {type(df).__name__}.")
    missing = [n for n in schema.names if n not in df.columns]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise SchemaError(
            f"Input is missing column {shown}{more} that the model was trained with.",
            column=missing[0],
        )


def _convert(s: pd.Series, spec: ColumnSpec) -> pd.Series:
    if spec.kind != "category" and str(s.dtype) == spec.dtype:
        return s
    try:
        converted = _CONVERTERS.get(spec.kind, _convert_other)(s, spec)
    except SchemaError:
        raise
    except (TypeError, ValueError) as exc:
        raise _not_converting(spec, exc) from None
    lost = _lost_values(s, converted)
    if lost is not None:
        raise _values_not_converting(s, spec, lost, "{} value(s) do not convert")
    return converted


def _not_converting(spec: ColumnSpec, exc: Exception) -> SchemaError:
    """The error for a column whose values do not convert as a whole."""
    why = "its values are personal data, not shown" if spec.pii else exc
    return SchemaError(
        f"Column {spec.name!r} does not convert to {spec.kind} ({spec.dtype}): {why}",
        column=spec.name,
    )


def _convert_collecting(s: pd.Series, spec: ColumnSpec,
                        whole: bool = True) -> tuple[pd.Series, np.ndarray | None]:
    """Convert ``s``; values that do not convert become nulls, returned as a mask."""
    if spec.kind != "category" and str(s.dtype) == spec.dtype:
        return s, None
    convert = _CONVERTERS.get(spec.kind, _convert_other)
    refused = None
    try:
        converted = convert(s, spec)
    except (TypeError, ValueError):  # SchemaError included: find the values that fail alone
        refused = _refused_values(s, spec)
        try:
            converted = convert(s.astype("object").where(~refused, None), spec)
        except (TypeError, ValueError) as exc:
            raise _not_converting(spec, exc) from None
    lost = _lost_values(s, converted)
    if refused is not None and refused.any():
        lost = refused if lost is None else (lost | refused)
    if whole and lost is not None and lost.any() and not converted.notna().any():
        raise _values_not_converting(s, spec, lost, "none of its {} non-blank value(s) converts",
                                     _NOT_CONVERTING_HINT)
    return converted, lost


_NOT_CONVERTING_HINT = " Is this the right file, or the right column?"


def nothing_converts(spec: ColumnSpec, count: int, example: str, row: int) -> SchemaError:
    """The error for a column where none of the ``count`` non-blank values converts (the wrong
    input as a whole), judged over a batch's chunks; ``example`` is the first value as a message
    quotes it, at ``row``. The words of :func:`_convert_collecting`'s."""
    return SchemaError(
        f"Column {spec.name!r} expected {spec.kind} values ({spec.dtype}); none of its "
        f"{count} non-blank value(s) converts, e.g. {example} at row {row}.{_NOT_CONVERTING_HINT}",
        column=spec.name,
    )


def _values_not_converting(s: pd.Series, spec: ColumnSpec, lost: np.ndarray, counted: str,
                           hint: str = "") -> SchemaError:
    """The error for values of ``s`` that do not convert (``lost``), quoting the first one;
    ``counted`` says how many, its ``{}`` standing for their number."""
    pos = int(np.flatnonzero(lost)[0])
    return SchemaError(
        f"Column {spec.name!r} expected {spec.kind} values ({spec.dtype}); "
        f"{counted.format(int(lost.sum()))}, e.g. {_quoted(s.iloc[pos], spec)} at row {pos}.{hint}",
        column=spec.name,
    )


def _refused_values(s: pd.Series, spec: ColumnSpec) -> np.ndarray:
    """Which values the converter refuses one by one (slow; only after a whole-column failure)."""
    convert = _CONVERTERS.get(spec.kind, _convert_other)
    refused = np.zeros(len(s), dtype=bool)
    for i, value in enumerate(s.astype("object").to_numpy()):
        try:
            convert(pd.Series([value], dtype="object"), spec)
        except (TypeError, ValueError):
            refused[i] = True
    return refused


_SHOWN = 60


def _quoted(value: Any, spec: ColumnSpec) -> str:
    """``repr(value)`` as a message quotes it, cut to a sane length; never the value of a
    personal column."""
    if spec.pii:
        from .pii import HIDDEN

        return HIDDEN
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _lost_values(before: pd.Series, after: pd.Series) -> np.ndarray | None:
    """Positions of values present before and null after conversion (blank text is missing,
    not lost); ``None`` when there are none."""
    lost = after.isna().to_numpy() & before.notna().to_numpy()
    if not lost.any():
        return None
    if before.dtype == object or pd.api.types.is_string_dtype(before.dtype):
        # blank text is missing, not lost; only the rows that became null need the check
        rows = np.flatnonzero(lost)
        blank = (before.iloc[rows].astype("str").str.strip() == "").to_numpy()
        lost[rows[blank]] = False
    return lost if lost.any() else None


def _convert_integer(s: pd.Series, spec: ColumnSpec) -> pd.Series:
    num = _to_numeric(s, spec)
    values = num.to_numpy(dtype="float64", na_value=np.nan)
    finite = values[~np.isnan(values)]
    integral = bool(np.all(np.equal(np.mod(finite, 1), 0)))
    if not integral:
        return num.astype("float64")
    if num.isna().any():
        # a plain numpy integer dtype cannot hold nulls: keep them as floats
        return num.astype("Int64" if spec.dtype[:1].isupper() else "float64")
    return num.astype(spec.dtype)


def _convert_float(s: pd.Series, spec: ColumnSpec) -> pd.Series:
    return _to_numeric(s, spec).astype(spec.dtype)


def _to_numeric(s: pd.Series, spec: ColumnSpec) -> pd.Series:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("int64")
    if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
        s = s.where(s.astype("str").str.strip() != "", None) if len(s) else s
    return pd.to_numeric(s, errors="coerce")


def _convert_bool(s: pd.Series, spec: ColumnSpec) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s.dtype):
        mapped = s.map({1: True, 0: False})  # any other number becomes null: it did not convert
    else:
        lowered = s.astype("str").str.strip().str.lower()
        mapped = lowered.map(lambda v: True if v in _TRUE else (False if v in _FALSE else None))
        mapped = mapped.where(s.notna(), None)
    if mapped.isna().any() or spec.nullable:
        return mapped.astype("boolean")
    return mapped.astype("bool")


def _convert_string(s: pd.Series, spec: ColumnSpec) -> pd.Series:
    out = s.astype(spec.dtype)
    if s.dtype.kind == "f":
        # 3.0 read as float becomes "3.0"; keep integral numbers looking like integers
        out = out.str.replace(r"\.0$", "", regex=True)
    return out


def _convert_category(s: pd.Series, spec: ColumnSpec) -> pd.Series:
    known = list(spec.categories or [])
    if isinstance(s.dtype, pd.CategoricalDtype) and list(s.cat.categories) == known:
        return s
    values = s.astype("object")
    if known and all(isinstance(k, int | float) and not isinstance(k, bool) for k in known):
        numeric = pd.to_numeric(values, errors="coerce")  # "2" from a CSV is category 2
        values = numeric.astype("object").where(numeric.notna(), None)
        if all(isinstance(k, int) for k in known):
            values = values.map(lambda v: int(v) if v is not None and float(v).is_integer() else v)
    seen = set(known)
    extra = sorted({v for v in values.dropna().unique() if v not in seen}, key=str)
    dtype = pd.CategoricalDtype(categories=known + extra, ordered=spec.ordered)
    return values.astype(dtype)


def _convert_datetime(s: pd.Series, spec: ColumnSpec) -> pd.Series:
    with warnings.catch_warnings():  # "could not infer format": the values are parsed one by one
        warnings.simplefilter("ignore", UserWarning)
        out = pd.to_datetime(s, errors="coerce")
    retry = out.isna().to_numpy() & s.notna().to_numpy()
    if retry.any():  # the format is inferred from the first value: parse the others one by one
        again = pd.to_datetime(s[retry], errors="coerce", format="mixed")
        if again.notna().any():
            out = out.copy()
            out[retry] = again
    try:
        return out.astype(spec.dtype)
    except (TypeError, ValueError):
        return out


def _convert_other(s: pd.Series, spec: ColumnSpec) -> pd.Series:
    return s


_CONVERTERS = {
    "integer": _convert_integer,
    "float": _convert_float,
    "bool": _convert_bool,
    "string": _convert_string,
    "category": _convert_category,
    "datetime": _convert_datetime,
}

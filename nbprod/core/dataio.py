"""Reading input files and writing outputs atomically (CSV, .csv.gz, Parquet, by extension)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import InputError
from .files import atomic_path
from .schema import Schema
from .text import quote

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def file_format(path: str | Path, flag: str = "path") -> str:
    suffixes = Path(path).suffixes
    ext = suffixes[-1].lower() if suffixes else ""
    if ext == ".gz" and len(suffixes) > 1 and suffixes[-2].lower() == ".csv":
        return "csv"
    fmt = FORMATS.get(ext)
    if fmt is None:
        raise InputError(
            f"{flag} {str(path)!r}: unsupported file type {ext or '(none)'!r}; "
            "use .csv, .csv.gz or .parquet."
        )
    return fmt


def check_file(p: Path, what: str) -> None:
    """Raise InputError naming the file unless ``p`` is a readable, non-empty file."""
    try:
        if not p.exists():
            raise InputError(f"{what} file {quote(p)} does not exist.")
        if p.is_dir():
            raise InputError(f"{what} {quote(p)} is a directory, not a file.")
        if p.stat().st_size == 0:
            raise InputError(f"{what} file {quote(p)} is empty.")
    except OSError as exc:
        raise InputError(f"{what} {quote(p)} cannot be read: {exc.strerror or exc}.") from None


def read_frame(path: str | Path, schema: Schema | None = None, *, what: str = "input") -> pd.DataFrame:
    """Read a CSV or Parquet file; string columns of ``schema`` are read as text (zip codes
    keep their leading zeros). Raises InputError naming the file for anything unreadable."""
    p = Path(path)
    fmt = file_format(p, what)
    check_file(p, what)
    try:
        if fmt == "csv":
            dtype: dict[str, Any] = {}
            if schema is not None:
                dtype = {c.name: "str" for c in schema.columns if c.kind == "string"}
            df = pd.read_csv(p, dtype=dtype or None, **_missing_markers(p, dtype))
        else:
            df = pd.read_parquet(p)
    except pd.errors.EmptyDataError:
        raise InputError(f"{what} file {str(p)!r} has no data.") from None
    except Exception as exc:
        raise InputError(
            f"{what} file {str(p)!r} is not readable as {fmt}: {type(exc).__name__}: {exc}"
        ) from None
    if len(df) == 0:
        raise InputError(f"{what} file {str(p)!r} has a header but no rows.")
    df.attrs["source"] = str(p)  # later messages about its columns can name the file
    return df


def csv_options(path: Path, schema: Schema | None) -> dict[str, Any]:
    """``read_csv`` options for ``path`` under :func:`read_frame`'s rules: the text columns of
    ``schema`` read as text, where only an empty field is missing (see
    :func:`_missing_markers`). The streaming reader (:mod:`nbprod.core.sources`) uses them too."""
    dtype: dict[str, Any] = {}
    if schema is not None:
        dtype = {c.name: "str" for c in schema.columns if c.kind == "string"}
    return {"dtype": dtype or None, **_missing_markers(Path(path), dtype)}


def _missing_markers(path: Path, text: dict[str, Any]) -> dict[str, Any]:
    """``read_csv`` options under which, in text columns, only an empty field is missing:
    "NA" (Namibia), "null" or "None" are values there, as they were in the training frame.
    Every other column keeps pandas' default markers. One pass over the file either way."""
    if not text:
        return {}
    from .markers import CSV_NA_MARKERS  # read_csv's default markers

    header = pd.read_csv(path, nrows=0).columns
    return {"keep_default_na": False,
            "na_values": {c: [""] if c in text else sorted(CSV_NA_MARKERS) for c in header}}


def write_frame(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` atomically: to a temporary file beside ``path``, then renamed over it."""
    p = Path(path)
    fmt = file_format(p, "output")
    if not p.parent.exists():
        raise InputError(f"output directory {str(p.parent)!r} does not exist.")
    with atomic_path(p) as tmp:
        if fmt == "csv":
            # the temporary name hides the extension, so say how to compress (.csv.gz)
            gz = p.suffix.lower() == ".gz"
            df.to_csv(tmp, index=False, compression="gzip" if gz else None)
        else:
            df.to_parquet(tmp, index=False)
    return p


def _write_to(df: pd.DataFrame, path: Path, tmp: str) -> None:
    if file_format(path, "output") == "csv":
        gz = path.suffix.lower() == ".gz"
        df.to_csv(tmp, index=False, compression="gzip" if gz else None)
    else:
        df.to_parquet(tmp, index=False)

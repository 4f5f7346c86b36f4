"""A batch as users have it, read in chunks: a file, a directory, a glob or a Hive dataset.

:func:`resolve` turns what a user passes as the input (``batch.csv``, ``batch.csv.gz``,
``batch.parquet``, a directory of Parquet or CSV files, a glob such as ``data/2026-*.parquet``,
or a Hive-partitioned directory such as ``events/day=2026-11-30/part-0.parquet``) into a
:class:`Source`: its files in a stable order (sorted by path), one format, and the partition
columns each file gets from its ``key=value`` directories. Files and directories whose name
starts with ``.`` or ``_`` (``_SUCCESS``, ``_metadata``, staging directories) are skipped.

:func:`chunks` reads a source as one batch, in frames of at most ``chunk_rows`` rows: Parquet by
record batch through pyarrow, CSV through pandas' streaming reader with the same text and
missing-value rules as :func:`nbprod.core.dataio.read_frame` (text columns of the schema are
read as text, where only an empty field is missing). Every chunk is made chunk-independent by
:func:`canonical`, so a batch scored in one piece and in chunks gives the same output.
:func:`parts` splits a source into pieces that separate processes can read on their own (Parquet
row groups, byte ranges of a CSV file), for distributed engines; :func:`read_part` reads one.
"""

from __future__ import annotations

import glob as globbing
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import InputError
from .dataio import check_file, csv_options, file_format
from .schema import Schema
from .text import quote

DEFAULT_CHUNK_ROWS = 250_000  # rows per chunk: about 100-200 MB of working memory at 10 columns
PART_BYTES = 64 * 2**20  # a CSV is split into byte ranges of about this size for parallel reading
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Source:
    """The files of one batch, in reading order, with the partition columns of each."""

    spec: str  # as the user gave it
    files: tuple[Path, ...]
    fmt: str  # "csv" | "parquet"
    partitions: tuple[tuple[tuple[str, str], ...], ...] = field(default=())  # per file: key=value

    @property
    def single(self) -> bool:
        return len(self.files) == 1 and not any(self.partitions)

    def describe(self) -> str:
        return (quote(self.spec) if self.single else
                f"{quote(self.spec)} ({len(self.files)} {self.fmt} files)")


def is_pattern(path: str | os.PathLike[str]) -> bool:
    return bool(_GLOB_CHARS & set(str(path)))


def resolve(path: str | os.PathLike[str], what: str = "input") -> Source:
    """The :class:`Source` for ``path`` (see the module docs); InputError naming the problem."""
    spec = str(path)
    if not spec.strip():
        raise InputError(f"No {what}: pass a CSV or Parquet file, a directory or a glob.")
    p = Path(spec)
    if is_pattern(spec) and not p.exists():
        matches = sorted(Path(m) for m in globbing.glob(spec, recursive=True)
                         if Path(m).is_file() and not _hidden(Path(m).name))
        if not matches:
            raise InputError(f"{what} pattern {quote(spec)} matches no file.")
        fmt = _one_format(matches, what, spec)
        return Source(spec, tuple(matches), fmt, tuple(() for _ in matches))
    if p.is_dir():
        return _directory(p, what)
    fmt = file_format(p, what)
    check_file(p, what)
    return Source(spec, (p,), fmt, ((),))


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _directory(root: Path, what: str) -> Source:
    found: list[tuple[Path, tuple[tuple[str, str], ...]]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        rel = Path(dirpath).relative_to(root)
        keys = tuple(tuple(part.split("=", 1)) for part in rel.parts if "=" in part)
        for name in sorted(filenames):
            if not _hidden(name):
                found.append((Path(dirpath) / name, keys))  # type: ignore[arg-type]
    found.sort(key=lambda f: f[0].relative_to(root).parts)
    if not found:
        raise InputError(f"{what} {quote(root)} is a directory holding no data file; pass a "
                         "CSV or Parquet file, or a directory of them.")
    fmt = _one_format([f for f, _ in found], what, str(root))
    for f, _ in found:
        check_file(f, what)
    return Source(str(root), tuple(f for f, _ in found), fmt, tuple(k for _, k in found))


def _one_format(files: list[Path], what: str, spec: str) -> str:
    formats: dict[str, Path] = {}
    for f in files:
        try:
            formats.setdefault(file_format(f, what), f)
        except InputError:
            raise InputError(f"{what} {quote(spec)} holds {quote(f)}, which is neither CSV nor "
                             "Parquet (by its extension); a batch is files of one format.") from None
    if len(formats) > 1:
        raise InputError(f"{what} {quote(spec)} mixes CSV and Parquet files ("
                         f"{quote(formats['csv'])}, {quote(formats['parquet'])}); a batch is "
                         "files of one format.")
    return next(iter(formats))


# -- reading in chunks ---------------------------------------------------------------------------
def chunks(source: Source, schema: Schema | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS, *,
           what: str = "input", id_column: str | None = None) -> Iterator[pd.DataFrame]:
    """The rows of ``source`` in order, in canonical frames of at most ``chunk_rows`` rows
    (small files are gathered into one chunk). Raises InputError naming the file for anything
    unreadable, and when the whole batch has no row."""
    rows = 0
    pending: list[pd.DataFrame] = []
    held = 0
    first: tuple[Path, set[str]] | None = None
    for i, path in enumerate(source.files):
        for frame in _file_chunks(path, source.fmt, schema, chunk_rows, what):
            frame = _with_partitions(frame, source.partitions[i] if source.partitions else ())
            first = same_columns(frame, path, first, what)
            while len(frame):
                take = frame if held + len(frame) <= chunk_rows else frame.iloc[:chunk_rows - held]
                frame = frame.iloc[len(take):]
                pending.append(take)
                held += len(take)
                if held >= chunk_rows:
                    out = _joined(pending, rows, schema, id_column)
                    rows += len(out)
                    yield out
                    pending, held = [], 0
    if pending:
        out = _joined(pending, rows, schema, id_column)
        rows += len(out)
        yield out
    if rows == 0:
        if source.single:
            raise InputError(f"{what} file {quote(source.files[0])} has a header but no rows.")
        raise InputError(f"{what} {source.describe()} holds no rows.")


def same_columns(frame: pd.DataFrame, path: Path, first: tuple[Path, set[str]] | None,
                 what: str = "input") -> tuple[Path, set[str]]:
    """The columns of the first file of a batch; InputError when ``path``'s differ."""
    cols = {str(c) for c in frame.columns}
    if first is None:
        return path, cols
    if cols != first[1]:
        missing, extra = sorted(first[1] - cols), sorted(cols - first[1])
        said = "; ".join(x for x in (
            f"lacks {', '.join(map(repr, missing[:5]))}" if missing else "",
            f"has {', '.join(map(repr, extra[:5]))} in addition" if extra else "") if x)
        raise InputError(f"{what} file {quote(path)} {said} (compared with {quote(first[0])}); "
                         "the files of one batch have the same columns.")
    return first


def _joined(frames: list[pd.DataFrame], start: int, schema: Schema | None,
            id_column: str | None) -> pd.DataFrame:
    if len(frames) == 1:
        out = frames[0]
    else:
        out = pd.concat([canonical(f, schema, id_column) for f in frames], ignore_index=True,
                        sort=False)
    out = canonical(out, schema, id_column)
    out.index = pd.RangeIndex(start, start + len(out))
    return out


def _with_partitions(frame: pd.DataFrame, keys: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    """A Hive file's partition columns (text, as in its path), unless the file has them."""
    extra = {k: v for k, v in keys if k not in frame.columns}
    if not extra:
        return frame
    return frame.assign(**{k: pd.Series([v] * len(frame), index=frame.index, dtype="str")
                           for k, v in extra.items()})


def _file_chunks(path: Path, fmt: str, schema: Schema | None, chunk_rows: int,
                 what: str) -> Iterator[pd.DataFrame]:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            # pre_buffer (pyarrow's default) keeps every column chunk read so far: the memory
            # of a whole file; without it memory stays that of one record batch
            pf = pq.ParquetFile(path, pre_buffer=False)
            for batch in pf.iter_batches(batch_size=chunk_rows):
                yield _arrow_frame(batch)
        else:
            yield from _csv_chunks(path, schema, chunk_rows)
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{what} file {quote(path)} has no data.") from None
    except (OSError, ValueError, TypeError, UnicodeDecodeError, ArithmeticError) as exc:
        raise InputError(f"{what} file {quote(path)} is not readable as {fmt}: "
                         f"{type(exc).__name__}: {_one_line(exc)}") from None
    except Exception as exc:  # pyarrow's own errors (ArrowInvalid is a ValueError; others not)
        raise InputError(f"{what} file {quote(path)} is not readable as {fmt}: "
                         f"{type(exc).__name__}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _arrow_frame(batch: Any) -> pd.DataFrame:
    import pyarrow as pa

    frame = pa.Table.from_batches([batch]).to_pandas()
    return frame.reset_index(drop=True)


def _csv_chunks(path: Path, schema: Schema | None, chunk_rows: int) -> Iterator[pd.DataFrame]:
    with pd.read_csv(path, chunksize=chunk_rows, **csv_options(path, schema)) as reader:
        yield from reader


# -- canonical chunks ----------------------------------------------------------------------------
def canonical(frame: pd.DataFrame, schema: Schema | None, id_column: str | None) -> pd.DataFrame:
    """``frame`` with the id column in a form that does not depend on which rows a chunk holds.

    Readers infer a column's dtype from the rows they see: integer ids with a missing value in
    the chunk come as float64 (``5.0``), without as int64 (``5``). Integer ids whose values are
    all whole numbers are made int64 (``Int64`` when some are missing), and float ids float64,
    so every chunk writes them the same way."""
    if not id_column or id_column not in frame.columns or schema is None:
        return frame
    try:
        kind = schema[id_column].kind
    except KeyError:
        return frame
    ids = frame[id_column]
    fixed = canonical_ids(ids, kind)
    if fixed is ids:
        return frame
    out = frame.copy(deep=False)
    out[id_column] = fixed
    return out


def canonical_ids(ids: pd.Series, kind: str) -> pd.Series:
    dtype = ids.dtype
    if kind == "integer":
        if isinstance(dtype, np.dtype) and dtype.kind in "iu" and dtype != np.int64:
            return ids.astype("int64") if dtype.kind == "i" or ids.max() < 2**63 else ids
        if isinstance(dtype, np.dtype) and dtype.kind == "f" or str(dtype) in ("Int64", "Float64"):
            values = ids.to_numpy(dtype="float64", na_value=np.nan)
            present = ~np.isnan(values)
            kept = values[present]
            if kept.size and not (np.all(np.isfinite(kept)) and np.all(kept == np.round(kept))
                                  and np.all(np.abs(kept) < 2**63)):
                return ids
            if present.all():
                return ids.astype("int64") if str(dtype) != "int64" else ids
            return ids.astype("Int64")
        return ids
    if kind == "float" and isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return ids.astype("float64")
    return ids


def output_ids(ids: pd.Series) -> pd.Series:
    """Scored rows' ids as written: ``Int64`` without a missing value becomes int64."""
    if str(ids.dtype) == "Int64" and not ids.hasnans:
        return ids.astype("int64")
    return ids


# -- counting -------------------------------------------------------------------------------
def estimated_rows(source: Source) -> int | None:
    """The number of rows: exact for Parquet (from the files' metadata), estimated from the
    file sizes and a sample of lines for plain CSV, None for compressed CSV."""
    try:
        if source.fmt == "parquet":
            import pyarrow.parquet as pq

            return sum(pq.ParquetFile(f).metadata.num_rows for f in source.files)
        if any(f.suffix.lower() == ".gz" for f in source.files):
            return None
        total = 0
        for f in source.files:
            size = f.stat().st_size
            with open(f, "rb") as fh:
                sample = fh.read(1 << 20)
            lines = sample.count(b"\n")
            if lines <= 1:
                total += 1
                continue
            per_line = len(sample) / lines
            total += max(int(size / per_line) - 1, 0)
        return total
    except (OSError, ValueError):
        return None
    except Exception:  # an unreadable Parquet footer: reading says so, counting need not
        return None


# -- parts for distributed engines -----------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """A piece of a source that a process can read alone: row groups of a Parquet file, or a
    byte range of a CSV file (whole lines; the first part of a file holds its header)."""

    index: int
    file: int  # position in source.files
    row_groups: tuple[int, ...] = ()
    start: int = 0  # CSV byte range [start, stop); stop -1: to the end
    stop: int = -1


def parts(source: Source, chunk_rows: int = DEFAULT_CHUNK_ROWS,
          part_bytes: int = PART_BYTES) -> list[Part]:
    """The source split for parallel reading (see :class:`Part`). A compressed CSV, or one that
    holds a quote character (a quoted field may span lines), is one part per file."""
    out: list[Part] = []
    for i, path in enumerate(source.files):
        if source.fmt == "parquet":
            import pyarrow.parquet as pq

            try:
                meta = pq.ParquetFile(path).metadata
            except Exception as exc:
                raise InputError(f"input file {quote(path)} is not readable as parquet: "
                                 f"{type(exc).__name__}: {_one_line(exc)}") from None
            group: list[int] = []
            rows = 0
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                if group and rows + n > chunk_rows:
                    out.append(Part(len(out), i, tuple(group)))
                    group, rows = [], 0
                group.append(g)
                rows += n
            if group or not out or out[-1].file != i:
                out.append(Part(len(out), i, tuple(group)))
            continue
        size = path.stat().st_size
        if path.suffix.lower() == ".gz" or size <= part_bytes or _has_quotes(path):
            out.append(Part(len(out), i))
            continue
        for start in range(0, size, part_bytes):
            out.append(Part(len(out), i, start=start, stop=min(start + part_bytes, size)))
    return out


def _has_quotes(path: Path) -> bool:
    import mmap

    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return mm.find(b'"') >= 0


def read_part(source: Source, part: Part, schema: Schema | None, chunk_rows: int, *,
              id_column: str | None = None, what: str = "input") -> Iterator[pd.DataFrame]:
    """The rows of one part, in canonical chunks of at most ``chunk_rows`` rows (index from 0
    within the part)."""
    path = source.files[part.file]
    keys = source.partitions[part.file] if source.partitions else ()
    start = 0
    for frame in _part_frames(path, source.fmt, part, schema, chunk_rows, what):
        frame = canonical(_with_partitions(frame, keys), schema, id_column)
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        if len(frame):
            yield frame


def _part_frames(path: Path, fmt: str, part: Part, schema: Schema | None, chunk_rows: int,
                 what: str) -> Iterator[pd.DataFrame]:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            if not part.row_groups:
                return
            pf = pq.ParquetFile(path, pre_buffer=False)  # see _file_chunks
            for batch in pf.iter_batches(batch_size=chunk_rows, row_groups=list(part.row_groups)):
                yield _arrow_frame(batch)
            return
        if part.stop < 0:
            yield from _csv_chunks(path, schema, chunk_rows)
            return
        block = _line_block(path, part.start, part.stop)
        if not block:
            return
        header = pd.read_csv(path, nrows=0).columns
        options = csv_options(path, schema)
        with pd.read_csv(io.BytesIO(block), header=None, names=list(header), chunksize=chunk_rows,
                         **options) as reader:
            yield from reader
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        return
    except Exception as exc:
        raise InputError(f"{what} file {quote(path)} is not readable as {fmt}: "
                         f"{type(exc).__name__}: {_one_line(exc)}") from None


def _line_block(path: Path, start: int, stop: int) -> bytes:
    """The whole lines that begin in [start, stop) of a file, the header line excluded."""
    with open(path, "rb") as fh:
        if start == 0:
            fh.readline()  # the header
        else:
            fh.seek(start - 1)
            if fh.read(1) != b"\n":
                fh.readline()  # the rest of a line that began before start
        begin = fh.tell()
        if begin >= stop:
            return b""
        fh.seek(stop - 1)
        if fh.read(1) != b"\n":
            fh.readline()  # the line that began before stop ends in this block
        end = fh.tell()
        fh.seek(begin)
        return fh.read(end - begin)

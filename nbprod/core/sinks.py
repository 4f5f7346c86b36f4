"""Writing a batch's outputs chunk by chunk: CSV appends and a Parquet writer.

A :class:`FrameWriter` writes frames of one table into one file, in order: CSV (``.csv``,
``.csv.gz``) with the header once, then every chunk's rows, byte for byte what ``to_csv`` writes
for the whole table; Parquet through one ``pyarrow.parquet.ParquetWriter``, a row group per chunk.
The file's schema comes from the arrow types alone (no pandas metadata), so it does not depend
on which rows the first chunk held. When a later chunk needs a wider type (a column that was
all missing, integers then floats, numbers then text), the file written so far is rewritten
with the wider type: rare, and then the result is what one piece would have given.

Writers write where they are told: the scoring run points them into its staging directory
(:mod:`nbprod.core.staging`), which publishes the finished files atomically. :func:`concat`
joins part files written by separate processes into one output.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from .dataio import file_format


class FrameWriter:
    """Write the chunks of one table into ``path`` (see the module docs)."""

    def __init__(self, path: str | os.PathLike[str], fmt: str | None = None, *,
                 header: bool = True) -> None:
        self.path = Path(path)
        self.fmt = fmt or file_format(self.path, "output")
        self.gz = self.path.name.lower().endswith(".gz")
        self.header = header
        self.rows = 0
        self.columns: list[str] | None = None
        self._fh: Any = None
        self._writer: Any = None
        self._schema: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.columns is None:
            self.columns = [str(c) for c in frame.columns]
        elif [str(c) for c in frame.columns] != self.columns:
            raise ValueError(f"chunk columns {list(frame.columns)} differ from {self.columns}")
        if self.fmt == "csv":
            self._write_csv(frame)
        else:
            self._write_parquet(frame)
        self.rows += len(frame)

    def _write_csv(self, frame: pd.DataFrame) -> None:
        first = self._fh is None
        if first:
            if self.gz:
                import gzip

                self._fh = gzip.open(self.path, "wt", encoding="utf-8", newline="")  # noqa: SIM115
            else:
                self._fh = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        frame.to_csv(self._fh, index=False, header=first and self.header)

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        self.write_arrow(pa.Table.from_pandas(frame, preserve_index=False))

    def write_arrow(self, table: Any) -> None:
        """Append a pyarrow table (Parquet only)."""
        table = table.replace_schema_metadata(None)
        if self.columns is None:
            self.columns = list(table.schema.names)
        if self._writer is None:
            self._open(table.schema)
        elif not table.schema.equals(self._schema):
            wider = widened(self._schema, table.schema)
            if not wider.equals(self._schema):
                self._rewrite(wider)
            table = table.cast(wider)
        self._writer.write_table(table)

    def _open(self, schema: Any) -> None:
        import pyarrow.parquet as pq

        self._schema = schema
        self._writer = pq.ParquetWriter(self.path, schema)

    def _rewrite(self, schema: Any) -> None:
        """Re-write what was written with the wider ``schema`` (see the module docs)."""
        import pyarrow.parquet as pq

        self._writer.close()
        old = self.path.with_name(self.path.name + ".narrow")
        os.replace(self.path, old)
        self._open(schema)
        source = pq.ParquetFile(old)
        for g in range(source.metadata.num_row_groups):
            self._writer.write_table(source.read_row_group(g).cast(schema))
        source.close()
        old.unlink()

    def close(self) -> None:
        """Finish the file (an empty table still gets its header or schema)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        elif self.fmt == "csv" and self.columns is None:
            self.path.touch()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def abort(self) -> None:
        try:
            self.close()
        finally:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def widened(a: Any, b: Any) -> Any:
    """A schema holding both ``a`` and ``b`` (same column names): missing-only columns take the
    other's type, integers and floats become float64, anything with text becomes text. Raises
    ValueError for types that do not widen."""
    import pyarrow as pa

    if a.names != b.names:
        raise ValueError(f"columns {b.names} differ from {a.names}")
    fields = []
    for fa, fb in zip(a, b, strict=True):
        ta, tb = fa.type, fb.type
        if ta.equals(tb) or pa.types.is_null(tb):
            t = ta
        elif pa.types.is_null(ta):
            t = tb
        elif _texty(ta) or _texty(tb):
            t = pa.large_string()
        elif _numeric(ta) and _numeric(tb):
            t = pa.float64() if pa.types.is_floating(ta) or pa.types.is_floating(tb) else pa.int64()
        else:
            raise ValueError(f"column {fa.name!r} holds {ta} in one chunk and {tb} in another")
        fields.append(pa.field(fa.name, t))
    return pa.schema(fields)


def _texty(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _numeric(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t)


# -- parts --------------------------------------------------------------------------------------
def part_name(index: int, fmt: str, gz: bool = False) -> str:
    ext = {"csv": ".csv", "parquet": ".parquet"}[fmt] + (".gz" if gz and fmt == "csv" else "")
    return f"part-{index:05d}{ext}"


def concat(parts: Iterable[Path], columns: list[str], dest: Path) -> int:
    """Join part files (written by :class:`FrameWriter` with ``header=False`` for CSV) into
    ``dest``, in order; returns the rows written (0 for CSV: its parts are copied as bytes)."""
    fmt = file_format(dest, "output")
    parts = list(parts)
    if fmt == "csv":
        gz = dest.name.lower().endswith(".gz")
        with open(dest, "wb") as out:
            head = pd.DataFrame(columns=columns).to_csv(index=False).encode("utf-8")
            if gz:
                import gzip

                head = gzip.compress(head)
            out.write(head)
            for p in parts:
                with open(p, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 22)
        return 0
    import pyarrow.parquet as pq

    rows = 0
    with FrameWriter(dest, "parquet") as writer:
        for p in parts:
            source = pq.ParquetFile(p)
            for g in range(source.metadata.num_row_groups):
                table = source.read_row_group(g)
                writer.write_arrow(table)
                rows += table.num_rows
            if source.metadata.num_row_groups == 0 and writer.columns is None:
                writer.write_arrow(source.schema_arrow.empty_table())
            source.close()
        if writer.columns is None:
            writer.write(pd.DataFrame({c: pd.Series([], dtype="object") for c in columns}))
    return rows

"""Ids that repeat across the chunks of a batch, found in bounded memory.

The ``duplicate-id`` row rule (:mod:`nbprod.core.rows`) flags a row whose id repeats an earlier
row's id, and names that earlier row. One chunk cannot see the ids of the others, so a batch read
in chunks (:mod:`nbprod.core.sources`), or spread over a cluster, leaves this rule to this module:

1. each chunk spills its ids to a directory (:func:`spill`): the ids themselves (a one-column
   Parquet file) and a 64-bit hash of each id with its row, sorted by hash (a ``.npy`` file);
2. once every chunk is scored, :func:`find` reads the hashes back one hash range at a time
   (about a million at once, whatever the batch size), finds equal hashes, and confirms them
   by comparing the ids themselves (so a hash collision never flags a row).

Ids are equal as ``pd.factorize`` finds them equal in one frame: numbers by value (5 and 5.0),
text as text. Missing and blank ids are not ids (the ``null-id`` rule rejects those rows).
A batch whose integer ids rise through every chunk, as row numbers and sequences do, needs no
second pass at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_ENTRY = np.dtype([("h", "<u8"), ("row", "<i8")])
_FLOAT_SALT = np.uint64(0x9E3779B97F4A7C15)  # non-integral floats hash apart from integers
BUCKET_ROWS = 1 << 20


@dataclass(frozen=True)
class Spilled:
    """What a chunk's spill says about it without reading it back."""

    key: str
    rows: int  # rows of the chunk
    ids: int  # rows with an id (not missing)
    rising: bool  # integer ids, strictly rising within the chunk
    low: float | None = None  # smallest and largest integer id (rising chunks)
    high: float | None = None
    kind: str | None = None  # the id column's kind


def spill(directory: Path, key: str, ids: pd.Series, missing: np.ndarray,
          kind: str | None = None) -> Spilled:
    """Write the ids of one chunk (rows not ``missing``) for :func:`find`; ``kind`` is the id
    column's kind (see :func:`hashes`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    present = np.flatnonzero(~missing)
    ints = _integers(ids)
    rising = False
    low = high = None
    if ints is not None and present.size == len(ids):
        rising = bool(present.size < 2 or (ints[1:] > ints[:-1]).all())
        if rising and present.size:
            low, high = float(ints[0]), float(ints[-1])
    entries = np.empty(present.size, dtype=_ENTRY)
    entries["h"] = hashes(ids.iloc[present], kind) if present.size else np.zeros(0, "<u8")
    entries["row"] = present
    entries = entries[np.argsort(entries["h"], kind="stable")]  # rows ascend: ties stay in order
    np.save(directory / f"hash-{key}.npy", entries, allow_pickle=False)
    table = pa.Table.from_pandas(pd.DataFrame({"id": ids.reset_index(drop=True)}),
                                 preserve_index=False)
    pq.write_table(table, directory / f"ids-{key}.parquet")
    return Spilled(key, len(ids), int(present.size), rising, low, high, kind)


def _integers(ids: pd.Series) -> np.ndarray | None:
    if isinstance(ids.dtype, np.dtype) and ids.dtype.kind in "iu":
        return ids.to_numpy()
    return None


def hashes(ids: pd.Series, kind: str | None = None) -> np.ndarray:
    """A 64-bit hash of each (present) id, equal for ids that :func:`keys` finds equal.

    ``kind`` is the id column's kind in the training schema: for an integer id, text that
    writes a whole number (``"42"``, not ``"042"``) is that number, as it is where a reader
    parsed it as one."""
    dtype = ids.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return pd.util.hash_array(ids.to_numpy().astype("int64", copy=False))
    if isinstance(dtype, np.dtype) and dtype.kind == "f" or str(dtype) in ("Int64", "Float64"):
        values = ids.to_numpy(dtype="float64", na_value=np.nan)
        whole = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2**63)
        out = pd.util.hash_array(np.where(whole, values, 0).astype("int64"))
        if not whole.all():
            out = out.copy()
            out[~whole] = pd.util.hash_array(values[~whole]) ^ _FLOAT_SALT
        return out
    if not isinstance(dtype, np.dtype) and kind != "integer":  # pandas' text dtypes
        return pd.util.hash_array(ids.to_numpy(dtype=object))
    return pd.util.hash_array(np.array([_key_text(k) for k in keys(ids, kind)], dtype=object))


_WHOLE_TEXT = r"-?(?:0|[1-9][0-9]{0,17})"


def keys(ids: pd.Series, kind: str | None = None) -> list[Any]:
    """Comparable keys of the ids: whole numbers as int, other numbers as float, text as text
    (for an integer id, text that writes a whole number as that number)."""
    import re

    whole = re.compile(_WHOLE_TEXT)
    out: list[Any] = []
    for v in ids.to_numpy(dtype=object):
        if isinstance(v, np.generic):
            v = v.item()
        whole_float = isinstance(v, float) and np.isfinite(v) and v.is_integer() and abs(v) < 2**63
        if whole_float or (kind == "integer" and isinstance(v, str) and whole.fullmatch(v)):
            v = int(v)
        out.append(v)
    return out


def _key_text(k: Any) -> str:
    """What :func:`hashes` hashes for a key of a text or mixed column: text as it is, other
    keys tagged (``i:5``) so that a number never hashes like the text that writes it, except
    through :func:`keys`; equal hashes are confirmed on the keys themselves."""
    if isinstance(k, str):
        return k
    if isinstance(k, bool):
        return f"b:{k}"
    if isinstance(k, int):
        return f"i:{k}"
    if isinstance(k, float):
        return f"f:{k!r}"
    return f"o:{k}"


@dataclass
class Repeats:
    """The rows whose id repeats an earlier row's: sorted by row, with that earlier row."""

    rows: np.ndarray  # int64, global positions of the repeating rows, ascending
    first: np.ndarray  # int64, the earlier row each repeats (its id's first occurrence)
    ids: pd.Series  # the repeating rows' ids, as read


def find(directory: Path, spilled: list[Spilled], offsets: list[int]) -> Repeats:
    """The repeated ids of a batch whose chunks ``spilled`` (in order; ``offsets`` are their
    first rows in the batch) went into ``directory``."""
    empty = Repeats(np.zeros(0, "int64"), np.zeros(0, "int64"), pd.Series([], dtype="object"))
    total = sum(s.ids for s in spilled)
    if total < 2 or _rising(spilled):
        return empty
    files = [np.load(directory / f"hash-{s.key}.npy", mmap_mode="r", allow_pickle=False)
             for s in spilled]
    buckets = 1 << max(0, int(np.ceil(np.log2(max(total / BUCKET_ROWS, 1)))))
    shift = np.uint64(64 - int(np.log2(buckets))) if buckets > 1 else None
    dup_rows: list[np.ndarray] = []
    first_rows: list[np.ndarray] = []
    for b in range(buckets):
        pieces = []
        for f, off in zip(files, offsets, strict=True):
            if shift is None:
                piece = f
            else:
                lo = np.searchsorted(f["h"], np.uint64(b) << shift)
                hi = (np.searchsorted(f["h"], np.uint64(b + 1) << shift) if b + 1 < buckets
                      else len(f))
                piece = f[lo:hi]
            if len(piece):
                part = np.array(piece)
                part["row"] += off
                pieces.append(part)
        if not pieces:
            continue
        entries = np.concatenate(pieces)
        entries = entries[np.lexsort((entries["row"], entries["h"]))]
        same = entries["h"][1:] == entries["h"][:-1]
        if not same.any():
            continue
        starts = np.flatnonzero(np.concatenate([[True], ~same]))
        sizes = np.diff(np.append(starts, len(entries)))
        for s, n in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
            group = entries["row"][s:s + n]
            dup_rows.append(group)
            first_rows.append(np.full(n, -1, dtype="int64"))  # confirmed below
    if not dup_rows:
        return empty
    return _confirm(directory, spilled, offsets, dup_rows)


def _rising(spilled: list[Spilled]) -> bool:
    """Integer ids rising through every chunk and from chunk to chunk: none can repeat."""
    previous = None
    for s in spilled:
        if s.ids == 0:
            continue
        if not s.rising or s.low is None:
            return False
        if previous is not None and not s.low > previous:
            return False
        previous = s.high
    return True


def _confirm(directory: Path, spilled: list[Spilled], offsets: list[int],
             groups: list[np.ndarray]) -> Repeats:
    """Split hash groups by the ids themselves; the first row of each id is its first
    occurrence, the others repeat it."""
    import pyarrow.parquet as pq

    wanted = np.unique(np.concatenate(groups))
    starts = np.asarray(offsets, dtype="int64")
    which = np.searchsorted(starts, wanted, side="right") - 1
    values: dict[int, Any] = {}
    id_of: dict[int, Any] = {}
    for k in np.unique(which):
        ids = pq.read_table(directory / f"ids-{spilled[k].key}.parquet").to_pandas()["id"]
        rows = wanted[which == k]
        local = ids.iloc[rows - starts[k]]
        for r, key, raw in zip(rows.tolist(), keys(local, spilled[k].kind),
                               local.to_numpy(dtype=object),
                               strict=True):
            values[r] = key
            id_of[r] = raw
    dup: list[int] = []
    first: list[int] = []
    for group in groups:
        seen: dict[Any, int] = {}
        for r in sorted(group.tolist()):
            k = (type(values[r]) is str, values[r])
            if k in seen:
                dup.append(r)
                first.append(seen[k])
            else:
                seen[k] = r
    order = np.argsort(np.asarray(dup, dtype="int64"), kind="stable")
    rows_sorted = np.asarray(dup, dtype="int64")[order]
    firsts = np.asarray(first, dtype="int64")[order]
    ids = pd.Series([id_of[r] for r in rows_sorted.tolist()], dtype="object").infer_objects()
    return Repeats(rows_sorted, firsts, ids)

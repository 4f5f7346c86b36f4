"""Writing files: atomically, with the permissions a plain ``open(path, "w")`` would give, and
as strict JSON.

Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON: strict parsers (browsers'
``JSON.parse``, ``jq``, most languages) refuse the whole file. :func:`finite` turns every
non-finite float into ``null`` (and numpy scalars into Python ones); :func:`dumps` then writes
with ``allow_nan=False`` so that a non-finite number that slips through is an error, not a file
nobody can read. Every JSON file nbprod writes (the manifest, snapshot metadata, the reference,
the scoring summary) goes through :func:`dumps` or :func:`write_json`.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any


def umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def usual_mode(directory: bool = False) -> int:
    """0666 for files, 0777 for directories, less the umask: what ``open``/``mkdir`` give."""
    return (0o777 if directory else 0o666) & ~umask()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    On any error the temporary file is removed and ``path`` is left as it was. The file gets the
    usual permissions (``mkstemp`` alone makes it private to its owner).
    """
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, usual_mode())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- strict JSON ---------------------------------------------------------------------------
def finite(value: Any) -> Any:
    """``value`` with non-finite floats and pandas' missing markers (``NA``, ``NaT``) replaced
    by None, numpy scalars and arrays made plain."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    kind = type(value)
    if kind.__module__ == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray):
            return finite(value.tolist())
        if isinstance(value, np.generic):
            return finite(value.item())
    elif kind.__module__.startswith("pandas") and kind.__name__ in ("NAType", "NaTType"):
        return None
    return value


def plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds; any other value as it is."""
    if type(value).__module__ == "numpy":
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
    return value


def jsonable(value: Any) -> Any:
    """The JSON form of a value that ``json`` does not know: a path as text, a date or time as
    ISO 8601 text, numpy values as Python ones. ``TypeError`` for anything else, so that a value
    nobody meant to write is found, not written as its ``repr``."""
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, datetime.date | datetime.time):  # pandas' Timestamp is a datetime
        return value.isoformat()
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def as_text(value: Any) -> Any:
    """:func:`jsonable`, and the text of anything else: for records that must be written even
    when a value is exotic (the scoring summary, a snapshot's metadata)."""
    try:
        return jsonable(value)
    except TypeError:
        return str(value)


def dumps(value: Any, *, default: Any = jsonable, **options: Any) -> str:
    """Strict JSON text of ``value`` (see the module docs); ``default`` as in ``json.dumps``
    (:func:`jsonable`, or :func:`as_text` to write any value as text)."""
    return json.dumps(finite(value), allow_nan=False, default=default, **options)


def write_json(data: Any, path: str | Path, *, indent: int = 2, default: Any = as_text) -> None:
    """Write ``data`` to ``path`` as strict JSON, atomically (see :func:`atomic_path`)."""
    text = dumps(data, indent=indent, default=default)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)

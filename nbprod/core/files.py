"""Writing files: atomically, with the permissions a plain ``open(path, "w")`` would give, and
as strict JSON.

Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON: strict parsers (browsers'
``JSON.parse``, ``jq``, most languages) refuse the whole file. :func:`finite` turns every
non-finite float into ``null`` (and numpy scalars into Python ones); :func:`dumps` then writes
with ``allow_nan=False`` so that a non-finite number that slips through is an error, not a file
nobody can read.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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
    """``value`` with non-finite floats replaced by None, numpy scalars and arrays made plain."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if type(value).__module__ == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray):
            return finite(value.tolist())
        if isinstance(value, np.generic):
            return finite(value.item())
    return value


def dumps(value: Any, *, default: Any = None, **options: Any) -> str:
    """Strict JSON text of ``value`` (see the module docs); ``default`` as in ``json.dumps``."""
    return json.dumps(finite(value), allow_nan=False, default=default, **options)

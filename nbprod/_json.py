"""Strict JSON for every file nbprod writes for people and programs to read.

Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON: strict parsers (browsers'
``JSON.parse``, ``jq``, most languages) refuse the whole file. :func:`finite` turns every
non-finite float into ``null`` (and numpy scalars into Python ones); :func:`dumps` then writes
with ``allow_nan=False`` so that a non-finite number that slips through is an error, not a file
nobody can read.
"""

from __future__ import annotations

import json
import math
from typing import Any


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

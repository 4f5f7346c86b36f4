"""nbprod for Dask users: ``nbprod.dask.score(artifact, ddf)`` scores a Dask DataFrame lazily.

See :mod:`nbprod.jobs.lazy` and docs/scale.md. Importing this module does not import Dask;
:func:`score` does.
"""

from __future__ import annotations

from .jobs.lazy import Lazy, score

__all__ = ["Lazy", "score"]

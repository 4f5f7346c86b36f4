"""Compatibility module: the MLflow loader of artifacts packaged before the layered layout.

Their ``MLmodel`` names ``loader_module: nbprod.mlflow_flavor``; MLflow imports this module and
calls ``_load_pyfunc``. Artifacts packaged since name ``nbprod`` itself. The flavour lives in
:mod:`nbprod.tracking.flavor`; ``docs/artifact-format.md``
(compatibility) lists the compatibility modules and how long they stay.
"""

from __future__ import annotations

from typing import Any

from .tracking.flavor import NbprodPyfunc, load_pyfunc

__all__ = ["NbprodPyfunc"]


def _load_pyfunc(path: str, model_config: Any = None) -> NbprodPyfunc:
    return load_pyfunc(path, model_config)

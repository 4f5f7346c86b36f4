"""MLflow pyfunc flavour of nbprod artifacts: what ``mlflow.pyfunc.load_model(PATH)`` returns.

The artifact's ``MLmodel`` names ``loader_module: nbprod``: MLflow imports the package and calls
its ``_load_pyfunc`` (the package hands it on to :func:`load_pyfunc`), which verifies and loads
the artifact (:func:`nbprod.core.artifact.load`); ``predict`` is ``Artifact.score``, so MLflow
serving and batch scoring share one code path. Artifacts written before the layered layout name
``loader_module: nbprod.mlflow_flavor``, a compatibility module that calls the same function.

Rows that cannot be scored follow ``Artifact.score``'s ``errors`` policy: ``raise`` by default
(a REST client needs one output row per input row, so a bad row is an error naming its row,
column, rule and value), or ``params={"errors": "reject"}`` to leave rejected rows out (the
output keeps the input's index).
"""

from __future__ import annotations

from typing import Any


class NbprodPyfunc:
    """The loaded artifact as an MLflow pyfunc model."""

    def __init__(self, path: str) -> None:
        from ..core.artifact import load

        self.artifact = load(path)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        errors = (params or {}).get("errors") or "raise"
        return self.artifact.score(model_input, errors=str(errors))


def load_pyfunc(path: str, model_config: Any = None) -> NbprodPyfunc:
    """MLflow's loader entry point (``_load_pyfunc`` of the ``loader_module``)."""
    return NbprodPyfunc(path)

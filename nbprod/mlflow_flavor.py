"""MLflow pyfunc loader for nbprod artifacts (``loader_module`` in the artifact's ``MLmodel``).

``mlflow.pyfunc.load_model(PATH)`` imports this module and calls :func:`_load_pyfunc`, which
verifies and loads the artifact through :func:`nbprod.load`; ``predict`` is ``Artifact.score``,
so MLflow serving and batch scoring share one code path.

Rows that cannot be scored follow ``Artifact.score``'s ``errors`` policy: ``raise`` by default
(a REST client needs one output row per input row, so a bad row is an error naming its row,
column, rule and value), or ``params={"errors": "reject"}`` to leave rejected rows out (the
output keeps the input's index).
"""

from __future__ import annotations

from typing import Any


class NbprodPyfunc:
    def __init__(self, path: str) -> None:
        from .core.artifact import load

        self.artifact = load(path)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        errors = (params or {}).get("errors") or "raise"
        return self.artifact.score(model_input, errors=str(errors))


def _load_pyfunc(path: str, model_config: Any = None) -> NbprodPyfunc:
    return NbprodPyfunc(path)

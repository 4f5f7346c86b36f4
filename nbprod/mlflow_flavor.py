"""MLflow pyfunc loader for nbprod artifacts (``loader_module`` in the artifact's ``MLmodel``).

``mlflow.pyfunc.load_model(PATH)`` imports this module and calls :func:`_load_pyfunc`, which
verifies and loads the artifact through :func:`nbprod.load`; ``predict`` is ``Artifact.score``,
so MLflow serving and batch scoring share one code path.
"""

from __future__ import annotations

from typing import Any


class NbprodPyfunc:
    def __init__(self, path: str) -> None:
        from .artifact import load

        self.artifact = load(path)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return self.artifact.score(model_input)


def _load_pyfunc(path: str, model_config: Any = None) -> NbprodPyfunc:
    return NbprodPyfunc(path)

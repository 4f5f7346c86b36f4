"""MLflow pyfunc flavour of nbprod artifacts: what ``mlflow.pyfunc.load_model(PATH)`` returns.

The artifact's ``MLmodel`` names ``loader_module: nbprod``: MLflow imports the package and calls
its ``_load_pyfunc`` (the package hands it on to :func:`load_pyfunc`), which verifies and loads
the artifact (:func:`nbprod.core.artifact.load`); ``predict`` is ``Artifact.score``, so MLflow
serving and batch scoring share one code path. Artifacts written before the layered layout name
``loader_module: nbprod.mlflow_flavor``, a compatibility module that calls the same function.

Rows that cannot be scored follow ``Artifact.score``'s ``errors`` policy: ``raise`` by default
(a REST client needs one output row per input row, so a bad row is an error naming its row,
column, rule and value), ``params={"errors": "reject"}`` to leave rejected rows out (the
output keeps the input's index), or ``params={"errors": "mark"}`` for one output row per input
row, rejected rows with missing predictions and the reason in a ``rejected`` column (what a
Spark UDF needs: :func:`spark_result_type` gives its result type).

A request nbprod cannot score (a missing column, a value that does not convert, a bad row under
``errors=raise``, an output outside the declared bounds, an unknown ``errors`` value) raises
the same nbprod error that is also an ``MlflowException`` with ``INVALID_PARAMETER_VALUE``
(:func:`request_error`): MLflow's scoring server answers HTTP 400 with nbprod's one-line message
and no traceback. Anything else (a damaged artifact, a bug) stays a server error.
"""

from __future__ import annotations

import functools
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
        from ..exceptions import InputError, NbprodUsageError, OutputBoundsError, SchemaError

        errors = (params or {}).get("errors") or "raise"
        try:
            return self.artifact.score(model_input, errors=str(errors))
        except (SchemaError, InputError, NbprodUsageError, OutputBoundsError) as exc:
            raise request_error(exc) from None


def request_error(exc: BaseException) -> Exception:
    """``exc``, an error in the request, as the same error that is also an ``MlflowException``
    with ``INVALID_PARAMETER_VALUE``: HTTP 400 from MLflow's scoring server, while Python
    callers keep catching nbprod's class (``SchemaError``, ``RowError``, ...) and its fields."""
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    error = request_error_class(type(exc).__name__)(
        str(exc), error_code=INVALID_PARAMETER_VALUE,
        error_class=f"NBPROD_{type(exc).__name__.upper()}")
    error.__dict__.update(vars(exc))  # column, row, rule, value
    return error


@functools.cache
def request_error_class(name: str) -> type:
    """``Request<name>``: nbprod's exception class ``name`` and ``MlflowException`` in one.

    MLflow's scoring server prefixes the message of an ``MlflowException`` with the whole
    request (``Failed to predict data '<every row>'. Error: ...``) by assigning its
    ``message``; here the message is set once, by ``MlflowException.__init__``, and stays
    nbprod's one line."""
    from mlflow.exceptions import MlflowException

    from .. import exceptions

    original = getattr(exceptions, name)

    def message(self: Any) -> str:
        return str(self.__dict__["_nbprod_message"])

    def set_message(self: Any, value: str) -> None:
        self.__dict__.setdefault("_nbprod_message", value)

    def reduce(self: Any) -> Any:  # pickles by name: rebuilt from nbprod's class
        return (_rebuild, (name, self.message, dict(self.__dict__)))

    body = {"message": property(message, set_message), "__reduce__": reduce,
            "__module__": __name__, "__qualname__": f"Request{name}",
            "__doc__": f"{name} in a request: HTTP 400 from MLflow's scoring server."}
    return type(f"Request{name}", (MlflowException, original), body)


def _rebuild(name: str, message: str, state: dict[str, Any]) -> Exception:
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    error = request_error_class(name)(message, error_code=INVALID_PARAMETER_VALUE)
    error.__dict__.update(state)
    return error


def __getattr__(attr: str) -> Any:  # Request<name> exists once built; pickle looks it up here
    if attr.startswith("Request"):
        from .. import exceptions

        if isinstance(getattr(exceptions, attr[len("Request"):], None), type):
            return request_error_class(attr[len("Request"):])
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


SPARK_TYPES = {"long": "bigint", "integer": "int", "double": "double", "float": "float",
               "string": "string", "boolean": "boolean", "datetime": "timestamp",
               "binary": "binary"}  # MLflow's column types as Spark DDL


def spark_result_type(path: str) -> str:
    """The Spark result type (DDL) of the pyfunc under ``params={"errors": "mark"}``: the
    MLmodel's output columns (id, ``prediction``, ``proba_<class>``) and the reason column.

    The MLmodel signature describes the output of the default policy, which has no reason
    column, so ``mlflow.pyfunc.spark_udf`` would leave it out without this ``result_type``."""
    from pathlib import Path

    from mlflow.models import Model

    from ..core.scoring import reason_column
    from ..exceptions import NbprodUsageError

    mlmodel = Path(path) / "MLmodel"
    if not mlmodel.is_file():
        raise NbprodUsageError(f"{str(path)[:200]!r} is not an nbprod artifact with an MLflow "
                               "model (no MLmodel file). Pass the artifact's directory.")
    signature = Model.load(str(mlmodel)).signature
    specs = signature.outputs.inputs if signature and signature.outputs else []
    names = [spec.name for spec in specs]
    fields = [f"{_quoted(spec.name)} {SPARK_TYPES.get(spec.type.name, 'string')}"
              for spec in specs]
    fields.append(f"{_quoted(reason_column(names))} string")
    return ", ".join(fields)


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def load_pyfunc(path: str, model_config: Any = None) -> NbprodPyfunc:
    """MLflow's loader entry point (``_load_pyfunc`` of the ``loader_module``)."""
    return NbprodPyfunc(path)

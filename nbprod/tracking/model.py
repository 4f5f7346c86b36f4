"""MLflow glue: the artifact's ``MLmodel`` file, its environment, and the packaging run with
its logged model.

Tracking follows MLflow's own configuration: ``MLFLOW_TRACKING_URI`` when set, else MLflow's
embedded default (a SQLite store, ``mlflow.db``, in the working directory).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from ..core.user import user_name as _user
from ..exceptions import PackagingError

# MLflow imports this module and calls its _load_pyfunc (nbprod/__init__.py hands it on). The
# package itself, so that the name in an artifact's MLmodel never moves; artifacts written before
# the layered layout name nbprod.mlflow_flavor, which stays importable.
LOADER_MODULE = "nbprod"
ARTIFACT_DIR = "nbprod-artifact"  # where packaging runs before logged models kept the files


# nbprod's column kinds (nbprod.core.schema.KINDS) as MLflow column types
MLFLOW_TYPES = {"integer": "long", "float": "double", "bool": "boolean", "string": "string",
                "category": "string", "datetime": "datetime", "other": "string"}
INPUT_EXAMPLE = "input_example.json"
SERVING_EXAMPLE = "serving_input_example.json"


def mlflow_type(kind: str, nullable: bool = False) -> str:
    """The MLflow column type of an nbprod column kind (a nullable integer column arrives as
    floating point from JSON and CSV: ``double``)."""
    if kind == "integer" and nullable:
        return "double"
    return MLFLOW_TYPES.get(kind, "string")


def write_mlmodel(root: Path, requirements: list[str], *, inputs: list[dict[str, Any]],
                  outputs: list[tuple[str, str]], example: Any = None,
                  artifact_id: str = "") -> None:
    """Make ``root`` an MLflow model that MLflow restores and serves by itself.

    Writes ``requirements.txt``, ``python_env.yaml`` and ``conda.yaml`` (both named in the
    pyfunc flavour's ``env``: MLflow's uv and virtualenv managers read the first, and look the
    second up by name), the input example (``example``, a DataFrame, or None), and ``MLmodel``
    with a signature of outputs and parameters only. ``inputs`` (the id column and the input
    columns, as schema dicts: name, kind, nullable) go to ``metadata["nbprod.input_schema"]``,
    not to ``signature.inputs``: MLflow enforces a declared input schema before the model sees
    the request and refuses rows nbprod accepts or rejects one by one (nullable integers,
    categories, booleans sent as text), so nbprod stays the one validator. ``outputs``:
    ``(column, nbprod kind)`` of the predictions.
    """
    from mlflow.models import Model, ModelSignature
    from mlflow.pyfunc import add_to_model
    from mlflow.types.schema import ColSpec, Schema

    from .store import quiet

    quiet()
    signature = params_signature()
    signature.outputs = Schema([ColSpec(mlflow_type(kind), name) for name, kind in outputs])
    schema = [{"name": c["name"], "type": mlflow_type(c["kind"], c["nullable"]),
               "kind": c["kind"], "nullable": c["nullable"]} for c in inputs]
    model = Model(signature=ModelSignature(outputs=signature.outputs, params=signature.params),
                  metadata={"nbprod.artifact_id": artifact_id, "nbprod.input_schema": schema})
    (root / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    (root / "python_env.yaml").write_text(python_env(), encoding="utf-8")
    (root / "conda.yaml").write_text(conda_env(requirements), encoding="utf-8")
    if example is not None:
        write_input_example(root, example)
        model.saved_input_example_info = {
            "artifact_path": INPUT_EXAMPLE, "type": "dataframe", "pandas_orient": "split",
            "serving_input_path": SERVING_EXAMPLE}
    add_to_model(model, loader_module=LOADER_MODULE, conda_env="conda.yaml",
                 python_env="python_env.yaml")
    model.save(str(root / "MLmodel"))


def python_env() -> str:
    """MLflow's ``python_env.yaml`` for the artifact: this Python, pip, and requirements.txt
    (the file MLflow's virtualenv and uv environment managers restore). The version is exact,
    as MLflow writes it: uv and pyenv look for that interpreter."""
    python = ".".join(map(str, sys.version_info[:3]))
    return (f"python: {python}\nbuild_dependencies:\n- pip\ndependencies:\n"
            "- -r requirements.txt\n")


def conda_env(requirements: list[str]) -> str:
    """MLflow's ``conda.yaml``: this Python and pip, the requirements installed by pip."""
    import yaml

    python = ".".join(map(str, sys.version_info[:3]))
    env = {"name": "mlflow-env", "channels": ["conda-forge"],
           "dependencies": [f"python={python}", "pip", {"pip": list(requirements)}]}
    return str(yaml.safe_dump(env, default_flow_style=False, sort_keys=False))


def write_input_example(root: Path, example: Any) -> None:
    """The input example as MLflow reads it (``input_example.json``, pandas ``split`` orient
    without the index) and as a request to the scoring server (``serving_input_example.json``,
    ``{"dataframe_split": ...}``): strict JSON, a missing value is ``null``."""
    import json

    from ..core.files import dumps

    split = json.loads(example.to_json(orient="split", index=False, date_format="iso"))
    (root / INPUT_EXAMPLE).write_text(dumps(split) + "\n", encoding="utf-8")
    (root / SERVING_EXAMPLE).write_text(dumps({"dataframe_split": split}, indent=2) + "\n",
                                        encoding="utf-8")


def params_signature() -> Any:
    """The pyfunc's inference parameters: ``errors`` (``raise`` | ``reject`` | ``mark``, see
    :mod:`nbprod.tracking.flavor`); MLflow passes ``params`` only to models that declare them.
    MLflow's ParamSpec has no list of allowed values: an unknown one is refused by nbprod, with
    the allowed ones named."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    return ModelSignature(params=ParamSchema([ParamSpec("errors", "string", "raise")]))


# what a check's value is, in its metric's name: cv holds a standard deviation across folds,
# baseline the gain over the dummy model, overfit the gap between train and valid
METRIC_SUFFIX = {"cv": "_std", "baseline": "_gain", "overfit": "_gap"}
PARAM_PREFIX = "model."  # the estimator's hyperparameters among the run's params
_BATCH = 100  # params (and tags) MLflow takes in one log_batch


def check_metrics(manifest: dict[str, Any]) -> dict[str, float]:
    """The checks' figures as metrics, named for what they hold (``cv.roc_auc_std``,
    ``baseline.roc_auc_gain``, ``overfit.roc_auc_gap``, ``metric.accuracy``)."""
    out = {}
    for check in manifest.get("checks", []):
        value = check.get("value")
        if isinstance(value, int | float) and not isinstance(value, bool):
            name = check["name"].replace(":", ".") + METRIC_SUFFIX.get(check.get("kind", ""), "")
            out[name] = float(value)
    return out


def hyperparameters(estimator: Any, limit: int = 6000) -> dict[str, str]:
    """``estimator.get_params(deep=True)`` as MLflow params: a plain value as text, an estimator
    (a pipeline step, a transformer) as its class name, a list of ``(name, estimator, ...)``
    (``steps``, ``transformers``) as the names, a function as its name; keys cut to MLflow's 250
    characters, values to ``limit``."""
    try:
        params = estimator.get_params(deep=True)
    except Exception:  # not a scikit-learn estimator: no hyperparameters to show
        return {}
    out: dict[str, str] = {}
    for key, value in params.items():
        if hasattr(value, "get_params"):
            text = type(value).__name__
        elif isinstance(value, list | tuple) and value and all(
                isinstance(v, tuple) and len(v) >= 2 and isinstance(v[0], str) for v in value):
            text = ",".join(v[0] for v in value)
        elif value is None or isinstance(value, bool | int | float | str):
            text = str(value)
        elif callable(value):
            text = getattr(value, "__qualname__", type(value).__name__)
        else:
            text = repr(value)
        out[str(key)[:250]] = text if len(text) <= limit else text[: limit - 3] + "..."
    return out


def log_package(root: Path, manifest: dict[str, Any], digest: str,
                estimator: Any = None) -> dict[str, str]:
    """Log the packaging to MLflow: a run in the experiment named after the model, and the
    artifact as an MLflow logged model of that run (``models:/<model_id>``).

    The logged model holds the artifact's files (a staging marker excepted: the run is logged
    while the artifact is still being assembled), the ``estimator``'s hyperparameters as params
    and the checks' figures as metrics; the run has the same figures, the hyperparameters as
    ``model.*`` params and the logged model as its output. ``estimator``: the fitted model
    (default: loaded from the artifact)."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric, Param

    from ..core.manifest import STAGING_MARKER
    from .store import client, get_or_create_experiment, store_error

    name = manifest["name"]
    run_id = model_id = None
    hyper = hyperparameters(estimator if estimator is not None else _estimator(root))
    try:
        mlflow_client = client()
        exp_id = get_or_create_experiment(mlflow_client, name)
        tags = {
            "nbprod.kind": "package",
            "nbprod.name": name,
            "nbprod.artifact_id": manifest["artifact_id"],
            "nbprod.digest": digest,
            "nbprod.format_version": str(manifest["format_version"]),
            "nbprod.task": manifest["task"],
            "nbprod.packaged_at": manifest["packaged_at"],
            "mlflow.user": _user(),
        }
        run = mlflow_client.create_run(exp_id, run_name=f"package {name}", tags=tags)
        run_id = run.info.run_id
        model_id = mlflow_client.create_logged_model(
            experiment_id=exp_id, name=name, source_run_id=run_id, params=hyper,
            model_type=manifest["task"],
            tags={k: v for k, v in tags.items() if k != "nbprod.kind"}
            | {"nbprod.model_class": manifest["model"]["class"]},
        ).model_id
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and path.name != STAGING_MARKER:
                rel = path.relative_to(root).parent.as_posix()
                mlflow_client.log_model_artifact(model_id, str(path),
                                                 None if rel == "." else rel)
        mlflow_client.finalize_logged_model(model_id, LoggedModelStatus.READY)
        mlflow_client.log_outputs(run_id, [LoggedModelOutput(model_id, step=0)])
        params: dict[str, Any] = {
            "model_class": manifest["model"]["class"],
            "feature_function": manifest["features"]["function"],
            "input_columns": len(manifest["input_columns"]),
        }
        for role, snap in manifest["snapshots"].items():
            params[f"{role}_rows"] = snap["rows"]
            params[f"{role}_fingerprint"] = snap["fingerprint"][:16]
        params |= {f"{PARAM_PREFIX}{k}"[:250]: v for k, v in hyper.items()}
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0, model_id=model_id)
                   for k, v in check_metrics(manifest).items()]
        listed = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, max(len(listed), 1), _BATCH):
            mlflow_client.log_batch(run_id, metrics=metrics if i == 0 else [],
                                    params=listed[i:i + _BATCH])
        mlflow_client.set_terminated(run_id, "FINISHED")
        return {"run_id": run_id, "model_id": model_id, "experiment_id": exp_id,
                "tracking_uri": mlflow_client.tracking_uri}
    except Exception as exc:
        with contextlib.suppress(Exception):
            if model_id is not None:
                mlflow_client.finalize_logged_model(model_id, LoggedModelStatus.FAILED)
            if run_id is not None:
                mlflow_client.set_terminated(run_id, "FAILED")
        raise PackagingError(
            f"Could not log the packaging run to MLflow: {store_error(exc)} Or package with "
            "--no-mlflow."
        ) from None


def _estimator(root: Path) -> Any:
    """The artifact's fitted model, for its hyperparameters (None when it cannot be loaded
    here, e.g. an unsigned artifact whose model needs types nbprod trusts only when signed)."""
    from ..core.artifact import load
    from ..exceptions import NbprodError

    try:
        return load(root).model
    except NbprodError:
        return None


"""MLflow glue: the artifact's ``MLmodel`` file and the packaging run.

Tracking follows MLflow's own configuration: ``MLFLOW_TRACKING_URI`` when set, else MLflow's
embedded default (a SQLite store, ``mlflow.db``, in the working directory).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from .exceptions import PackagingError

LOADER_MODULE = "nbprod.mlflow_flavor"


def quiet() -> None:
    for name in ("alembic", "mlflow", "mlflow.store", "mlflow.tracking"):
        logging.getLogger(name).setLevel(logging.WARNING)


def write_mlmodel(root: Path, requirements: list[str]) -> None:
    """Make ``root`` an MLflow model: ``MLmodel``, ``requirements.txt``, ``python_env.yaml``."""
    from mlflow.models import Model
    from mlflow.pyfunc import add_to_model
    from mlflow.utils.environment import _PythonEnv

    quiet()
    model = Model(signature=params_signature())
    env = _PythonEnv(
        python=".".join(map(str, sys.version_info[:3])),
        build_dependencies=["pip"],
        dependencies=["-r requirements.txt"],
    )
    env.to_yaml(root / "python_env.yaml")
    (root / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    add_to_model(model, loader_module=LOADER_MODULE, python_env="python_env.yaml")
    model.save(str(root / "MLmodel"))


def params_signature() -> Any:
    """The pyfunc's inference parameters: ``errors`` (``raise`` | ``reject``, see
    :mod:`nbprod.mlflow_flavor`); MLflow passes ``params`` only to models that declare them."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    return ModelSignature(params=ParamSchema([ParamSpec("errors", "string", "raise")]))


def log_package(root: Path, manifest: dict[str, Any], digest: str) -> dict[str, str]:
    """Log the packaging as an MLflow run in the experiment named after the model."""
    import mlflow

    quiet()
    name = manifest["name"]
    try:
        mlflow.set_experiment(name)
        with mlflow.start_run(run_name=f"package {name}") as run:
            mlflow.set_tags(
                {
                    "nbprod.kind": "package",
                    "nbprod.name": name,
                    "nbprod.artifact_id": manifest["artifact_id"],
                    "nbprod.digest": digest,
                    "nbprod.format_version": str(manifest["format_version"]),
                    "nbprod.task": manifest["task"],
                    "nbprod.packaged_at": manifest["packaged_at"],
                }
            )
            snaps = manifest["snapshots"]
            params: dict[str, Any] = {
                "model_class": manifest["model"]["class"],
                "feature_function": manifest["features"]["function"],
                "input_columns": len(manifest["input_columns"]),
            }
            for role, snap in snaps.items():
                params[f"{role}_rows"] = snap["rows"]
                params[f"{role}_fingerprint"] = snap["fingerprint"][:16]
            mlflow.log_params(params)
            metrics = {}
            for check in manifest.get("checks", []):
                value = check.get("value")
                if isinstance(value, int | float) and not isinstance(value, bool):
                    metrics[check["name"].replace(":", ".")] = float(value)
            if metrics:
                mlflow.log_metrics(metrics)
            mlflow.log_artifacts(str(root), artifact_path="nbprod-artifact")
            return {
                "run_id": run.info.run_id,
                "experiment_id": run.info.experiment_id,
                "tracking_uri": mlflow.get_tracking_uri(),
            }
    except Exception as exc:
        raise PackagingError(
            f"Could not log the packaging run to MLflow ({mlflow.get_tracking_uri()}): "
            f"{type(exc).__name__}: {exc}. Check MLFLOW_TRACKING_URI, or package with "
            "--no-mlflow."
        ) from None

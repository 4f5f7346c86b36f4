"""MLflow glue: the artifact's ``MLmodel`` file and the packaging run.

Tracking follows MLflow's own configuration: ``MLFLOW_TRACKING_URI`` when set, else MLflow's
embedded default (a SQLite store, ``mlflow.db``, in the working directory).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import sys
import time
from pathlib import Path
from typing import Any

from .exceptions import PackagingError

LOADER_MODULE = "nbprod.mlflow_flavor"
ARTIFACT_DIR = "nbprod-artifact"  # where a packaging run keeps the artifact's files


def quiet() -> None:
    for name in ("alembic", "mlflow", "mlflow.store", "mlflow.tracking"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # logs a traceback for every SQL error, also those nbprod retries or reports in one line
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


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
    """Log the packaging as an MLflow run in the experiment named after the model.

    The artifact's files are logged under ``nbprod-artifact/`` (a staging marker excepted: the
    run is logged while the artifact is still being assembled)."""
    from mlflow.entities import Metric, Param

    from .core.manifest import STAGING_MARKER
    from .mlflow_store import client, get_or_create_experiment, store_error

    name = manifest["name"]
    run_id = None
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
        params: dict[str, Any] = {
            "model_class": manifest["model"]["class"],
            "feature_function": manifest["features"]["function"],
            "input_columns": len(manifest["input_columns"]),
        }
        for role, snap in manifest["snapshots"].items():
            params[f"{role}_rows"] = snap["rows"]
            params[f"{role}_fingerprint"] = snap["fingerprint"][:16]
        now = int(time.time() * 1000)
        metrics = []
        for check in manifest.get("checks", []):
            value = check.get("value")
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics.append(Metric(check["name"].replace(":", "."), float(value), now, 0))
        mlflow_client.log_batch(run_id, metrics=metrics,
                                params=[Param(k, str(v)) for k, v in params.items()])
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and path.name != STAGING_MARKER:
                rel = path.relative_to(root).parent.as_posix()
                mlflow_client.log_artifact(
                    run_id, str(path), ARTIFACT_DIR if rel == "." else f"{ARTIFACT_DIR}/{rel}")
        mlflow_client.set_terminated(run_id, "FINISHED")
        return {"run_id": run_id, "experiment_id": exp_id,
                "tracking_uri": mlflow_client.tracking_uri}
    except Exception as exc:
        if run_id is not None:
            with contextlib.suppress(Exception):
                mlflow_client.set_terminated(run_id, "FAILED")
        raise PackagingError(
            f"Could not log the packaging run to MLflow: {store_error(exc)} Or package with "
            "--no-mlflow."
        ) from None


def _user() -> str:
    try:
        return str(getpass.getuser())
    except Exception:
        return "unknown"

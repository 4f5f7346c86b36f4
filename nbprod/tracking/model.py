"""MLflow glue: the artifact's ``MLmodel`` file and the packaging run.

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
ARTIFACT_DIR = "nbprod-artifact"  # where a packaging run keeps the artifact's files


def write_mlmodel(root: Path, requirements: list[str]) -> None:
    """Make ``root`` an MLflow model: ``MLmodel``, ``requirements.txt``, ``python_env.yaml``."""
    from mlflow.models import Model
    from mlflow.pyfunc import add_to_model

    from .store import quiet

    quiet()
    model = Model(signature=params_signature())
    (root / "python_env.yaml").write_text(python_env(), encoding="utf-8")
    (root / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    add_to_model(model, loader_module=LOADER_MODULE, python_env="python_env.yaml")
    model.save(str(root / "MLmodel"))


def python_env() -> str:
    """MLflow's ``python_env.yaml`` for the artifact: this Python, pip, and requirements.txt
    (the file MLflow's virtualenv and uv environment managers restore)."""
    python = ".".join(map(str, sys.version_info[:3]))
    return (f"python: {python}\nbuild_dependencies:\n- pip\ndependencies:\n"
            "- -r requirements.txt\n")


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

    from ..core.manifest import STAGING_MARKER
    from .store import client, get_or_create_experiment, store_error

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

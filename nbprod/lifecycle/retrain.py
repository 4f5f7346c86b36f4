"""Retraining from the captured training notebook.

The artifact keeps the notebook it was trained in (``training.ipynb``, with its ``parameters``
cell). :func:`retrain` re-executes it with papermill on new data: the same magics capture and
check the new model, and its ``%nbprod package`` writes the new artifact at the path the caller
chose (``NBPROD_RETRAIN_OUTPUT`` overrides the notebook's own package path). A failing check
gate means no new artifact; the executed notebook shows why.

Contract with the training notebook: parameters are passed by name (``--param NAME=VALUE``);
``artifact_path`` is set to the output when the notebook declares it; ``feedback_path`` carries
the reviewers' feedback file, which the notebook merges with :func:`nbprod.feedback.apply`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..capture.training import notebook_parameters
from ..core import manifest as mf
from ..exceptions import NbprodUsageError, NotebookError, RetrainError

OUTPUT_ENV = "NBPROD_RETRAIN_OUTPUT"
NOTEBOOK_ENV = "NBPROD_NOTEBOOK"


def parse_params(items: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs; values are parsed as Python literals when they are, else text."""
    import ast

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise NbprodUsageError(f"--param expects NAME=VALUE. Got {item!r}.")
        key, value = item.split("=", 1)
        if not key.isidentifier():
            raise NbprodUsageError(f"--param name must be an identifier. Got {key!r}.")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def retrain(artifact: str | Path, *, output: str | Path, params: dict[str, Any] | None = None,
            feedback: str | Path | None = None, report: str | Path | None = None,
            register: bool = False) -> dict[str, Any]:
    from ..core import trust
    from ..jobs.kernel import run_notebook

    root = Path(artifact).absolute()
    check = trust.verify(root)  # the training notebook runs: verify (and NBPROD_TRUSTED_KEYS)
    check.raise_for_problems()
    assert check.manifest is not None
    m = check.manifest
    training = m.get("training")
    if not training:
        raise NbprodUsageError(
            f"{artifact} carries no training notebook; package it from a notebook whose path is "
            "known (JupyterLab, VS Code), or with `%nbprod package PATH --notebook NB` or "
            "NBPROD_NOTEBOOK set.")
    out = Path(output).absolute()
    if out.exists():
        raise NbprodUsageError(f"-o {output}: {out} already exists; choose a new path.")
    params = dict(params or {})
    declared = notebook_parameters(root / training["notebook"])
    unknown = [p for p in params if p not in declared]
    if unknown:
        raise NbprodUsageError(
            f"The training notebook has no parameter {unknown[0]!r}; its parameters are: "
            f"{', '.join(declared) or 'none'}.")
    if "artifact_path" in declared:
        params["artifact_path"] = str(out)
    if feedback is not None:
        if "feedback_path" not in declared:
            raise NbprodUsageError(
                "The training notebook declares no `feedback_path` parameter, so it cannot merge "
                "feedback; add one and merge it with nbprod.feedback.apply(...).")
        if not Path(feedback).is_file():
            raise NbprodUsageError(f"--feedback {feedback} does not exist.")
        params["feedback_path"] = str(Path(feedback).absolute())
    executed = Path(report).absolute() if report else out.with_name(out.name + ".retrain.ipynb")
    # a verified copy of the stored notebook runs (papermill writes the executed copy elsewhere);
    # the new artifact's provenance names the notebook inside the artifact retrained
    stored = root / training["notebook"]
    verified = _verified_copy(check, training["notebook"])  # runs the bytes whose hash matched
    env = {OUTPUT_ENV: str(out), NOTEBOOK_ENV: str(stored)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from ..core.progress import wanted

    try:
        run_notebook(verified, executed, params, progress=wanted())  # a bar on a terminal only
    except NotebookError as exc:
        raise RetrainError(
            f"Retraining stopped in cell {exc.cell_index}: {_failure(exc, executed)} No new "
            f"artifact was written; the executed notebook is {executed}.") from None
    finally:
        shutil.rmtree(verified.parent, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if not (out / mf.MANIFEST).is_file():
        raise RetrainError(f"The training notebook ran but packaged nothing at {out}; "
                           f"see {executed}.")
    result: dict[str, Any] = {"artifact": str(out), "notebook": str(executed),
                              "parameters": params}
    if register:
        from ..tracking.registry import register as reg

        result["registry"] = reg(out)
    return result


def _verified_copy(check: Any, rel: str) -> Path:
    """A private copy of the artifact's ``rel`` made from the bytes verification hashed."""
    import tempfile

    data = check.contents.get(rel)
    if data is None:  # only a file beyond manifest.KEEP_BYTES_LIMIT is not kept
        raise NbprodUsageError(f"{rel} is too large to be a training notebook.")
    copy = Path(tempfile.mkdtemp(prefix="nbprod-retrain-")) / Path(rel).name
    copy.write_bytes(data)
    return copy


def _failure(exc: Any, executed: Path) -> str:
    """What stopped the notebook, in one line.

    An exception gives its name and first line. A magic's UsageError (a refused package, a
    failed gate) reaches papermill without either: IPython prints it to the cell's stderr, so
    the executed notebook's failing cell (the one papermill marks) is read for it.
    """
    if exc.evalue:
        return f"{exc.ename}: {str(exc.evalue).splitlines()[0]}."
    try:
        import nbformat

        cells = [c for c in nbformat.read(str(executed), as_version=4).cells
                 if c.get("metadata", {}).get("papermill", {}).get("exception")]
        lines = [line for cell in cells[:1] for out in cell.get("outputs", [])
                 if out.get("output_type") == "stream" and out.get("name") == "stderr"
                 for line in out.get("text", "").splitlines() if line.strip()]
    except (OSError, ValueError):
        lines = []
    return (lines[-1].rstrip(".") + ".") if lines else f"{exc.ename}."

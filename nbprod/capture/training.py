"""The training notebook an artifact carries, so that ``nbprod retrain`` can run it again.

Packaging copies the notebook the model was trained in into the artifact as
:data:`TRAINING_NOTEBOOK` (outputs cleared) and records the names of its ``parameters`` cell;
retraining (:mod:`nbprod.lifecycle.retrain`) re-executes that copy with papermill.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TRAINING_NOTEBOOK = "training.ipynb"


def notebook_parameters(path: Path) -> list[str]:
    """Names assigned in the notebook's ``parameters`` cell."""
    import ast

    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            names = []
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign):
                    names += [t.id for t in node.targets if isinstance(t, ast.Name)]
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    names.append(node.target.id)
            return names
    return []


def store_training_notebook(session, root: Path) -> dict[str, Any] | None:
    """Copy the training notebook into the artifact (outputs cleared) so it can be re-run."""
    src = session.notebook_path
    if not src or not Path(src).is_file():
        return None
    import nbformat

    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("papermill", None)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    nbformat.write(nb, str(root / TRAINING_NOTEBOOK))
    return {"notebook": TRAINING_NOTEBOOK, "source": str(src),
            "parameters": notebook_parameters(root / TRAINING_NOTEBOOK)}

"""The training notebook an artifact carries, so that ``nbprod retrain`` can run it again.

Packaging copies the notebook the model was trained in into the artifact as
:data:`TRAINING_NOTEBOOK` (outputs cleared) and records the names of its ``parameters`` cell;
retraining (:mod:`nbprod.lifecycle.retrain`) re-executes that copy with papermill.

When no notebook path is known (a notebook executed by papermill, plain IPython), the notebook
is rebuilt from the cells the kernel executed, in order (:func:`executed_notebook`): papermill's
injected parameters cell is left out (retraining injects its own), and the cell before it, or
else the first cell of only literal assignments, is tagged ``parameters``.
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


INJECTED_HEADER = "# Parameters"  # the first line of the cell papermill injects


def executed_cells(shell: Any = None) -> list[str]:
    """The source of every cell the running IPython kernel executed so far, in order (the
    cell running now included); empty outside IPython."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return []
        shell = get_ipython()
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    return [str(cell) for cell in (history or [])[1:] if str(cell).strip()]


def _assigned_literals(source: str) -> list[str] | None:
    """The names a cell of only ``NAME = literal`` statements assigns (None for any other
    cell, and for a cell that is not Python, such as one that starts with a magic)."""
    import ast

    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    names = []
    for node in body:
        value = getattr(node, "value", None)
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
        else:
            return None
        try:
            ast.literal_eval(value) if value is not None else None
        except ValueError:
            return None
    return names or None


def executed_notebook(cells: list[str]) -> Any:
    """A notebook of ``cells`` (executed sources, in order): papermill's injected parameters
    cell dropped, the parameters cell tagged (the cell papermill injected after, else the first
    cell of only literal assignments); None when there are no cells."""
    import nbformat

    if not cells:
        return None
    injected = [i for i, c in enumerate(cells)
                if c.lstrip().split("\n", 1)[0].strip() == INJECTED_HEADER and _assigned_literals(c)]
    parameters = None
    if injected and injected[0] > 0 and _assigned_literals(cells[injected[0] - 1]):
        parameters = injected[0] - 1
    elif not injected:
        parameters = next((i for i, c in enumerate(cells) if _assigned_literals(c)), None)
    nb = nbformat.v4.new_notebook()
    for i, source in enumerate(cells):
        if i in injected:
            continue
        cell = nbformat.v4.new_code_cell(source.rstrip("\n"))
        if i == parameters:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["nbprod"] = {"rebuilt_from": "executed cells"}
    return nb


def store_training_notebook(session, root: Path) -> dict[str, Any] | None:
    """Copy the training notebook into the artifact (outputs cleared) so it can be re-run;
    without a known path, the notebook rebuilt from the cells the kernel executed."""
    src = session.notebook_path
    if not src or not Path(src).is_file():
        return _store_executed(root)
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


def _store_executed(root: Path) -> dict[str, Any] | None:
    import nbformat

    cells = executed_cells()
    nb = executed_notebook(cells)
    if nb is None:
        return None
    nbformat.write(nb, str(root / TRAINING_NOTEBOOK))
    return {"notebook": TRAINING_NOTEBOOK,
            "source": f"rebuilt from the {len(cells)} cells the kernel executed",
            "parameters": notebook_parameters(root / TRAINING_NOTEBOOK)}

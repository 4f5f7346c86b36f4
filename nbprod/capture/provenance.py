"""Where an artifact comes from: its name, who packaged it, the notebook, git, the environment,
and the pinned requirements MLflow restores.
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from .._version import __version__
from ..core.user import user_name

KEY_PACKAGES = ("pandas", "numpy", "scikit-learn", "scipy", "skops", "pyarrow", "mlflow",
                "papermill", "nbformat")


def default_name(session) -> str:
    if session.notebook_path:
        return Path(session.notebook_path).stem
    return "model"


def provenance(session) -> dict[str, Any]:
    where = Path(session.notebook_path).parent if session.notebook_path else Path.cwd()
    return {
        "notebook": session.notebook_path,
        "working_directory": str(Path.cwd()),
        "user": user_name(),
        "cells": session.cells,
        "git": _git(where),
    }


def _git(where: Path) -> dict[str, Any] | None:
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(where), *args], capture_output=True,
                                  text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    return {"commit": commit, "dirty": bool(git("status", "--porcelain")),
            "branch": git("rev-parse", "--abbrev-ref", "HEAD")}


def distribution_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    import platform

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nbprod": __version__,
        "packages": {d: distribution_version(d) for d in KEY_PACKAGES},
    }


def requirements(feature_source: str, model: Any, wheel: str) -> list[str]:
    """Pinned pip requirements of the scoring environment MLflow restores: nbprod's scoring
    runtime, MLflow (its scoring server runs inside the environment) and the distributions that
    provide what the features and the model import, each at the version installed now; then
    nbprod itself, the ``wheel`` inside the artifact (a path relative to the artifact: MLflow
    installs from the model's directory)."""
    import ast

    from .wheel import RUNTIME_DEPENDENCIES

    dists = {*RUNTIME_DEPENDENCIES, "mlflow"}
    top_level = {type(model).__module__.split(".")[0]}
    for node in ast.walk(ast.parse(feature_source)):
        if isinstance(node, ast.Import):
            top_level |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            top_level.add(node.module.split(".")[0])
    mapping = module_distributions()
    for mod in top_level:
        dists.update(mapping.get(mod, []))
    reqs = []
    for d in sorted(dists - {"nbprod"}, key=str.lower):  # nbprod: the wheel below
        v = distribution_version(d)
        if v:
            reqs.append(f"{d}=={v}")
    return [*reqs, f"./{wheel}"]


def module_distributions() -> dict[str, list[str]]:
    """Which installed distributions provide each top-level module
    (:func:`importlib.metadata.packages_distributions`). Scanning every installed distribution
    costs about 0.4 s, so the answer is kept for as long as no directory on ``sys.path`` changes:
    installing or removing a distribution adds or removes a ``.dist-info`` entry there, which
    changes that directory's modification time, so the next call scans again."""
    import os
    import sys

    # "" on sys.path is the working directory; without it, moving elsewhere changes nothing
    state = [(os.getcwd(), None)] if "" in sys.path else []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, None))
    return _scan_distributions(tuple(state))


@lru_cache(maxsize=1)
def _scan_distributions(state: tuple[tuple[str, int | None], ...]) -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    del state  # the cache key only
    return packages_distributions()

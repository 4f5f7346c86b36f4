"""A notebook written in another style, on another dataset, goes through the same journey."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

HERE = Path(__file__).parent


@pytest.mark.slow
def test_analyst_notebook_to_scored_batch(tmp_path, monkeypatch):
    import papermill as pm

    monkeypatch.chdir(tmp_path)
    pm.execute_notebook(
        str(HERE / "notebooks" / "wine_by_an_analyst.ipynb"), str(tmp_path / "trained.ipynb"),
        parameters={"out_dir": str(tmp_path)}, progress_bar=False,
    )
    art = tmp_path / "wine_artifact"
    manifest = json.loads((art / "nbprod.json").read_text())
    assert manifest["features"]["function"] == "build_features"
    assert manifest["model"]["variable"] == "forest"
    assert manifest["classes"] == ["barbera", "barolo", "grignolino"]
    source = (art / "features.py").read_text()
    assert "COLOUR_WEIGHTS = {'color_intensity': 0.7, 'hue': 0.3}" in source
    assert "from math import log" in source and "def colour_score(frame):" in source

    proc = subprocess.run(
        [sys.executable, "-m", "nbprod.cli", "score", str(art), "future.parquet", "-o", "scored.parquet",
         "--summary", "summary.json"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    future = pd.read_parquet(tmp_path / "future.parquet")
    assert len(scored) == len(future)
    assert list(scored.columns) == ["prediction", "proba_barbera", "proba_barolo", "proba_grignolino"]
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "ok"

"""Shared fixtures: a real IPython shell, small real datasets, a real MLflow SQLite store."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-output" / "screenshots"  # kept as test outputs
CHROMIUM = Path(os.environ.get("NBPROD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync",
]

pytest_plugins = ["tests.artifacts"]  # shared packaged artifacts


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory: pytest.TempPathFactory):
    """One real SQLite MLflow store for the whole run (creating one costs seconds)."""
    store = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.setdefault("MLFLOW_ARTIFACTS_DESTINATION", str(store / "artifacts"))
    yield uri
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def shell(in_tmp: Path):
    """A real InteractiveShell with nbprod loaded; run_cell errors re-raise via .raise_error()."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cfg = Config()
    cfg.HistoryManager.enabled = False
    sh = InteractiveShell(config=cfg)
    sh.run_line_magic("load_ext", "nbprod")
    yield sh
    sh.reset()
    sh.cleanup()


def run(sh, source: str):
    """Run a cell in ``sh`` and re-raise whatever it raised."""
    result = sh.run_cell(source, store_history=False)
    result.raise_error()
    return result


@pytest.fixture(scope="session")
def cancer() -> pd.DataFrame:
    """scikit-learn's bundled breast cancer data with an id column (binary classification)."""
    from sklearn.datasets import load_breast_cancer

    df = load_breast_cancer(as_frame=True).frame
    df.columns = [c.replace(" ", "_") for c in df.columns]
    df.insert(0, "patient_id", [f"P{i:04d}" for i in range(len(df))])
    return df


@pytest.fixture(scope="session")
def mixed() -> pd.DataFrame:
    """Generated data with pandas string columns holding NaN, numeric NaNs and a 3-class target."""
    rng = np.random.default_rng(7)
    n = 900
    region = rng.choice(["north", "south", "east", "west"], size=n).astype(object)
    region[rng.random(n) < 0.08] = None
    plan = rng.choice(["basic", "plus", "pro"], size=n)
    usage = rng.gamma(2.0, 10.0, size=n)
    usage[rng.random(n) < 0.05] = np.nan
    tenure = rng.integers(0, 60, size=n)
    score = usage * 0.05 + (plan == "pro") * 2 + (tenure / 30) + rng.normal(0, 0.7, n)
    label = np.where(score > 3.2, "high", np.where(score > 1.8, "mid", "low"))
    return pd.DataFrame(
        {
            "account": [f"A{i}" for i in range(n)],
            "region": pd.array(region, dtype="str"),
            "plan": pd.array(plan, dtype="str"),
            "usage": usage,
            "tenure": tenure,
            "email": [f"user{i}@example.com" for i in range(n)],
            "label": label,
        }
    )


@pytest.fixture(scope="session")
def diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (never a downloaded browser); one per test module,
    so Playwright's event loop never outlives the browser tests."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
                    "(apt-get install chromium), or set NBPROD_CHROMIUM.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()

"""Progress of packaging: a bar of its steps on a terminal, nothing in logs or Jupyter unless
asked (``Session.package(progress=...)``, ``%nbprod package PATH --progress``). That a packaging
whose stderr is no terminal draws nothing is asserted in
tests/test_package.py::test_regression_package_and_score; `nbprod retrain`'s bar in
tests/test_lifecycle.py."""

from __future__ import annotations

import io
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.artifacts import diabetes_features
from tests.conftest import run
from tests.terminal import pseudo_terminal


def _session(diabetes):
    from sklearn.linear_model import Ridge

    import nbprod

    train, valid = diabetes.iloc[:300], diabetes.iloc[300:380]
    s = nbprod.Session("diabetes")
    s.snapshot(train, role="train", target="target")
    s.snapshot(valid, role="valid", target="target")
    s.features(diabetes_features)
    s.model(Ridge(alpha=0.1).fit(diabetes_features(train.drop(columns=["target"])),
                                 train["target"]))
    return s


@contextmanager
def _stderr_on_a_terminal(monkeypatch: pytest.MonkeyPatch):
    """sys.stderr on a real pseudo-terminal (120 columns); yields the bytes the terminal got,
    complete once the block ends."""
    with pseudo_terminal() as (fd, got):
        terminal = open(os.dup(fd), "w", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed below
        assert terminal.isatty()
        monkeypatch.setattr(sys, "stderr", terminal)
        try:
            yield got
        finally:
            monkeypatch.setattr(sys, "stderr", sys.__stderr__)
            terminal.close()


def test_packaging_shows_its_steps_on_a_terminal(diabetes, tmp_path, monkeypatch):
    s = _session(diabetes)
    with _stderr_on_a_terminal(monkeypatch) as got:
        result = s.package(tmp_path / "art", log_to_mlflow=False)
    text = got.decode("utf-8", "replace")
    assert result.path.is_dir()
    assert "nbprod package art" in text
    for step in ("row rules", "importance", "contents", "parity replay"):
        assert step in text, f"step {step!r} not shown: {text[-400:]!r}"
    assert "5/5" in text or "4/5" in text  # the count of steps done (MLflow was not logged)


def test_the_magic_draws_the_bar_only_when_asked(shell, diabetes, monkeypatch):
    """In Jupyter stderr is no terminal: `%nbprod package PATH --progress` asks for the bar."""
    from nbprod.jupyter.magics import NbprodMagics

    # the captures as the magics would have made them (their own tests run those cells)
    shell.magics_manager.registry[NbprodMagics.__name__]._session = _session(diabetes)
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    run(shell, "%nbprod package asked --no-mlflow --progress")
    monkeypatch.setattr(sys, "stderr", sys.__stderr__)
    assert Path("asked/nbprod.json").is_file()
    assert "nbprod package asked" in log.getvalue()
    assert "parity replay" in log.getvalue()

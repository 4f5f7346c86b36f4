"""Packaged artifacts shared by the artifact, CLI, papermill and pyfunc tests.

Packaging runs a parity replay in a fresh process (seconds), so each artifact is built once per
test session through the public API, ``nbprod.Session``, and shared read-only. Tests that alter
an artifact work on a copy (:func:`copy_artifact`). At the end of the session every shared
artifact must still verify with no stray files, so a test that writes into one is caught.

Registered as a plugin by ``tests/conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _wheel() -> str:
    """Where packaging puts the running nbprod's wheel (its directory is named by its hash)."""
    from nbprod.capture.wheel import relative_path

    return relative_path()


# Every file an artifact holds besides nbprod.json. The tamper tests are parametrized over this
# list; test_artifact checks that it matches the manifest, so a new file cannot go untested.
WHEEL = _wheel()
ARTIFACT_FILES = (
    "MLmodel",
    "conda.yaml",
    "features.py",
    "input_example.json",
    "model.skops",
    "python_env.yaml",
    "reference.json",
    "requirements.txt",
    "score.ipynb",
    "serving_input_example.json",
    "snapshots/train.json",
    "snapshots/train.sample.parquet",
    "snapshots/valid.json",
    "snapshots/valid.sample.parquet",
    WHEEL,
)


# -- feature functions, captured as source by Session.features ------------------------------
def cancer_features(df):
    out = df.copy()
    out["area_ratio"] = df["mean_area"] / (df["worst_area"] + 1.0)
    out["log_area"] = np.log1p(df["mean_area"])
    return out


def diabetes_features(df):
    out = df.copy()
    out["bmi_bp"] = df["bmi"] * df["bp"]
    return out


def kinds_features(df):
    out = df[["usage", "tenure", "plan", "region"]].copy()
    out["active"] = df["active"].astype("float64")
    out["days"] = (df["since"] - pd.Timestamp("2020-01-01")).dt.days.astype("float64")
    return out


def kinds_frame(n: int, seed: int) -> pd.DataFrame:
    """One column of each kind: ``usage`` float (>= 0, never missing), ``tenure`` integer,
    ``plan`` text (a strict OneHotEncoder), ``region`` text with missing values (an encoder that
    ignores unknown categories), ``active`` bool, ``since`` datetime; ``account`` is the id."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], size=n).astype(object)
    region[rng.random(n) < 0.08] = None
    plan = rng.choice(["basic", "plus", "pro"], size=n)
    usage = rng.gamma(2.0, 10.0, size=n)
    tenure = rng.integers(0, 60, size=n)
    active = rng.random(n) < 0.7
    since = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, size=n), unit="D")
    score = usage * 0.05 + (plan == "pro") * 2 + tenure / 30 + active * 0.5 + rng.normal(0, 0.7, n)
    return pd.DataFrame({
        "account": [f"A{seed:02d}-{i:05d}" for i in range(n)],
        "usage": usage, "tenure": tenure, "plan": pd.array(plan, dtype="str"),
        "region": pd.array(region, dtype="str"), "active": active, "since": since,
        "label": np.where(score > 3.4, "high", np.where(score > 2.0, "mid", "low")),
    })


@dataclass(frozen=True)
class Packaged:
    """A packaged artifact with what built it and a fresh batch to score."""

    path: Path
    session: Any  # nbprod.Session: the live feature function and model
    result: Any  # nbprod.capture.package.PackageResult
    batch: pd.DataFrame  # raw rows never seen in training, without the target
    labels: pd.DataFrame  # the batch's target (and id column when there is one)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.result.manifest

    def expected(self, raw: pd.DataFrame) -> pd.DataFrame:
        """What the live notebook objects answer for ``raw``, computed without nbprod."""
        fn = self.session.feature_capture.fn
        model = self.session.model_capture.model
        id_column = self.manifest["id_column"]
        X = fn(raw[self.manifest["input_columns"]])
        out = pd.DataFrame(index=raw.index)
        if id_column:
            out[id_column] = raw[id_column].to_numpy()
        if self.manifest["task"] == "classification":
            out["prediction"] = model.predict(X)
            proba = model.predict_proba(X)
            for j, cls in enumerate(model.classes_):
                out[f"proba_{cls}"] = proba[:, j]
        else:
            out["prediction"] = model.predict(X)
        return out


def copy_artifact(packaged: Packaged, dest: Path) -> Path:
    """A private copy of a shared artifact, safe to alter."""
    shutil.copytree(packaged.path, dest)
    return dest


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def assert_valid_manifest(root: Path) -> dict[str, Any]:
    """The manifest at ``root``, checked against docs/manifest.schema.json by ``jsonschema``, the
    reference implementation of JSON Schema (nbprod itself checks with fastjsonschema)."""
    import json

    from jsonschema import Draft202012Validator

    schema = json.loads((ROOT / "docs" / "manifest.schema.json").read_text(encoding="utf-8"))
    manifest = json.loads((Path(root) / "nbprod.json").read_text(encoding="utf-8"))
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in Draft202012Validator(schema).iter_errors(manifest)]
    assert not errors, f"{root}/nbprod.json does not follow the schema: {errors}"
    return manifest


def _assert_untouched(path: Path) -> None:
    import nbprod

    result = nbprod.verify(path)
    assert result.ok, f"a test altered the shared artifact {path}: {result.problems}"
    assert not result.extra, f"a test wrote into the shared artifact {path}: {result.extra}"


# -- input files that cannot be scored (for the cancer artifact) ---------------------------
def _missing_column(d: Path, batch: pd.DataFrame) -> Path:
    return write_csv(batch.drop(columns=["mean_area"]), d / "in.csv")


def _missing_id(d: Path, batch: pd.DataFrame) -> Path:
    return write_csv(batch.drop(columns=["patient_id"]), d / "in.csv")


def _text_in_numbers(d: Path, batch: pd.DataFrame) -> Path:
    # one value that does not convert costs its row only (rows: rule 'type'); a column where no
    # value converts is the wrong input as a whole
    bad = batch.assign(mean_texture=[f"abc{i}" for i in range(len(batch))])
    return write_csv(bad, d / "in.csv")


def _empty_file(d: Path, batch: pd.DataFrame) -> Path:
    (d / "in.csv").write_bytes(b"")
    return d / "in.csv"


def _header_only(d: Path, batch: pd.DataFrame) -> Path:
    return write_csv(batch.iloc[:0], d / "in.csv")


def _blank_lines(d: Path, batch: pd.DataFrame) -> Path:
    (d / "in.csv").write_text("\n\n\n")
    return d / "in.csv"


def _garbage_parquet(d: Path, batch: pd.DataFrame) -> Path:
    (d / "in.parquet").write_bytes(b"PAR1 this is not really parquet " * 20)
    return d / "in.parquet"


def _csv_named_parquet(d: Path, batch: pd.DataFrame) -> Path:
    return write_csv(batch, d / "in.parquet")


def _unsupported_extension(d: Path, batch: pd.DataFrame) -> Path:
    return write_csv(batch, d / "in.xlsx")


def _no_extension(d: Path, batch: pd.DataFrame) -> Path:
    return write_csv(batch, d / "input")


def _nonexistent(d: Path, batch: pd.DataFrame) -> Path:
    return d / "absent.csv"


def _directory(d: Path, batch: pd.DataFrame) -> Path:
    (d / "dir.csv").mkdir()
    return d / "dir.csv"


@dataclass(frozen=True)
class BadInput:
    make: Any  # (directory, batch) -> path of the input file
    error: type  # what nbprod.jobs.run.execute raises
    needle: str  # what the message must say
    kernel: bool = True  # whether `nbprod score` gets as far as running the notebook


def _bad_inputs() -> dict[str, BadInput]:
    from nbprod.exceptions import InputError, SchemaError

    return {
        "missing-column": BadInput(_missing_column, SchemaError, "missing column 'mean_area'"),
        "missing-id": BadInput(_missing_id, SchemaError, "id column 'patient_id'"),
        "does-not-convert": BadInput(_text_in_numbers, SchemaError,
                                     "Column 'mean_texture' expected float values (float64); "
                                     "none of its"),
        "empty-file": BadInput(_empty_file, InputError, "is empty", kernel=False),
        "header-only": BadInput(_header_only, InputError, "has a header but no rows"),
        "blank-lines": BadInput(_blank_lines, InputError, "has no data"),
        "garbage-parquet": BadInput(_garbage_parquet, InputError, "is not readable as parquet"),
        "csv-named-parquet": BadInput(_csv_named_parquet, InputError,
                                      "is not readable as parquet"),
        "unsupported-extension": BadInput(_unsupported_extension, InputError,
                                          "unsupported file type '.xlsx'", kernel=False),
        "no-extension": BadInput(_no_extension, InputError, "unsupported file type",
                                 kernel=False),
        "nonexistent": BadInput(_nonexistent, InputError, "does not exist", kernel=False),
        "directory": BadInput(_directory, InputError, "directory", kernel=False),
    }


BAD_INPUTS = _bad_inputs()


# -- builders -------------------------------------------------------------------------------
def package_cancer(cancer: pd.DataFrame, path: Path, *, log_to_mlflow: bool = True) -> Packaged:
    """Binary classification with an id column; rows 450+ are the new batch."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import nbprod

    train, valid, new = cancer.iloc[:300], cancer.iloc[300:450], cancer.iloc[450:]
    s = nbprod.Session("cancer")
    s.snapshot(train, role="train", target="target", id="patient_id")
    s.snapshot(valid, role="valid", target="target", id="patient_id")
    s.features(cancer_features)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(cancer_features(train.drop(columns=["target", "patient_id"])), train["target"])
    s.model(model)
    s.check("metric", metric="accuracy", min=0.8)  # accuracy joins roc_auc in the reference
    result = s.package(path, log_to_mlflow=log_to_mlflow)
    return Packaged(
        path=path,
        session=s,
        result=result,
        batch=new.drop(columns=["target"]).reset_index(drop=True),
        labels=new[["patient_id", "target"]].reset_index(drop=True),
    )


def package_diabetes(diabetes: pd.DataFrame, path: Path, *, log_to_mlflow: bool = False) -> Packaged:
    """Regression without an id column (labels join by row order); rows 380+ are new."""
    from sklearn.linear_model import Ridge

    import nbprod

    train, valid, new = diabetes.iloc[:300], diabetes.iloc[300:380], diabetes.iloc[380:]
    s = nbprod.Session("diabetes")
    s.snapshot(train, role="train", target="target")
    s.snapshot(valid, role="valid", target="target")
    s.features(diabetes_features)
    model = Ridge(alpha=0.1).fit(diabetes_features(train.drop(columns=["target"])), train["target"])
    s.model(model)
    result = s.package(path, log_to_mlflow=log_to_mlflow)
    return Packaged(
        path=path,
        session=s,
        result=result,
        batch=new.drop(columns=["target"]).reset_index(drop=True),
        labels=new[["target"]].reset_index(drop=True),
    )


def package_kinds(path: Path, *, log_to_mlflow: bool = False) -> Packaged:
    """A 3-class classifier over every column kind (see :func:`kinds_frame`): a LogisticRegression
    that takes no missing value, behind a strict OneHotEncoder for ``plan`` and a lenient one for
    ``region``. The batch is 250 fresh rows."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import nbprod

    data = kinds_frame(1000, 1)
    train, valid = data.iloc[:700], data.iloc[700:]
    s = nbprod.Session("kinds")
    s.snapshot(train, role="train", target="label", id="account")
    s.snapshot(valid, role="valid", target="label", id="account")
    s.features(kinds_features)
    columns = ColumnTransformer([
        ("num", StandardScaler(), ["usage", "tenure", "active", "days"]),
        ("plan", OneHotEncoder(), ["plan"]),  # handle_unknown="error": unseen plans fail
        ("region", OneHotEncoder(handle_unknown="ignore"), ["region"]),
    ])
    model = make_pipeline(columns, LogisticRegression(max_iter=1000))
    model.fit(kinds_features(train.drop(columns=["label", "account"])), train["label"])
    s.model(model)
    result = s.package(path, log_to_mlflow=log_to_mlflow)
    new = kinds_frame(250, 2)
    return Packaged(path=path, session=s, result=result,
                    batch=new.drop(columns=["label"]), labels=new[["account", "label"]])


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def cancer_art(cancer, tmp_path_factory, mlflow_store) -> Packaged:
    """The shared binary classifier, packaged with its MLflow run logged (read-only)."""
    packaged = package_cancer(cancer, tmp_path_factory.mktemp("cancer-artifact") / "art")
    yield packaged
    _assert_untouched(packaged.path)


@pytest.fixture(scope="session")
def diabetes_art(diabetes, tmp_path_factory, mlflow_store) -> Packaged:
    """The shared regressor, packaged without MLflow (read-only)."""
    packaged = package_diabetes(diabetes, tmp_path_factory.mktemp("diabetes-artifact") / "art")
    yield packaged
    _assert_untouched(packaged.path)


@pytest.fixture(scope="session")
def kinds_art(tmp_path_factory, mlflow_store) -> Packaged:
    """The shared artifact with every column kind, for the row rules (read-only)."""
    packaged = package_kinds(tmp_path_factory.mktemp("kinds-artifact") / "art")
    yield packaged
    _assert_untouched(packaged.path)

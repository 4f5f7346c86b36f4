"""The one scoring path: validate input -> features -> predict -> output frame.

:class:`Scorer` is built either from live objects in the notebook (for parity replay) or from a
loaded artifact; papermill, the CLI, ``Artifact.score`` and the MLflow pyfunc flavour all end
here, so batch, online and replayed scoring share one code path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import NbprodError, SchemaError
from .schema import Schema, conform

PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
OUT_OF_BOUNDS = "out_of_bounds"


class OutputBoundsError(NbprodError, ValueError):
    """Outputs broke the declared sanity bounds under the ``fail`` policy; nothing is written."""


class FeatureError(NbprodError, RuntimeError):
    """The captured feature function failed or returned something the model cannot use."""


def proba_column(cls: Any) -> str:
    if isinstance(cls, np.generic):
        cls = cls.item()
    return f"{PROBA_PREFIX}{cls}"


def _take_classes(classes: np.ndarray, codes: np.ndarray) -> Any:
    """``classes[codes]``, as the column the output frame would make of it.

    Text labels are taken from a small array holding the classes as pandas' string dtype:
    inferring that dtype from a million Python strings costs more than predict_proba itself,
    and the result (values and dtype) is the same as ``pd.DataFrame({...: classes[codes]})``.
    """
    if classes.dtype == object and len(classes):
        labels = pd.Series(classes, copy=False).array  # the same inference as the output frame
        if isinstance(labels.dtype, pd.StringDtype):
            return labels.take(codes)
    return classes[codes]


@dataclass
class Scored:
    """A scored batch: the output as written, the conformed input, every raw output row and
    the mask of rows outside the output bounds (before any were dropped)."""

    output: pd.DataFrame
    inputs: pd.DataFrame
    all_outputs: pd.DataFrame
    out_of_bounds: np.ndarray
    features: Any = None

    def parity_frame(self) -> pd.DataFrame:
        """Every raw output row with its bounds verdict: what parity replay compares, whatever
        the bounds policy would then do with the violating rows."""
        return self.all_outputs.assign(**{OUT_OF_BOUNDS: self.out_of_bounds})


@dataclass
class Scorer:
    """Everything needed to score raw input frames."""

    schema: Schema  # raw input columns (no target, no id), from the train snapshot
    feature_fn: Callable[[pd.DataFrame], Any]
    model: Any
    task: str  # "classification" | "regression"
    id_column: str | None = None
    prediction_from_proba: bool = False
    bounds: dict[str, Any] | None = None  # output sanity bounds and their policy
    hide_ids: bool = False  # the id column is personal data: messages give row numbers

    @property
    def classes(self) -> list[Any] | None:
        if self.task != "classification":
            return None
        return list(self.model.classes_)

    @property
    def output_columns(self) -> list[str]:
        cols = [self.id_column] if self.id_column else []
        cols.append(PREDICTION)
        if self.task == "classification":
            cols += [proba_column(c) for c in self.model.classes_]
        if self.bounds and self.bounds["policy"] == "flag":
            cols.append(OUT_OF_BOUNDS)
        return cols

    def prepare(self, df: pd.DataFrame) -> pd.DataFrame:
        """Conform ``df`` to the training schema (raises SchemaError naming the column)."""
        if self.id_column and isinstance(df, pd.DataFrame) and self.id_column not in df.columns:
            raise SchemaError(
                f"Input is missing the id column {self.id_column!r} declared at snapshot time.",
                column=self.id_column,
            )
        X = conform(df, self.schema)
        if len(X) == 0:
            raise SchemaError("Input has no rows to score.")
        return X

    def features(self, X: pd.DataFrame) -> Any:
        try:
            out = self.feature_fn(X)
        except Exception as exc:
            name = getattr(self.feature_fn, "__name__", "features")
            raise FeatureError(
                f"The feature function {name}() raised {type(exc).__name__}: {exc}"
            ) from exc
        n = getattr(out, "shape", (None,))[0]
        if n is None:
            raise FeatureError(
                f"The feature function returned a {type(out).__name__}; it must return a "
                "DataFrame or array with one row per input row."
            )
        if n != len(X):
            raise FeatureError(
                f"The feature function returned {n} rows for {len(X)} input rows; it must keep "
                "one row per input row, in order (no filtering or de-duplication)."
            )
        return out

    def predict(self, features: Any, index: pd.Index) -> pd.DataFrame:
        """Model outputs for a feature matrix, as the output frame (without the id)."""
        if self.task == "classification":
            proba = np.asarray(self.model.predict_proba(features), dtype="float64")
            classes = np.asarray(self.model.classes_)
            pred: Any
            if self.prediction_from_proba:
                pred = _take_classes(classes, np.argmax(proba, axis=1))
            else:
                pred = np.asarray(self.model.predict(features))
            cols: dict[str, Any] = {PREDICTION: pred}
            for j, cls in enumerate(classes):
                cols[proba_column(cls)] = proba[:, j]
            return pd.DataFrame(cols, index=index)
        pred = np.asarray(self.model.predict(features))
        if pred.ndim != 1:
            pred = pred.reshape(len(index), -1)
            if pred.shape[1] != 1:
                raise FeatureError(
                    f"The model returned {pred.shape[1]} outputs per row; nbprod scores "
                    "single-output models."
                )
            pred = pred[:, 0]
        return pd.DataFrame({PREDICTION: pred}, index=index)

    def score(self, df: pd.DataFrame) -> pd.DataFrame:
        """Score raw rows: same rows and order as ``df``; id, prediction, proba_<class>.

        With output bounds declared, the ``flag`` policy adds an ``out_of_bounds`` column,
        ``drop`` removes violating rows and ``fail`` raises :class:`OutputBoundsError`.
        """
        return self.score_detailed(df).output

    def score_detailed(self, df: pd.DataFrame, *, apply_policy: bool = True) -> Scored:
        """Score and keep what monitoring needs: the conformed input and the bounds mask.

        ``apply_policy=False`` (parity replay) marks violating rows without the policy acting
        on them: nothing dropped, nothing refused."""
        X = self.prepare(df)
        feats = self.features(X)
        out = self.predict(feats, X.index)
        if self.id_column:
            out.insert(0, self.id_column, df[self.id_column].to_numpy())
        bad = np.zeros(len(out), dtype=bool)
        if self.bounds:
            from .checks.bounds import violations

            bad = violations(out, self.bounds)
            return Scored(self.apply_bounds(out, bad) if apply_policy else out, X, out, bad, feats)
        return Scored(out, X, out, bad, feats)

    def apply_bounds(self, out: pd.DataFrame, bad: np.ndarray) -> pd.DataFrame:
        assert self.bounds is not None
        policy = self.bounds["policy"]
        if policy == "flag":
            out = out.copy()
            out[OUT_OF_BOUNDS] = bad
            return out
        if not bad.any():
            return out
        if policy == "drop":
            return out.loc[~bad]
        rows = out.loc[bad]
        by_id = self.id_column and not self.hide_ids
        ids = rows[self.id_column].tolist()[:10] if by_id else np.flatnonzero(bad)[:10].tolist()
        what = "ids" if by_id else "rows"
        raise OutputBoundsError(
            f"{int(bad.sum())} prediction(s) break the output bounds declared at packaging "
            f"(policy fail), {what} {ids}; nothing was written."
        )


def compare_outputs(
    expected: pd.DataFrame, actual: pd.DataFrame, *, rtol: float = 1e-9, atol: float = 1e-12
) -> list[str]:
    """Differences between two output frames, as readable lines (empty when they agree).

    Classes and ids must be identical; floats must agree within ``rtol`` relative (``atol``
    only absorbs values that are zero up to rounding).
    """
    problems: list[str] = []
    if list(expected.columns) != list(actual.columns):
        return [f"columns differ: notebook {list(expected.columns)}, artifact {list(actual.columns)}"]
    if len(expected) != len(actual):
        return [f"row counts differ: notebook {len(expected)}, artifact {len(actual)}"]
    for col in expected.columns:
        a = expected[col].to_numpy()
        b = actual[col].to_numpy()
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            a = a.astype("float64")
            b = b.astype("float64")
            same = np.isclose(a, b, rtol=rtol, atol=atol) | (np.isnan(a) & np.isnan(b))
        else:
            same = np.asarray(pd.Series(a).astype("object").to_numpy() == pd.Series(b).astype("object").to_numpy())
        if not same.all():
            bad = np.flatnonzero(~same)
            i = int(bad[0])
            problems.append(
                f"{len(bad)} of {len(a)} rows differ in {col!r}; first at sample row {i}: "
                f"notebook {a[i]!r}, artifact {b[i]!r}"
            )
    return problems

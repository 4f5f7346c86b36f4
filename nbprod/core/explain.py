"""Per-row explanations: how much each model input moved one prediction, and in which direction.

:func:`explain` validates the rows exactly as scoring does (rejected rows are not explained; the
:class:`Explanation` keeps their issues), computes the model's output on the rows kept and splits
it into a base value plus one contribution per model input (a column the feature function
returns; the columns an encoder makes of it are folded back into it), with one of the methods of
:mod:`nbprod.core.shapley`. The contributions add up: ``base_value + sum(contribution) ==
prediction`` on the scale named in ``scale`` (checked for every row; a method whose numbers do
not add up is replaced by the model-agnostic one, which always does).

The long form (:attr:`Explanation.frame`) has one row per (explained row, model input), the
largest contribution first: the id column (when the artifact declares one), ``row`` (position in
the input), ``class`` (classifiers: the class explained), ``feature``, ``value`` (as text; a
personal-data input shows ``[personal data]``), ``contribution``, ``base_value``,
``prediction`` (the model's output on ``scale``, not the predicted class), ``scale`` and
``method``.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ExplainError, ExplainWarning, NbprodUsageError
from . import shapley
from .results import number
from .rows import RowIssues, value_text

log = logging.getLogger(__name__)

METHODS = ("auto", "linear", "tree", "exact", "sampling")
BACKGROUND_ROWS = 100
PERMUTATIONS = 10
SHAP_MISSING = ("SHAP is not installed, so this tree model is explained by the model-agnostic "
                "method (slower). Install it with: pip install 'nbprod[explain]'")
COLUMNS = ("row", "class", "feature", "value", "contribution", "base_value", "prediction",
           "scale", "method")


@dataclass
class Explanation:
    """Explanations of a batch: the long table and how it was made."""

    frame: pd.DataFrame
    scale: str  # raw output | log-odds | logit | decision function | probability
    method: str  # linear | tree | exact | sampling
    issues: RowIssues  # the row issues of the rows asked for; rejected rows are not explained
    id_column: str | None = None
    notes: list[str] = field(default_factory=list)  # why a slower method was used
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        """How many rows were explained."""
        return int(self.frame["row"].nunique())

    @property
    def rejected(self) -> int:
        return self.issues.n_rejected

    def top(self, k: int = 3) -> pd.DataFrame:
        """The ``k`` largest contributions (in absolute value) of each row."""
        return self.frame.groupby("row", sort=False).head(k).reset_index(drop=True)

    def totals(self) -> pd.DataFrame:
        """Per row: base value, the sum of the contributions and the prediction (they add up)."""
        g = self.frame.groupby("row", sort=False)
        return pd.DataFrame({"base_value": g["base_value"].first(),
                             "contributions": g["contribution"].sum(),
                             "prediction": g["prediction"].first()})

    def mean_abs(self) -> dict[str, float]:
        """Mean absolute contribution per model input over the rows: how much the model leans
        on each (the figure explanation drift compares)."""
        per = self.frame.groupby("feature", sort=False)["contribution"]
        return {str(k): float(v) for k, v in per.apply(lambda s: s.abs().mean()).items()}

    def summary(self) -> dict[str, Any]:
        return {"rows": self.rows, "rejected": self.rejected, "scale": self.scale,
                "method": self.method, "notes": list(self.notes)}

    def __repr__(self) -> str:
        return (f"<nbprod.Explanation {self.rows} rows on the {self.scale} scale by {self.method}"
                f"{f', {self.rejected} rejected' if self.rejected else ''}>")


def pick(df: pd.DataFrame, *, rows: int | None = None, ids: Iterable[Any] | None = None,
         id_column: str | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows to explain: the first ``rows`` rows, or those whose id is in ``ids`` (compared
    as text, in input order), with their positions in ``df``."""
    if rows is not None and ids is not None:
        raise NbprodUsageError("Give either rows (the first N rows) or ids, not both.")
    if rows is not None:
        if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1:
            raise NbprodUsageError(f"rows must be a positive whole number of rows. Got {rows!r}.")
        pos = np.arange(min(int(rows), len(df)))
        return df.iloc[pos], pos
    if ids is not None:
        if not id_column:
            raise NbprodUsageError("This artifact declares no id column, so rows cannot be chosen "
                                   "by id; choose them by number (rows=N, --rows N).")
        if id_column not in df.columns:
            raise NbprodUsageError(f"The input has no id column {id_column!r} to choose rows by.")
        if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
            ids = [ids]  # one id
        wanted = [str(i.item() if hasattr(i, "item") else i) for i in ids]
        if not wanted:
            raise NbprodUsageError("ids is empty; name at least one id.")
        have = df[id_column].astype("object").map(lambda v: str(v.item() if hasattr(v, "item") else v))
        missing = [i for i in wanted if i not in set(have)]
        if missing:
            shown = ", ".join(value_text(i) for i in missing[:5])
            raise NbprodUsageError(f"No row of the input has {id_column} {shown}"
                                   f"{f' (and {len(missing) - 5} more)' if len(missing) > 5 else ''}; "
                                   "check the ids (compared as text).")
        pos = np.flatnonzero(have.isin(set(wanted)).to_numpy())
        return df.iloc[pos], pos
    return df, np.arange(len(df))


def explain(scorer: Any, df: pd.DataFrame, *, background: pd.DataFrame,
            positions: np.ndarray | None = None, method: str = "auto",
            background_rows: int = BACKGROUND_ROWS, permutations: int = PERMUTATIONS,
            seed: int = 0, carried: Iterable[str] = ()) -> Explanation:
    """Explain every row of ``df`` that scoring would not reject.

    ``scorer``: a :class:`~nbprod.core.scoring.Scorer`; ``background``: raw reference rows (the
    artifact's validation sample) over which base values and the model-agnostic coalitions are
    averaged; ``positions``: the input position of each row of ``df`` (for ``row``);
    ``method``: one of :data:`METHODS` (``auto`` takes the fastest exact one the model allows);
    ``carried``: model inputs that carry personal data (their values are hidden).
    """
    if method not in METHODS:
        raise NbprodUsageError(f"method must be one of {', '.join(METHODS)}. Got {value_text(method)!r}.")
    if not isinstance(background_rows, int) or background_rows < 1:
        raise NbprodUsageError(f"background_rows must be a positive whole number. Got {background_rows!r}.")
    if not isinstance(permutations, int) or permutations < 2:
        raise NbprodUsageError(f"permutations must be a whole number of at least 2. Got {permutations!r}.")
    start = time.perf_counter()
    positions = np.arange(len(df)) if positions is None else np.asarray(positions)
    scored = scorer.score_detailed(df, errors="reject", apply_policy=False)
    kept = scored.positions if scored.positions is not None else np.arange(len(df))
    F, to_model = _frame(scored.features)
    F_bg = _background(scorer, background, background_rows, seed, F.columns)
    model, task = scorer.model, scorer.task
    classes = shapley.explained_classes(model, to_model(F), task)
    g = shapley.output(model, to_model(F), task, classes)
    phi, base, used, notes = _contributions(model, task, F, F_bg, classes, g, method,
                                            permutations, seed, to_model)
    hidden = set(scorer.hidden) | set(carried)
    frame = _long(F, phi, base, g, classes, model, task, hidden,
                  ids=(df[scorer.id_column].to_numpy()[kept] if scorer.id_column else None),
                  id_column=scorer.id_column, rows=positions[kept],
                  scale=shapley.scale_of(model, task), method=used)
    issues = scored.issues
    if len(issues.frame):  # the issues name the rows by their position in the whole input
        issues = replace(issues, frame=issues.frame.assign(
            row=positions[issues.frame["row"].to_numpy(dtype="int64")]))
    return Explanation(frame, shapley.scale_of(model, task), used, issues,
                       id_column=scorer.id_column, notes=notes,
                       seconds=time.perf_counter() - start)


# -- steps ------------------------------------------------------------------------------------
def _frame(features: Any) -> tuple[pd.DataFrame, Any]:
    """The model inputs as a frame, and how to turn a frame back into what the model takes."""
    if isinstance(features, pd.DataFrame):
        return features.reset_index(drop=True), lambda f: f
    arr = np.asarray(features)
    if arr.ndim != 2:
        raise ExplainError(f"The feature function returned a {arr.ndim}-dimensional array; "
                           "explanations need one row per input row and one column per model input.")
    names = [f"x{j}" for j in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=names), lambda f: f.to_numpy()


def _background(scorer: Any, background: pd.DataFrame, rows: int, seed: int,
                columns: pd.Index) -> pd.DataFrame:
    """Model inputs of up to ``rows`` reference rows (those scoring would not reject)."""
    bg = background
    if len(bg) > rows:
        bg = bg.iloc[np.sort(np.random.default_rng(seed).choice(len(bg), rows, replace=False))]
    if scorer.id_column and scorer.id_column not in bg.columns:
        bg = bg.assign(**{scorer.id_column: np.arange(len(bg))})
    try:
        scored = scorer.score_detailed(bg.reset_index(drop=True), errors="reject",
                                       apply_policy=False)
    except Exception as exc:
        raise ExplainError(f"The background rows (the artifact's reference sample) cannot be "
                           f"scored: {type(exc).__name__}: {str(exc)[:200]}") from exc
    F_bg, _ = _frame(scored.features)
    if list(F_bg.columns) != list(columns):
        raise ExplainError("The feature function returns other columns for the background rows "
                           "than for the rows explained; explanations need the same model inputs.")
    return F_bg


def _contributions(model: Any, task: str, F: pd.DataFrame, F_bg: pd.DataFrame,
                   classes: np.ndarray | None, g: np.ndarray, method: str, permutations: int,
                   seed: int, to_model: Any) -> tuple[np.ndarray, np.ndarray, str, list[str]]:
    notes: list[str] = []
    m = F.shape[1]
    if method in ("auto", "linear", "tree"):
        found = _folded(model, task, F, F_bg, classes, g, method, to_model, notes)
        if found is not None:
            return (*found, notes)
        if method != "auto":
            raise NbprodUsageError(f"method {method!r} cannot explain this model: {notes[-1]}. "
                                   "Use method 'auto' (--method auto), which picks one that can.")
    chosen = method if method in ("exact", "sampling") else ("exact" if m <= shapley.MAX_EXACT else "sampling")
    phi, base = shapley.agnostic(model, F, F_bg, classes, task, method=chosen,
                                 permutations=permutations, seed=seed, to_model=to_model)
    if not _adds_up(phi, base, g):
        raise ExplainError(f"The {chosen} contributions do not add up to the model's output "
                           f"(largest gap {number(_gap(phi, base, g))}); this is a bug in nbprod.")
    if notes:
        warnings.warn(" ".join(notes), ExplainWarning, stacklevel=3)
    return phi, base, chosen, notes


def _folded(model: Any, task: str, F: pd.DataFrame, F_bg: pd.DataFrame,
            classes: np.ndarray | None, g: np.ndarray, method: str, to_model: Any,
            notes: list[str]) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The linear or tree method on the preprocessed matrix, folded into the model inputs;
    None (with a note saying why) when neither applies."""
    est = shapley.final_estimator(model)
    steps = getattr(model, "steps", None)
    try:
        if steps and len(steps) > 1:
            pre = model[:-1]
            owner = shapley.sources(pre, pd.concat([F_bg, F], ignore_index=True), to_model)
            if owner is None:
                notes.append("a preprocessing output mixes several model inputs, so the "
                             "model-agnostic method was used.")
                return None
            given = pre.transform(to_model(F))  # as the final estimator takes it
            Z, Zbg = shapley.dense(given), shapley.dense(pre.transform(to_model(F_bg)))
        else:
            owner = np.arange(F.shape[1])
            given = to_model(F)
            Z, Zbg = shapley.dense(given), shapley.dense(to_model(F_bg))
    except (TypeError, ValueError) as exc:
        notes.append(f"the model's inputs are not all numbers after preprocessing ({type(exc).__name__}), "
                     "so the model-agnostic method was used.")
        return None
    linear_ok = method in ("auto", "linear") and shapley.scale_of(model, task) != "probability"
    if linear_ok:
        phi_z = shapley.linear(est, Z, Zbg, classes, task, given)
        if phi_z is not None:
            phi = shapley.fold(phi_z, owner, F.shape[1])
            if phi is not None:
                base = g - phi.sum(axis=1)  # the background mean of g, for a linear output
                return phi, base, "linear"
        if method == "linear":
            notes.append(f"{type(est).__name__} is not linear in its inputs")
            return None
    if method in ("auto", "tree") and shapley.is_tree(est):
        try:
            with warnings.catch_warnings():  # its import stirs deprecation warnings elsewhere
                warnings.simplefilter("ignore")
                import shap  # noqa: F401
        except ImportError:
            if method == "tree":
                notes.append("SHAP is not installed: pip install 'nbprod[explain]'")
                return None
            notes.append(SHAP_MISSING)
            return None
        try:
            phi_z, base = shapley.tree(est, Z, classes)
        except Exception as exc:  # a tree SHAP does not read (e.g. native categorical splits)
            notes.append(f"SHAP's TreeExplainer failed ({type(exc).__name__}: {str(exc)[:120]}), "
                         "so the model-agnostic method was used.")
            return None
        phi = shapley.fold(phi_z, owner, F.shape[1])
        if phi is None:
            notes.append("a preprocessing output that no explained or background row varies "
                         "carries a tree contribution, so the model-agnostic method was used.")
            return None
        if _adds_up(phi, base, g):
            return phi, base, "tree"
        notes.append("SHAP's tree contributions did not add up to the model's output here, so "
                     "the model-agnostic method was used.")
        return None
    if method == "tree":
        notes.append(f"{type(est).__name__} is not a scikit-learn tree model")
    return None


def _gap(phi: np.ndarray, base: np.ndarray, g: np.ndarray) -> float:
    return float(np.max(np.abs(base + phi.sum(axis=1) - g), initial=0.0))


def _adds_up(phi: np.ndarray, base: np.ndarray, g: np.ndarray) -> bool:
    scale = max(1.0, float(np.max(np.abs(g), initial=0.0)))
    return _gap(phi, base, g) <= 1e-6 * scale


def _long(F: pd.DataFrame, phi: np.ndarray, base: np.ndarray, g: np.ndarray,
          classes: np.ndarray | None, model: Any, task: str, hidden: set[str], *,
          ids: np.ndarray | None, id_column: str | None, rows: np.ndarray, scale: str,
          method: str) -> pd.DataFrame:
    from .pii import HIDDEN

    n, m = phi.shape
    order = np.argsort(-np.abs(phi), axis=1, kind="stable")
    names = np.asarray([str(c) for c in F.columns], dtype=object)
    values = np.empty((n, m), dtype=object)
    for j, col in enumerate(F.columns):
        if str(col) in hidden:
            values[:, j] = HIDDEN
        else:
            values[:, j] = [None if _missing(v) else _text(v) for v in F[col].to_numpy()]
    take = (np.arange(n)[:, None], order)
    out: dict[str, Any] = {}
    if id_column:
        out[id_column] = np.repeat(ids, m)
    out["row"] = np.repeat(rows, m)
    if task == "classification" and classes is not None:
        out["class"] = np.repeat(np.asarray(model.classes_)[classes], m)
    out.update({"feature": names[order].ravel(), "value": values[take].ravel(),
                "contribution": phi[take].ravel(), "base_value": np.repeat(base, m),
                "prediction": np.repeat(g, m), "scale": scale, "method": method})
    frame = pd.DataFrame(out)
    frame["value"] = frame["value"].astype("str").where(frame["value"].notna(), None)
    return frame


def _text(v: Any) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    return format(v, ".6g") if isinstance(v, float) else value_text(v)


def _missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False

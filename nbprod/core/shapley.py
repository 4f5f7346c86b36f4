"""Shapley contributions of a model's inputs to one output: the methods behind
:mod:`nbprod.core.explain`.

The explained function ``g`` is the model's raw output for one class (classifiers) or its
prediction (regressors), on the model inputs ``F`` (what the feature function returns). Every
method returns, per explained row, one contribution per model input and a base value such that
``base + sum(contributions) == g(row)``:

- ``linear``: the final estimator is linear in the preprocessed matrix ``Z``
  (``coef_ @ z + intercept_``): ``phi = coef * (z - mean of z over the background)``, exact
  interventional Shapley values, no library needed;
- ``tree``: SHAP's ``TreeExplainer`` (path-dependent, exact, milliseconds a row) on ``Z``; the
  base value is the trees' own expected output over their training data;
- ``exact``: model-agnostic, every coalition of the model inputs (``2**M`` of them) against
  background rows;
- ``sampling``: model-agnostic, antithetic random permutations of the model inputs; additive by
  construction (each permutation telescopes from the background mean to ``g(row)``).

``linear`` and ``tree`` work on ``Z``, whose columns are folded back into the model input they
come from (:func:`sources`): the one-hot columns of ``plan`` add up to one contribution of
``plan``. A column of ``Z`` that moves with two model inputs cannot be folded; the model-agnostic
methods then explain the model inputs directly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

TREES = ("DecisionTree", "ExtraTree", "RandomForest", "ExtraTrees", "GradientBoosting",
         "HistGradientBoosting")
LOG_LOSS_MODELS = ("LogisticRegression", "LogisticRegressionCV", "GradientBoostingClassifier",
                   "HistGradientBoostingClassifier", "SGDClassifier")
MAX_EXACT = 8  # model inputs up to which the model-agnostic method enumerates every coalition


# -- the explained output -----------------------------------------------------------------------
def final_estimator(model: Any) -> Any:
    return model[-1] if hasattr(model, "steps") else model


def scale_of(model: Any, task: str) -> str:
    """The scale of ``g``: ``raw output`` (regressors), ``log-odds`` (binary models fitted on the
    log loss), ``logit`` (their multiclass softmax inputs), ``decision function`` (other
    margins) or ``probability`` (classifiers without a decision function)."""
    if task != "classification":
        return "raw output"
    if not hasattr(model, "decision_function"):
        return "probability"
    est = final_estimator(model)
    name = type(est).__name__
    log_loss = getattr(est, "loss", "log_loss") in ("log_loss", "log")
    if name in LOG_LOSS_MODELS and log_loss:
        return "log-odds" if len(est.classes_) == 2 else "logit"
    return "decision function"


def explained_classes(model: Any, F: Any, task: str) -> np.ndarray | None:
    """Per row, the index in ``classes_`` of the class explained: the positive class
    (``classes_[1]``) of a binary model, the predicted class of a multiclass one."""
    if task != "classification":
        return None
    if len(model.classes_) == 2:
        return np.ones(len(F), dtype=int)
    return np.asarray(model.predict_proba(F)).argmax(axis=1)


def output(model: Any, F: Any, task: str, classes: np.ndarray | None) -> np.ndarray:
    """``g(F)``: the raw output of the class ``classes[i]`` for row ``i``."""
    n = len(F)
    if task != "classification":
        return np.asarray(model.predict(F), dtype="float64").reshape(n)
    assert classes is not None
    if hasattr(model, "decision_function"):
        d = np.asarray(model.decision_function(F), dtype="float64")
        if d.ndim == 1:  # binary: the margin of classes_[1], the class explained
            return d
        return d[np.arange(n), classes]
    p = np.asarray(model.predict_proba(F), dtype="float64")
    return p[np.arange(n), classes]


# -- folding the preprocessing's columns back into the model inputs ----------------------------
def dense(Z: Any) -> np.ndarray:
    if hasattr(Z, "toarray"):
        Z = Z.toarray()
    return np.asarray(Z, dtype="float64")


PROBE_ROWS = 100_000  # rows transformed at once while probing which input a column comes from


def sources(pre: Any, F: pd.DataFrame, to_model: Any, *, shuffles: int = 3,
            seed: int = 0) -> np.ndarray | None:
    """For each column of ``pre.transform(F)``, the position of the model input it comes from
    (-1: constant on these rows), found by shuffling one model input at a time and watching
    which columns move; None when a column moves with two model inputs (it cannot be folded).

    The shuffled copies are stacked and transformed together, up to :data:`PROBE_ROWS` rows a
    call (a preprocessing pipeline costs milliseconds a call whatever its rows)."""
    base = dense(pre.transform(to_model(F)))
    rng = np.random.default_rng(seed)
    n = len(F)
    probes = [(j, F[col].iloc[rng.permutation(n)].reset_index(drop=True))  # dtype kept
              for j, col in enumerate(F.columns) for _ in range(shuffles)]
    moved = np.zeros((F.shape[1], base.shape[1]), dtype=bool)
    per_call = max(1, PROBE_ROWS // max(n, 1))
    for start in range(0, len(probes), per_call):
        group = probes[start:start + per_call]
        copies = []
        for j, values in group:
            shuffled = F.copy()
            shuffled[F.columns[j]] = values
            copies.append(shuffled)
        Z = dense(pre.transform(to_model(pd.concat(copies, ignore_index=True))))
        for k, (j, _) in enumerate(group):
            moved[j] |= ~np.all(np.isclose(base, Z[k * n:(k + 1) * n], equal_nan=True), axis=0)
    owner = np.full(base.shape[1], -1)
    for j in range(F.shape[1]):
        if (owner[moved[j]] >= 0).any():
            return None
        owner[moved[j]] = j
    return owner


def fold(phi_z: np.ndarray, owner: np.ndarray, m: int) -> np.ndarray | None:
    """Contributions of ``Z``'s columns summed per model input; None when a column of no model
    input (constant on the probed rows) carries a contribution."""
    out = np.zeros((phi_z.shape[0], m))
    for k, j in enumerate(owner):
        if j >= 0:
            out[:, j] += phi_z[:, k]
        elif np.abs(phi_z[:, k]).max(initial=0.0) > 1e-12:
            return None
    return out


# -- the methods ---------------------------------------------------------------------------------
def linear(est: Any, Z: np.ndarray, Zbg: np.ndarray, classes: np.ndarray | None,
           task: str, given: Any = None) -> np.ndarray | None:
    """Exact contributions of a model linear in ``Z``; None when ``est`` is not (its output
    on ``given``, ``Z`` as the estimator takes it, differs from ``Z @ coef_.T + intercept_``)."""
    coef = getattr(est, "coef_", None)
    intercept = getattr(est, "intercept_", 0.0)
    if coef is None or getattr(coef, "ndim", 0) not in (1, 2):
        return None
    coef = np.atleast_2d(np.asarray(coef, dtype="float64"))
    if coef.shape[1] != Z.shape[1]:
        return None
    given = Z if given is None else given
    raw = est.decision_function(given) if task == "classification" else est.predict(given)
    raw = np.asarray(raw, dtype="float64").reshape(len(Z), -1)
    mine = Z @ coef.T + np.asarray(intercept, dtype="float64")
    if raw.shape != mine.shape or not np.allclose(raw, mine, rtol=1e-9, atol=1e-9):
        return None
    w = coef[classes] if coef.shape[0] > 1 and classes is not None else np.repeat(coef, len(Z), axis=0)
    return w * (Z - Zbg.mean(axis=0))


def is_tree(est: Any) -> bool:
    return type(est).__module__.startswith("sklearn.") and type(est).__name__.startswith(TREES)


def tree(est: Any, Z: np.ndarray, classes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """SHAP's path-dependent TreeExplainer on ``Z``: contributions and base values."""
    import shap

    explainer = shap.TreeExplainer(est, feature_perturbation="tree_path_dependent",
                                   model_output="raw")
    values = np.asarray(explainer.shap_values(Z, check_additivity=False), dtype="float64")
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype="float64"))
    n = len(Z)
    if values.ndim == 3:  # (rows, columns, outputs)
        if values.shape[2] == 1:
            return values[:, :, 0], np.full(n, expected[0])
        assert classes is not None
        return values[np.arange(n), :, classes], expected[classes]
    return values, np.full(n, expected[0])  # one output: a regressor, or a binary margin


def agnostic(model: Any, F: pd.DataFrame, F_bg: pd.DataFrame, classes: np.ndarray | None,
             task: str, *, method: str, permutations: int, seed: int,
             to_model: Any) -> tuple[np.ndarray, np.ndarray]:
    """Model-agnostic Shapley values of the model inputs: the value of a coalition ``S`` is the
    mean of ``g`` over the background rows with the columns of ``S`` set to the row's values.

    ``exact`` enumerates every coalition; ``sampling`` walks ``permutations`` random orders
    (antithetic pairs). ``to_model`` turns a frame back into what the model takes."""
    m = F.shape[1]
    phi = np.zeros((len(F), m))
    base = np.zeros(len(F))
    rng = np.random.default_rng(seed)
    if method == "exact":
        masks = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1).astype(bool)
        size = masks.sum(axis=1)
        weight = np.array([math.factorial(k) * math.factorial(m - k - 1) / math.factorial(m)
                           if k < m else 0.0 for k in range(m + 1)])
    for i in range(len(F)):
        if method != "exact":
            orders: list[np.ndarray] = []
            for _ in range(max(1, permutations // 2)):
                order = rng.permutation(m)
                orders += [order, order[::-1]]
            steps = [np.zeros(m, dtype=bool)]
            for order in orders:
                mask = np.zeros(m, dtype=bool)
                for j in order[:-1]:  # the empty and the full coalitions are shared
                    mask = mask.copy()
                    mask[j] = True
                    steps.append(mask)
            steps.append(np.ones(m, dtype=bool))
            masks = np.array(steps)
        value = _coalition_values(model, F.iloc[[i]], F_bg, masks, task,
                                  None if classes is None else classes[i], to_model)
        base[i] = value[0]
        if method == "exact":
            index = masks @ (1 << np.arange(m))
            for j in range(m):
                without = ~masks[:, j]
                gain = value[index[without] | (1 << j)] - value[without]
                phi[i, j] = (weight[size[without]] * gain).sum()
        else:
            inner = value[1:-1].reshape(len(orders), m - 1)
            for r, order in enumerate(orders):
                chain = np.concatenate([[value[0]], inner[r], [value[-1]]])
                phi[i, order] += np.diff(chain)
            phi[i] /= len(orders)
    return phi, base


def _coalition_values(model: Any, x: pd.DataFrame, F_bg: pd.DataFrame, masks: np.ndarray,
                      task: str, cls: int | None, to_model: Any) -> np.ndarray:
    """The value of each coalition (a row of ``masks``) for the row ``x``."""
    c, b = len(masks), len(F_bg)
    big = pd.concat([F_bg] * c, ignore_index=True)
    chosen = np.repeat(masks, b, axis=0)
    for j, col in enumerate(F_bg.columns):
        take = chosen[:, j]
        if take.any():
            big[col] = big[col].mask(take, x[col].iloc[0])
    classes = None if cls is None else np.full(len(big), cls)
    g = output(model, to_model(big), task, classes)
    return g.reshape(c, b).mean(axis=1)

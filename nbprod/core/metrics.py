"""Metric names: scikit-learn scorer names plus plain aliases, shown in natural units.

A :class:`Metric` wraps a scikit-learn scorer. ``score`` is in the scorer's "bigger is better"
space (losses are negated, as scikit-learn does); ``value`` is in natural units (an MAE is
positive). Gaps and gains are computed in the bigger-is-better space so losses need no special
cases, and are reported in natural units.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from ..exceptions import NbprodUsageError

ALIASES = {
    "mae": "neg_mean_absolute_error",
    "mse": "neg_mean_squared_error",
    "rmse": "neg_root_mean_squared_error",
    "logloss": "neg_log_loss",
    "log_loss": "neg_log_loss",
    "auc": "roc_auc",
    "medae": "neg_median_absolute_error",
    "mape": "neg_mean_absolute_percentage_error",
}
LABELS = {
    "roc_auc": "ROC AUC",
    "roc_auc_ovr": "ROC AUC (one-vs-rest)",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "neg_mean_absolute_error": "MAE",
    "neg_mean_squared_error": "MSE",
    "neg_root_mean_squared_error": "RMSE",
    "neg_log_loss": "log loss",
    "r2": "R²",
}


@dataclass(frozen=True)
class Metric:
    name: str  # as the user typed it
    scorer_name: str

    @property
    def scorer(self) -> Any:
        from sklearn.metrics import get_scorer

        return get_scorer(self.scorer_name)

    @property
    def greater_is_better(self) -> bool:
        return not self.scorer_name.startswith("neg_")

    @property
    def label(self) -> str:
        return LABELS.get(self.scorer_name, self.name)

    def score(self, model: Any, X: Any, y: Any) -> float:
        """Bigger-is-better score (scikit-learn's convention)."""
        return float(self.scorer(model, X, y))

    def natural(self, score: float) -> float:
        """A bigger-is-better score in natural units (losses positive)."""
        return score if self.greater_is_better else -score

    def to_score(self, natural: float) -> float:
        return natural if self.greater_is_better else -natural


REGRESSION_ONLY = ("neg_mean", "neg_root_mean", "neg_median", "r2", "explained_variance",
                   "neg_max_error", "max_error")


def resolve(name: str, *, flag: str = "--metric", where: str = "", task: str | None = None) -> Metric:
    """A :class:`Metric` for a scorer name or alias; a clear usage error otherwise."""
    from sklearn.metrics import get_scorer_names

    key = name.strip().lower()
    scorer_name = ALIASES.get(key, key)
    names = set(get_scorer_names())
    if scorer_name not in names:
        near = difflib.get_close_matches(key, sorted(names | set(ALIASES)), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise NbprodUsageError(
            f"The '{flag}' option{where} expects a scikit-learn scorer name (roc_auc, accuracy, "
            f"f1, r2, neg_mean_absolute_error, ...) or an alias (mae, rmse, logloss). "
            f"Got {name!r}.{hint}"
        )
    metric = Metric(name=name, scorer_name=scorer_name)
    if task is not None:
        from sklearn.metrics import get_scorer

        method = getattr(get_scorer(scorer_name), "_response_method", "predict")
        methods = method if isinstance(method, tuple | list) else (method,)
        needs_classifier = any(m in ("predict_proba", "decision_function") for m in methods)
        if needs_classifier and task == "regression":
            raise NbprodUsageError(
                f"The '{flag}' option{where} got {name!r}, a classification metric, but the "
                "model is a regressor. Use r2, mae, rmse, ..."
            )
        if task == "classification" and scorer_name.startswith(REGRESSION_ONLY):
            raise NbprodUsageError(
                f"The '{flag}' option{where} got {name!r}, a regression metric, but the model "
                "is a classifier. Use roc_auc, accuracy, f1, logloss, ..."
            )
    return metric


def default_metric(task: str, n_classes: int | None = None) -> Metric:
    if task == "regression":
        return resolve("r2")
    return resolve("roc_auc" if n_classes == 2 else "roc_auc_ovr")

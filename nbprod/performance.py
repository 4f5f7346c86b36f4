"""Model performance on a scored batch once its labels are known.

Labels are joined on the id column declared at snapshot time, or by row order when no id was
declared. Metrics come from scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .dataio import read_frame
from .exceptions import InputError


def align_labels(art, preds: pd.DataFrame, labels: pd.DataFrame) -> pd.Series:
    """The label of each scored row (NaN where a row has no label)."""
    target = art.target
    if target not in labels.columns:
        raise InputError(f"labels file has no target column {target!r}.")
    if art.id_column:
        if art.id_column not in labels.columns:
            raise InputError(
                f"labels file has no id column {art.id_column!r} to join on."
            )
        if labels[art.id_column].duplicated().any():
            dup = labels.loc[labels[art.id_column].duplicated(), art.id_column].iloc[0]
            raise InputError(f"labels file repeats id {dup!r}; ids must be unique.")
        mapping = pd.Series(labels[target].to_numpy(), index=labels[art.id_column].to_numpy())
        ids = preds[art.id_column]
        return pd.Series(mapping.reindex(ids.to_numpy()).to_numpy(), index=preds.index)
    if len(labels) != len(preds):
        raise InputError(
            f"labels file has {len(labels)} rows for {len(preds)} scored rows; without an id "
            "column labels are matched by row order, so the counts must be equal."
        )
    return pd.Series(labels[target].to_numpy(), index=preds.index)


def evaluate_labels(art, preds: pd.DataFrame, inputs: pd.DataFrame, labels_path: str) -> dict[str, Any]:
    labels = read_frame(labels_path, what="labels")
    y = align_labels(art, preds, labels)
    known = y.notna().to_numpy()
    out: dict[str, Any] = {"labelled_rows": int(known.sum()), "rows": len(preds)}
    if not known.any():
        out["metrics"] = {}
        out["note"] = "no scored row has a label"
        return out
    out["metrics"] = metrics(art.task, y[known], preds.loc[known], art.classes)
    return out


def metrics(task: str, y_true: pd.Series, preds: pd.DataFrame, classes: list[Any] | None) -> dict[str, float]:
    from sklearn import metrics as m

    res: dict[str, float] = {}
    if task == "regression":
        yt = pd.to_numeric(y_true).to_numpy(dtype="float64")
        yp = preds["prediction"].to_numpy(dtype="float64")
        res["mae"] = float(m.mean_absolute_error(yt, yp))
        res["rmse"] = float(np.sqrt(m.mean_squared_error(yt, yp)))
        if len(yt) > 1:
            res["r2"] = float(m.r2_score(yt, yp))
        return res
    names = [str(c) for c in classes or []]
    yt = y_true.astype("object").map(_label_str).to_numpy()
    yp = preds["prediction"].astype("object").map(_label_str).to_numpy()
    res["accuracy"] = float(m.accuracy_score(yt, yp))
    res["balanced_accuracy"] = float(m.balanced_accuracy_score(yt, yp))
    res["f1_macro"] = float(m.f1_score(yt, yp, average="macro", labels=names, zero_division=0))
    proba = preds[[f"proba_{c}" for c in names]].to_numpy(dtype="float64")
    if set(yt) <= set(names):
        res["log_loss"] = float(m.log_loss(yt, proba, labels=names))
        if len(set(yt)) > 1:
            if len(names) == 2:
                res["roc_auc"] = float(m.roc_auc_score(yt == names[1], proba[:, 1]))
            else:
                res["roc_auc"] = float(m.roc_auc_score(yt, proba, multi_class="ovr", labels=names))
    return res


def _label_str(v: Any) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)

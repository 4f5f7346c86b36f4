"""Partial dependence of the model's output on its most important inputs, for the packaging
report.

At packaging, the :data:`TOP` model inputs the model leans on most (the largest mean absolute
contributions of the explanation reference, see :mod:`nbprod.monitoring.explanations`) get their
partial dependence from :func:`sklearn.inspection.partial_dependence` on up to :data:`ROWS`
validation rows: the model's average output when that input is set to each grid value for every
row. It is stored in ``reference.json`` (key ``partial_dependence``) and drawn in the packaging
result (:func:`html`) as small line charts (inline SVG: no plotting library, no script).

The response is the predicted probability of the explained class (classifiers: the positive
class of a binary model, else the first class) or the prediction (regressors). Model inputs
that carry personal data are never drawn: their grid would be personal values.
"""

from __future__ import annotations

import html as _html
from typing import Any

import numpy as np
import pandas as pd

from ..core.results import number

TOP = 3
ROWS = 500
GRID = 20
MAX_CATEGORIES = 30


def compute(model: Any, task: str, features: Any, ranked: list[str], *,
            hidden: set[str]) -> dict[str, Any]:
    """Partial dependence of the first :data:`TOP` of ``ranked`` (model inputs, most important
    first) over ``features`` (the model inputs of the validation rows). A model input it cannot
    be computed for is listed with the reason."""
    from sklearn.inspection import partial_dependence

    F = features if isinstance(features, pd.DataFrame) else pd.DataFrame(features)
    if len(F) > ROWS:
        F = F.iloc[np.sort(np.random.default_rng(0).choice(len(F), ROWS, replace=False))]
    if not isinstance(features, pd.DataFrame):  # the model takes arrays: name columns by position
        F.columns = [f"x{j}" for j in range(F.shape[1])]
    out: dict[str, Any] = {"rows": len(F), "features": {}, "skipped": {}}
    target = None
    if task == "classification":
        classes = list(model.classes_)
        target = classes[1] if len(classes) == 2 else classes[0]
        out["response"] = f"probability of class {target}"
    else:
        out["response"] = "prediction"
    for name in [n for n in ranked if n not in hidden][:TOP]:
        column = F[name]
        categorical = not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
        if categorical and column.nunique() > MAX_CATEGORIES:
            out["skipped"][name] = f"more than {MAX_CATEGORIES} categories"
            continue
        X = F if isinstance(features, pd.DataFrame) else F.to_numpy()
        if not categorical and pd.api.types.is_integer_dtype(column) and isinstance(X, pd.DataFrame):
            X = X.assign(**{name: column.astype("float64")})  # sklearn refuses integer columns
        where = name if isinstance(features, pd.DataFrame) else list(F.columns).index(name)
        try:
            result = partial_dependence(
                model, X, [where], kind="average", grid_resolution=GRID,
                categorical_features=[where] if categorical else None,
                response_method="predict_proba" if task == "classification" and
                hasattr(model, "predict_proba") else "auto")
        except Exception as exc:  # a model or column partial_dependence cannot take
            out["skipped"][name] = f"{type(exc).__name__}: {str(exc)[:160]}"
            continue
        average = np.asarray(result["average"], dtype="float64")
        row = 0
        if task == "classification" and average.shape[0] > 1:
            row = list(model.classes_).index(target)
        grid = result["grid_values"][0]
        out["features"][name] = {
            "kind": "categorical" if categorical else "numeric",
            "grid": [v.item() if hasattr(v, "item") else v for v in grid],
            "average": [float(v) for v in average[row]],
        }
    return out


def html(pd_ref: dict[str, Any] | None) -> str:
    """The stored partial dependence as small inline charts with their text; empty when none."""
    if not pd_ref or not pd_ref.get("features"):
        return ""
    charts = []
    for name, entry in pd_ref["features"].items():
        ys = entry["average"]
        lo, hi = min(ys), max(ys)
        charts.append(
            f"<figure style='display:inline-block;margin:4px 12px 4px 0'>{_svg(entry)}"
            f"<figcaption><code>{_html.escape(name)}</code>: {number(lo)} to {number(hi)}</figcaption></figure>")
    return (f"<p><b>Partial dependence</b> (the model's average {_html.escape(pd_ref['response'])} "
            f"as one input varies, {pd_ref['rows']} validation rows; docs/explain.md)</p>"
            + "".join(charts))


def _svg(entry: dict[str, Any], width: int = 180, height: int = 70) -> str:
    ys = np.asarray(entry["average"], dtype="float64")
    n = len(ys)
    span = float(ys.max() - ys.min()) or 1.0
    xs = np.linspace(6, width - 6, n) if n > 1 else np.array([width / 2])
    yy = height - 6 - (ys - ys.min()) / span * (height - 12)
    if entry["kind"] == "categorical":
        w = max(2.0, (width - 12) / max(n, 1) - 4)
        marks = "".join(f"<rect x='{x - w / 2:.1f}' y='{y:.1f}' width='{w:.1f}' height='{height - 6 - y + 1:.1f}' "
                        f"fill='#0969da'><title>{_html.escape(str(g))}: {number(v)}</title></rect>"
                        for x, y, g, v in zip(xs, yy, entry["grid"], ys, strict=True))
    else:
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, yy, strict=True))
        marks = f"<polyline points='{points}' fill='none' stroke='#0969da' stroke-width='2'/>"
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"role='img'><rect width='100%' height='100%' fill='#f6f8fa'/>{marks}</svg>")

"""Explanation drift: how much the model leans on each input in a batch, against packaging.

At packaging, the reference (``reference.json``, key ``explanations``) records the mean absolute
contribution of every model input over validation rows (:func:`reference`). A scoring run
explains a sample of its scored rows the same way (same background, same method) and compares
(:func:`explanation_drift`): a model input whose share of the total mean absolute contribution
grew or shrank by :data:`RATIO` or more, and that holds at least :data:`MIN_SHARE` of it on one
side, is named in ``shifted`` ("the model now leans on ``table`` 2.1x as much as at
packaging"). Column drift alone can miss this: a column may keep its distribution while the
rows where it matters become common.

The batch is explained by the reference's method when it still applies (SHAP may be missing
where batches are scored: then by another, named in ``method``). The figure is a warning sign,
not a check: it changes no status. It appears in the summary as
``drift.explanations``; artifacts packaged without the reference get ``None``.

It costs every scoring run, so it is **budgeted** (:func:`plan`): the run option
``explain_drift`` is ``"auto"`` (default: the larger of :data:`BUDGET_S` seconds and
:data:`SHARE` of the run's own time so far, estimated before any work from :data:`PER_ROW_S` and
:data:`FIXED_S`, or :data:`STARTED_S` when the method's library is already imported in the
process), a number of seconds (an absolute budget), ``"full"`` (always, as many rows as the method
allows) or ``"off"``. Within the budget the figure is computed on every sampled row (``status``
``computed``), on fewer rows (``sampled``, at least :data:`MIN_ROWS`) or not at all (``skipped``,
with ``reason``); the linear closed form always fits, the tree method (which loads SHAP) fits a
run of some tens of seconds, or a short one once SHAP is loaded.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd

ROWS = 200  # rows explained at packaging and per batch by the fast methods (linear, tree)
SLOW_ROWS = 20  # rows explained by the model-agnostic methods (exact, sampling)
RATIO = 2.0
MIN_SHARE = 0.05
FAST = ("linear", "tree")
MODES = ("auto", "full", "off")
BUDGET_S = 1.0  # the floor of the auto budget of explanation drift, seconds a run
MIN_ROWS = 20  # fewer rows than this make no figure worth comparing
# the estimated cost of explaining one row, and once a run, per method (measured on the kinds
# pipeline, 6 model inputs, 2 cores; the tree method's by bench/explain_costs.py, 8 inputs;
# docs/explain.md): what the budget is judged on
PER_ROW_S = {"linear": 0.002, "tree": 0.01, "exact": 0.1, "sampling": 0.2}
FIXED_S = {"linear": 0.3, "tree": 2.3, "exact": 0.3, "sampling": 0.3}  # the background rows
# scored and folded, and for the tree method SHAP imported (about 1.8 s), once a figure
# the tree method's start once SHAP is imported in the process (explanation drift ran before the
# report's table, or an earlier run in the same kernel): the background scored and folded and the
# TreeExplainer built (measured 0.26 to 0.66 s)
STARTED_S = {"tree": 0.5}
SHARE = 0.1  # auto: the budget is the larger of BUDGET_S and this share of the run's time so far
LIBRARY = {"tree": "shap"}  # the module whose import a method's fixed cost includes


def check_mode(value: Any) -> str | float:
    """The ``explain_drift`` run option: ``auto``, ``full``, ``off`` or a budget in seconds."""
    from ..exceptions import NbprodUsageError

    if value is None:
        return "auto"
    if isinstance(value, str) and value.strip().lower() in MODES:
        return value.strip().lower()
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if isinstance(value, bool) or not np.isfinite(seconds) or seconds <= 0:
        raise NbprodUsageError(
            "explain_drift must be auto, full, off or a budget in seconds (a positive number). "
            f"Got {str(value)[:40]!r}.")
    return seconds


def plan(method: str, rows: int, mode: str | float = "auto", *, min_rows: int = MIN_ROWS,
         what: str = "explanation drift", elapsed_s: float | None = None,
         loaded: bool | None = None) -> dict[str, Any]:
    """How many of ``rows`` sampled rows explanation drift explains under ``mode``, before any
    work: ``status`` (computed | sampled | skipped | off), ``rows``, ``budget_s``, ``basis`` (how
    the budget was set), ``estimated_s`` and, unless computed in full, ``reason``.
    ``min_rows``: fewer rows than this are not worth explaining; ``what``: the figure named in
    the reason; ``elapsed_s``: the run's wall time so far (``auto`` gives the larger of
    :data:`BUDGET_S` and :data:`SHARE` of it); ``loaded``: whether the method's library is
    already imported in this process (default: look in ``sys.modules``)."""
    method = method if method in PER_ROW_S else "exact"
    wanted = min(rows, ROWS if method in FAST else SLOW_ROWS)
    if mode == "off":
        return {"status": "off", "rows": 0, "budget_s": None, "estimated_s": 0.0,
                "reason": f"{what} was turned off for this run (explain_drift off)"}
    fixed, started = start_cost(method, loaded)
    per_row = PER_ROW_S[method]
    full = round(fixed + per_row * wanted, 3)
    if mode == "full":
        return {"status": "computed", "rows": wanted, "budget_s": None, "estimated_s": full}
    budget, basis = budget_of(mode, elapsed_s)
    fits = int((budget - fixed) / per_row + 1e-9) if budget > fixed else 0
    why = {"tree": " (SHAP already loaded)" if started else " (loading SHAP)"}.get(method, "")
    cost = (f"the {method} method costs about {fixed:g} s to start{why} + "
            f"{per_row * 1000:g} ms a row")
    ask = "; ask for it with explain_drift full (nbprod score --explain-drift full) or a larger budget"
    head = {"budget_s": budget, "basis": basis}
    if fits >= wanted:
        return {"status": "computed", "rows": wanted, **head, "estimated_s": full}
    if fits >= min_rows:
        return {"status": "sampled", "rows": fits, **head,
                "estimated_s": round(fixed + per_row * fits, 3),
                "reason": f"{cost}, so {fits} of {wanted} rows fit the {budget:g} s budget "
                          f"({basis}){ask}"}
    return {"status": "skipped", "rows": 0, **head, "estimated_s": full,
            "reason": f"{cost} (about {full:g} s for {wanted} rows), over the {budget:g} s budget "
                      f"of {what} ({basis}){ask}"}


def start_cost(method: str, loaded: bool | None = None) -> tuple[float, bool]:
    """The estimated seconds ``method`` takes to start in this process, and whether its library
    (SHAP for ``tree``) is already imported, so that only :data:`STARTED_S` is left to pay.
    ``loaded``: given, or looked up in ``sys.modules``."""
    library = LIBRARY.get(method)
    if library is None:
        return FIXED_S.get(method, 0.0), False
    started = (library in sys.modules) if loaded is None else bool(loaded)
    return (STARTED_S[method] if started else FIXED_S[method]), started


def budget_of(mode: str | float, elapsed_s: float | None = None) -> tuple[float, str]:
    """The budget in seconds of ``mode`` (``auto`` or a number) and how it was set: ``auto`` is the
    larger of :data:`BUDGET_S` and :data:`SHARE` of ``elapsed_s``, the run's time so far."""
    if mode != "auto":
        return float(mode), f"explain_drift {float(mode):g} s"
    share = f"{SHARE * 100:g}%"
    if elapsed_s is None or not np.isfinite(elapsed_s) or elapsed_s < 0:
        return BUDGET_S, f"the {BUDGET_S:g} s default"
    scaled = round(SHARE * float(elapsed_s), 2)
    if scaled > BUDGET_S:
        return scaled, f"{share} of {float(elapsed_s):.1f} s"
    return BUDGET_S, f"the {BUDGET_S:g} s floor: {share} of {float(elapsed_s):.1f} s is less"


def _explain(art_or_scorer: Any, rows: pd.DataFrame, *, background: pd.DataFrame | None = None,
             method: str = "auto", carried: Any = ()) -> Any:
    """Explain ``rows`` (at most :data:`SLOW_ROWS` first, more when the method is fast)."""
    from ..core.explain import explain
    from ..exceptions import ExplainWarning

    def run(part: pd.DataFrame, how: str) -> Any:
        with warnings.catch_warnings(), one_thread(how):  # the note is kept in the result
            warnings.simplefilter("ignore", ExplainWarning)
            if background is None:
                return art_or_scorer.explain(part, method=how)
            return explain(art_or_scorer, part, background=background, method=how, carried=carried)

    from ..exceptions import NbprodUsageError

    if method in FAST:  # known fast (the reference's method): no trial on a few rows
        try:
            return run(rows.iloc[:ROWS], method)
        except NbprodUsageError:  # not here (e.g. SHAP missing where the batch is scored)
            method = "auto"
    first = run(rows.iloc[:SLOW_ROWS], method)
    if first.method in FAST and len(rows) > SLOW_ROWS:
        return run(rows.iloc[:ROWS], first.method)
    return first


def one_thread(method: str = "auto") -> Any:
    """A context in which the model predicts in one thread. Explaining scores a few hundred rows
    several times; OpenMP's threads (histogram gradient boosting predicts each iteration in
    parallel) cost more than they give there, and many times more on a busy machine (measured
    in docs/explain.md). The ``linear`` method's few matrix products are left alone (and pay
    nothing); the native thread pools are found once per process."""
    import contextlib

    if method == "linear":
        return contextlib.nullcontext()
    global _POOLS
    if _POOLS is None:
        from threadpoolctl import ThreadpoolController

        _POOLS = ThreadpoolController()  # about 15 ms: it lists the loaded native libraries
    return _POOLS.limit(limits=1)


_POOLS: Any = None


def sample(df: pd.DataFrame, n: int = ROWS, seed: int = 0) -> pd.DataFrame:
    if len(df) <= n:
        return df
    return df.iloc[np.sort(np.random.default_rng(seed).choice(len(df), n, replace=False))]


def reference(scorer: Any, rows: pd.DataFrame, background: pd.DataFrame, *, snapshot: str,
              carried: Any = ()) -> dict[str, Any]:
    """The explanation reference recorded at packaging (or why there is none)."""
    from ..exceptions import NbprodError

    try:
        result = _explain(scorer, sample(rows), background=background, carried=carried)
    except NbprodError as exc:
        return {"snapshot": snapshot, "error": str(exc)[:300]}
    return {"snapshot": snapshot, "rows": result.rows, "scale": result.scale,
            "method": result.method, "mean_abs": result.mean_abs(), "notes": result.notes}


def explanation_drift(art: Any, scored: Any, mode: str | float = "auto", *,
                      elapsed_s: float | None = None) -> dict[str, Any] | None:
    """The batch's mean absolute contributions against the reference; None when the artifact has
    no explanation reference. ``scored`` is the scored batch (its conformed inputs); ``mode`` the
    run option (:func:`check_mode`), judged by :func:`plan` (with ``elapsed_s``, the run's time
    so far) and reported under ``budget``."""
    from ..exceptions import NbprodError

    ref = (art.reference or {}).get("explanations")
    inputs = getattr(scored, "inputs", None)
    if not ref or "mean_abs" not in ref or inputs is None or len(inputs) == 0:
        return None
    method = ref.get("method", "auto")
    budget = plan(method, min(len(inputs), ROWS), mode, elapsed_s=elapsed_s)
    if budget["status"] in ("skipped", "off"):
        return {"rows": 0, "reference_rows": ref.get("rows"), "scale": ref.get("scale"),
                "method": method, "features": {}, "shifted": [], "budget": budget,
                "message": f"explanation drift {budget['status']}: {budget['reason']}"}
    rows = sample(inputs.reset_index(drop=True), budget["rows"])  # drawn from the whole batch
    if art.id_column:  # the conformed inputs hold no id: any unique one serves
        rows = rows.assign(**{art.id_column: np.arange(len(rows))})
    try:
        result = _explain(art, rows, method=method)
    except NbprodError as exc:
        return {"error": str(exc)[:300], "budget": budget}
    out = compare(ref, result.mean_abs(), rows=result.rows, method=result.method)
    out["budget"] = budget
    if budget["status"] == "sampled":
        out["message"] += f" (sampled: {budget['rows']} rows; {budget['reason']})"
    return out


def compare(ref: dict[str, Any], batch: dict[str, float], *, rows: int,
            method: str) -> dict[str, Any]:
    """Per model input: the mean absolute contribution and its share of the total, at packaging
    and in the batch, and their ratio; ``shifted`` names the inputs the model leans on far more
    or far less than it did."""
    before = {k: float(v) for k, v in ref["mean_abs"].items()}
    total_before = sum(before.values()) or 1.0
    total_now = sum(batch.values()) or 1.0
    features: dict[str, Any] = {}
    shifted: list[str] = []
    for name in [*before, *(k for k in batch if k not in before)]:  # not a set: same order anywhere
        a, b = before.get(name, 0.0), batch.get(name, 0.0)
        sa, sb = a / total_before, b / total_now
        ratio = (sb / sa) if sa > 0 else (float("inf") if sb > 0 else 1.0)
        features[name] = {"reference": a, "batch": b, "reference_share": sa, "batch_share": sb,
                          "ratio": ratio}
        if max(sa, sb) >= MIN_SHARE and (ratio >= RATIO or ratio <= 1 / RATIO):
            shifted.append(name)
    shifted.sort(key=lambda n: -abs(np.log(max(features[n]["ratio"], 1e-12))))
    from ..core.results import number
    from ..core.text import one_line

    words = [f"{one_line(n)} {number(features[n]['ratio'])}x" if np.isfinite(features[n]["ratio"])
             else f"{one_line(n)} (new)" for n in shifted]
    return {"rows": rows, "reference_rows": ref.get("rows"), "scale": ref.get("scale"),
            "method": method, "features": features, "shifted": shifted,
            "message": ("the model leans on its inputs as at packaging" if not shifted else
                        "the model now leans differently on: " + ", ".join(words)
                        + " (share of the mean absolute contribution, batch / packaging)")}

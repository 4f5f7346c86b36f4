"""What the tree explanation method costs a scoring run: the numbers behind
``nbprod.monitoring.explanations.FIXED_S``, ``STARTED_S`` and ``PER_ROW_S`` for ``tree``.

Measures, on this machine as loaded as it is (the load average is printed):

  import     a fresh interpreter that already imported numpy, pandas and scikit-learn (as a
             scoring run has) importing SHAP; ``--repeat`` fresh processes
  start      with SHAP imported: explaining one row through nbprod's own path
             (``nbprod.core.explain.explain``, method ``tree``, in one thread as a scoring run
             does, and with the libraries' own threads): the 100 background rows scored and
             folded, the TreeExplainer built, one row explained
  explainer  SHAP's TreeExplainer built alone (part of start)
  per row    (explaining 200 rows - explaining 1 row) / 199

for a histogram gradient boosting classifier (100 iterations) and a random forest (100 trees),
each a scikit-learn Pipeline over 8 model inputs (6 numbers scaled, 2 text columns one-hot
encoded), fitted on 2,000 generated rows. Prints medians of ``--repeat`` repetitions.

    .venv/bin/python bench/explain_costs.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd

NUMBERS = [f"x{i}" for i in range(6)]
TEXTS = ["c0", "c1"]


def data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: rng.normal(size=n) for c in NUMBERS})
    for c in TEXTS:
        df[c] = pd.array(rng.choice(["a", "b", "c", "d"], size=n), dtype="str")
    df.insert(0, "row_id", [f"r{seed}-{i}" for i in range(n)])
    df["y"] = ((df["x0"] + df["x1"] * df["x2"] + (df["c0"] == "a") + rng.normal(0, 0.5, n))
               > 0.5).astype(int)
    return df


def features(df):
    return df[["x0", "x1", "x2", "x3", "x4", "x5", "c0", "c1"]]


def scorer(estimator):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import nbprod

    train = data(2000, 0)
    s = nbprod.Session("costs")
    s.snapshot(train, role="train", target="y", id="row_id")
    s.features(features)
    model = make_pipeline(ColumnTransformer([("num", StandardScaler(), NUMBERS),
                                             ("txt", OneHotEncoder(), TEXTS)]), estimator)
    model.fit(features(train), train["y"])
    s.model(model)
    return s.live_scorer(), model, train


def import_seconds() -> float:
    code = ("import numpy, pandas, sklearn.ensemble, time; t = time.perf_counter(); import shap; "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(name: str, estimator, repeat: int) -> None:
    import shap

    from nbprod.core.explain import explain
    from nbprod.monitoring.explanations import one_thread

    sc, model, train = scorer(estimator)
    fresh = data(200, 1).drop(columns=["y"])
    est = model[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = explain(sc, fresh.iloc[:1], background=train, method="tree")  # warm
        assert first.method == "tree", first.notes
        build = [timed(lambda: shap.TreeExplainer(est, feature_perturbation="tree_path_dependent",
                                                  model_output="raw")) for _ in range(repeat)]
        one, many, threads = [], [], []
        for _ in range(repeat):  # interleaved: the load moves
            with one_thread():  # as a scoring run explains
                one.append(timed(lambda: explain(sc, fresh.iloc[:1], background=train,
                                                 method="tree")))
                many.append(timed(lambda: explain(sc, fresh, background=train, method="tree")))
            threads.append(timed(lambda: explain(sc, fresh.iloc[:1], background=train,
                                                 method="tree")))
    start, rows = statistics.median(one), statistics.median(many)
    print(f"{name}: start with the library's own threads median "
          f"{statistics.median(threads):.3f} s (min {min(threads):.3f})")
    print(f"{name}: start (1 row, SHAP imported) median {start:.3f} s "
          f"(min {min(one):.3f}); explainer alone {statistics.median(build):.3f} s; "
          f"200 rows median {rows:.3f} s (min {min(many):.3f}); "
          f"per row {(rows - start) / 199 * 1000:.1f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    print(f"load average before: {os.getloadavg()}")
    imports = [import_seconds() for _ in range(args.repeat)]
    print(f"import shap: median {statistics.median(imports):.3f} s "
          f"({', '.join(f'{v:.2f}' for v in imports)})")
    measure("hgb (100 iterations)", HistGradientBoostingClassifier(random_state=0), args.repeat)
    measure("random forest (100 trees)", RandomForestClassifier(random_state=0, n_jobs=1),
            args.repeat)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

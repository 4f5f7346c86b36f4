"""A scheduled scoring run through papermill versus a hand-written scoring notebook.

Packages a model on generated data (10 numeric and 3 text columns), then times, interleaved in
one run: papermill executing a one-cell notebook (the floor: kernel start and shutdown),
papermill executing a hand-written scoring notebook (read the Parquet batch, load the skops
model, predict and predict_proba, write the predictions: the baseline), and papermill executing
the artifact's score.ipynb on 10,000 rows with everything a scheduled run does (validation,
scoring, drift, report sections, MLflow logging to a local SQLite store), with logging on and
off. Also times a fresh interpreter importing what any kernel scoring the model needs (pandas,
scikit-learn, skops) and what MLflow logging needs (mlflow). Prints per-repetition times,
medians and the ratios to the hand-written notebook (target with logging on: at most 1.25x).

    python bench/papermill_overhead.py [--rows 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(10)})
    for j in range(3):
        df[f"c{j}"] = pd.array(rng.choice(["a", "b", "c", "d"], size=n), dtype="str")
    df.insert(0, "row_id", [f"r{seed}-{i}" for i in range(n)])
    df["y"] = ((df["x0"] + (df["c0"] == "a") + rng.normal(0, 0.5, n)) > 0.5).astype(int)
    return df


def build(root: Path) -> Path:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import nbprod

    train, valid = data(5000, 1), data(2000, 2)
    s = nbprod.Session("bench-papermill")
    s.snapshot(train, role="train", target="y", id="row_id")
    s.snapshot(valid, role="valid", target="y", id="row_id")

    def features(df):
        return df

    s.features(features)
    pre = ColumnTransformer([("num", StandardScaler(), [f"x{i}" for i in range(10)]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["c0", "c1", "c2"])])
    model = make_pipeline(pre, LogisticRegression(max_iter=1000))
    model.fit(train.drop(columns=["y", "row_id"]), train["y"])
    s.model(model)
    s.package(root / "art", log_to_mlflow=False)
    return root / "art"


HAND_WRITTEN = """\
import pandas as pd
import skops.io as sio

df = pd.read_parquet(input_path)
model = sio.load(model_path, trusted=sio.get_untrusted_types(file=model_path))
X = df.drop(columns=["row_id"])
out = pd.DataFrame({"row_id": df["row_id"], "prediction": model.predict(X)})
proba = model.predict_proba(X)
for j, c in enumerate(model.classes_):
    out[f"proba_{c}"] = proba[:, j]
out.to_parquet(output_path)
"""


def hand_written(path: Path) -> None:
    """The baseline: the scoring notebook someone would write by hand for this model."""
    import nbformat
    import nbformat.v4 as nbf

    params = nbf.new_code_cell("input_path = None\noutput_path = None\nmodel_path = None",
                               metadata={"tags": ["parameters"]})
    nbformat.write(nbf.new_notebook(cells=[params, nbf.new_code_cell(HAND_WRITTEN)], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}),
        str(path))


def import_seconds(modules: str) -> float:
    """Wall time of a fresh interpreter importing ``modules`` (what a kernel pays for them)."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {modules}"], check=True)
    return time.perf_counter() - t


def main() -> None:
    import nbformat
    import nbformat.v4 as nbf
    import papermill as pm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nbprod-bench-") as tmp:
        root = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
        art = build(root)
        data(args.rows, 3).drop(columns=["y"]).to_parquet(root / "batch.parquet")
        empty = root / "empty.ipynb"
        nbformat.write(nbf.new_notebook(cells=[nbf.new_code_cell("pass")], metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}),
            str(empty))
        params = {"input_path": str(root / "batch.parquet"), "output_path": str(root / "out.parquet"),
                  "summary_path": str(root / "summary.json")}
        pm.execute_notebook(str(art / "score.ipynb"), str(root / "warm.ipynb"), parameters=params,
                            progress_bar=False)  # first MLflow store creation is not a run's cost
        hand = root / "hand.ipynb"
        hand_written(hand)
        hand_params = {"input_path": params["input_path"], "model_path": str(art / "model.skops"),
                       "output_path": str(root / "hand.parquet")}
        times: dict[str, list[float]] = {k: [] for k in (
            "empty", "hand", "score", "score_no_mlflow", "import_model_libs", "import_mlflow")}
        for r in range(args.repeat):
            t = time.perf_counter()
            pm.execute_notebook(str(empty), str(root / "e.ipynb"), progress_bar=False)
            times["empty"].append(time.perf_counter() - t)
            t = time.perf_counter()
            pm.execute_notebook(str(hand), str(root / "h.ipynb"), parameters=hand_params,
                                progress_bar=False)
            times["hand"].append(time.perf_counter() - t)
            t = time.perf_counter()
            pm.execute_notebook(str(art / "score.ipynb"), str(root / "s.ipynb"), parameters=params,
                                progress_bar=False)
            times["score"].append(time.perf_counter() - t)
            t = time.perf_counter()
            pm.execute_notebook(str(art / "score.ipynb"), str(root / "s2.ipynb"),
                                parameters=params | {"log_to_mlflow": False}, progress_bar=False)
            times["score_no_mlflow"].append(time.perf_counter() - t)
            # what any kernel scoring this model must import, and what MLflow logging imports
            times["import_model_libs"].append(import_seconds("pandas, sklearn.pipeline, skops.io"))
            times["import_mlflow"].append(import_seconds("mlflow"))
            print(f"rep {r}: " + "   ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
        med = {k: statistics.median(v) for k, v in times.items()}
        base = med["hand"]
        # each repetition's own ratio (the pair ran back to back), then their median
        pair = {k: statistics.median(a / b for a, b in zip(times[k], times["hand"], strict=True))
                for k in times}
        print(f"\nmedians over {args.repeat} repetitions, {args.rows:,} rows (ratio to the "
              "hand-written notebook: of the medians, and the median of each repetition's):")
        for key, label in (("empty", "papermill, empty notebook"),
                           ("hand", "hand-written scoring notebook (baseline)"),
                           ("score", "score.ipynb, MLflow logging on (default)"),
                           ("score_no_mlflow", "score.ipynb, log_to_mlflow=False"),
                           ("import_model_libs", "fresh python: import pandas, sklearn, skops"),
                           ("import_mlflow", "fresh python: import mlflow")):
            print(f"  {label:<45} {med[key]:6.2f} s  {med[key] / base:5.2f}x  "
                  f"{pair[key]:5.2f}x")
        ratio = pair["score"]
        print(f"logging on: {ratio:.2f}x the hand-written notebook (target <= 1.25x): "
              f"{'MET' if ratio <= 1.25 else 'NOT MET'}")


if __name__ == "__main__":
    main()

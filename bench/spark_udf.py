"""The Spark recipe of docs/scale.md, run end to end: an nbprod artifact scored by Spark through
MLflow's ``mlflow.pyfunc.spark_udf`` on a local SparkSession, against ``nbprod score``.

Packages the classifier of ``bench/scoring_overhead.py`` once into ``--data`` (default
``/tmp/nbprod-bench-spark``, never the repository) unless ``--artifact`` names one, writes a
generated batch of ``--rows`` rows as Parquet, scores it with ``nbprod.jobs.run.execute`` (what
``nbprod score`` runs) and with Spark, and compares the predictions row by row (by id). Needs
``pip install 'nbprod[spark]'`` and a Java runtime (17 or later).

``--bad-rows`` puts a missing value every 997 rows (rows nbprod rejects); ``--errors mark``
scores them with ``params={"errors": "mark"}`` and the result type of
``nbprod.tracking.flavor.spark_result_type``: Spark must return every row, the rejected ones
marked (the same ids as ``nbprod score``'s issues), the others equal to ``nbprod score``'s.

    .venv/bin/python bench/spark_udf.py [--rows 20000] [--artifact PATH]
    .venv/bin/python bench/spark_udf.py --bad-rows --errors mark
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def artifact(data: Path) -> Path:
    from scoring_overhead import build, make_frame

    root = data / "artifact"
    if not (root / "classifier" / "nbprod.json").exists():
        root.mkdir(parents=True, exist_ok=True)
        build("classifier", make_frame(20_000, 0), root)
    return root / "classifier"


def batch(data: Path, rows: int, bad: bool) -> Path:
    from scoring_overhead import make_frame

    path = data / f"batch-{rows}{'-bad' if bad else ''}.parquet"
    frame = make_frame(rows, 3).drop(columns=["churned", "spend"])
    if bad:
        frame.loc[frame.index[::997], "x2"] = np.nan  # a few missing values: rejected rows
    frame.to_parquet(path, index=False)
    return path


def nbprod_score(art: Path, inp: Path, out: Path) -> pd.DataFrame:
    from nbprod.jobs.run import execute

    execute(input_path=str(inp), output_path=str(out), artifact_path=str(art),
            log_to_mlflow=False, progress=False)
    return pd.read_parquet(out)


def spark_score(art: Path, inp: Path, params: dict | None = None,
                result_type: str | None = None, via: str = "udf") -> tuple[pd.DataFrame, float]:
    """The recipe: a local SparkSession, the artifact's MLflow model as a Spark UDF
    (``via="udf"``), or loaded once per partition in ``mapInPandas`` (``via="map"``)."""
    import mlflow.pyfunc
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers: this venv's
    spark = (SparkSession.builder.master("local[2]").appName("nbprod-spark-udf")
             .config("spark.ui.enabled", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        t = time.perf_counter()
        frame = spark.read.parquet(str(inp))
        if via == "map":
            model_path = str(art)

            def score(batches):
                model = mlflow.pyfunc.load_model(model_path)  # verified once per partition
                for batch in batches:
                    yield model.predict(batch, params=params)

            result = frame.mapInPandas(score, schema=result_type).toPandas()
            return result, time.perf_counter() - t
        # the model's output signature gives the result columns (id, prediction, probabilities)
        predict = mlflow.pyfunc.spark_udf(spark, model_uri=str(art), env_manager="local",
                                          params=params, result_type=result_type)
        scored = frame.withColumn("scored", predict(F.struct(*frame.columns)))
        result = scored.select("scored.*").toPandas()
        return result, time.perf_counter() - t
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--artifact", type=Path)
    parser.add_argument("--data", type=Path, default=Path("/tmp/nbprod-bench-spark"))
    parser.add_argument("--bad-rows", action="store_true",
                        help="a missing value every 997 rows (rows nbprod rejects)")
    parser.add_argument("--errors", choices=["raise", "reject", "mark"], default=None,
                        help="the pyfunc's errors parameter, passed by spark_udf")
    parser.add_argument("--via", choices=["udf", "map"], default="udf",
                        help="mlflow.pyfunc.spark_udf, or the pyfunc in mapInPandas (needs "
                             "--errors mark: the result type is nbprod's)")
    args = parser.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    art = args.artifact or artifact(args.data)
    inp = batch(args.data, args.rows, args.bad_rows)
    with tempfile.TemporaryDirectory(prefix="nbprod-spark-") as tmp:
        t = time.perf_counter()
        expected = nbprod_score(art, inp, Path(tmp) / "preds.parquet")
        nbprod_s = time.perf_counter() - t
    result_type = None
    if args.via == "map" and args.errors != "mark":
        parser.error("--via map needs --errors mark")
    if args.errors == "mark":
        from nbprod.tracking.flavor import spark_result_type

        result_type = spark_result_type(str(art))
        print("result_type:", result_type)
    got, spark_s = spark_score(art, inp, {"errors": args.errors} if args.errors else None,
                               result_type, args.via)
    print(f"nbprod score: {len(expected):,} rows in {nbprod_s:.1f} s; "
          f"Spark ({args.via}): {len(got):,} rows in {spark_s:.1f} s")
    print("Spark columns: ", list(got.columns))
    print("nbprod columns:", list(expected.columns))
    key = expected.columns[0]
    both = expected.merge(got, on=key, suffixes=("", "_spark"), how="left")
    same = True
    for c in expected.columns[1:]:
        if c + "_spark" not in both:
            print(f"  {c}: missing from Spark's result")
            same = False
            continue
        a, b = both[c], both[c + "_spark"]
        if pd.api.types.is_numeric_dtype(a):
            equal = np.isclose(a.astype(float), b.astype(float), rtol=1e-12, atol=0,
                               equal_nan=True)
        else:
            equal = a.astype(str).to_numpy() == b.astype(str).to_numpy()
        print(f"  {c}: {int(np.sum(~np.asarray(equal)))} of {len(both):,} rows differ")
        same = same and bool(np.all(equal))
    extra = len(got) - len(expected)
    print(f"rows nbprod rejected that Spark still returned: {extra}")
    if args.errors == "mark":
        same = marked_as_nbprod_rejected(inp, expected, got, key) and same
    print("SAME PREDICTIONS" if same else "PREDICTIONS DIFFER")
    return 0 if same else 1


def marked_as_nbprod_rejected(inp: Path, expected: pd.DataFrame, got: pd.DataFrame,
                              key: str) -> bool:
    """Under errors="mark": every input row came back; the marked ones are exactly the rows
    ``nbprod score`` rejected, with missing predictions."""
    ids = pd.read_parquet(inp, columns=[key])[key]
    rejected = set(ids) - set(expected[key])
    reason = got.columns[-1]
    kept = got.loc[got[key].isin(expected[key]), reason]
    print(f"rows nbprod scored: {len(kept):,}, {int(kept.isna().sum()):,} with a null {reason}; "
          f"text there: {kept.dropna().astype(str).value_counts().to_dict()}")
    marked = got[~got[key].isin(expected[key])]
    print(f"rows in: {len(ids):,}; Spark returned {len(got):,}; marked {len(marked):,} "
          f"({marked[reason].value_counts().to_dict()}); nbprod score rejected {len(rejected):,}")
    probas = [c for c in got.columns if c.startswith("proba_")]
    missing = marked[probas].isna().all(axis=1).all()
    pred = marked["prediction"]
    print(f"marked rows' probabilities all missing: {missing}; their predictions: "
          f"{int(pred.isna().sum())} null, text {pred.dropna().astype(str).value_counts().to_dict()}")
    return len(got) == len(ids) and set(marked[key]) == rejected and bool(missing)


if __name__ == "__main__":
    raise SystemExit(main())

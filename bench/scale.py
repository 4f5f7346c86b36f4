"""Scoring a large batch: peak memory, streaming throughput, Dask speed-up, drift on merged profiles.

Uses the scoring-overhead workload (``bench/scoring_overhead.py``: an id, 8 float, 2 integer and
3 text columns, a feature function and a scikit-learn Pipeline ending in LogisticRegression),
packaged once with ``nbprod.Session`` (no MLflow). Batches are generated with a seeded generator
into ``--data`` (default ``/tmp/nbprod-bench-scale``, never the repository), one million rows at a
time, as Parquet files with row groups of 250,000 rows; they are kept there and reused by the
next run.

Every scoring run is ``nbprod.jobs.run.execute`` in a fresh Python process (no MLflow), writing
Parquet predictions; this process samples the resident memory of that process and every process
it starts (a Dask cluster's scheduler, nannies and workers included) every 50 ms through psutil,
and reports the peak. What it measures:

  memory      peak memory of the whole process tree at 2M and at 20M rows (default chunks);
              target: 20M within 1.3x of 2M, and under 2 GB
  throughput  rows per second on the same 1M rows, streamed in chunks against scored in one
              piece (the in-memory path); target >= 0.9x
  dask        --engine dask on a LocalCluster of 2 single-threaded workers against one process,
              20M rows; target >= 1.5x on a 2-core machine
  drift       drift of 1M x 20 columns from profiles merged over 4 chunks, against the profile of
              the whole frame at once (single thread); target: about today's 0.35 s

Medians of ``--repeat`` runs (wall clock); ratios are between runs of this one invocation. A
run's seconds are its scoring, from reading the input to publishing the outputs: Python's start,
the imports and verifying and loading the artifact (some seconds, the same for every run) are
left out of the rates, and in the memory.

    .venv/bin/python bench/scale.py [--big 20000000] [--small 2000000] [--repeat 3] [--skip-dask]
    .venv/bin/python bench/scale.py --dask-only --big 2000000 --repeat 3
    .venv/bin/python bench/scale.py --throughput-only --repeat 7
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

GEN_ROWS = 1_000_000  # rows generated (and held) at a time
ROW_GROUP = 250_000

RUNNER = """
import json, sys, warnings
warnings.filterwarnings("ignore")
from nbprod.jobs import run
import time
p = json.loads(sys.argv[1])
cpu = time.process_time()
r = run.execute(input_path=p["input"], output_path=p["output"], artifact_path=p["artifact"],
                log_to_mlflow=False, chunk_rows=p.get("chunk_rows"), engine=p.get("engine"),
                progress=False)
print(json.dumps({"seconds": r.timings["total_s"] - r.timings["load_s"], "rows": r.row_count,
                  "status": r.status, "engine": r.engine,
                  "run_cpu_s": time.process_time() - cpu}))
"""


# -- data ------------------------------------------------------------------------------------
def batch_file(data: Path, rows: int) -> Path:
    """A Parquet batch of ``rows`` generated rows (made once, then reused)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from scoring_overhead import make_frame

    path = data / f"batch-{rows}.parquet"
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    data.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    t = time.perf_counter()
    writer = None
    done = 0
    seed = 1
    while done < rows:
        n = min(GEN_ROWS, rows - done)
        df = make_frame(n, seed).drop(columns=["churned", "spend"])
        table = pa.Table.from_pandas(df, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table, row_group_size=ROW_GROUP)
        done += n
        seed += 1
    writer.close()
    os.replace(tmp, path)
    print(f"  generated {path} ({rows:,} rows) in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def artifact(data: Path) -> Path:
    """The classifier of bench/scoring_overhead.py, packaged once into ``data``."""
    from scoring_overhead import build, make_frame

    root = data / "artifact"
    if (root / "classifier" / "nbprod.json").exists():
        return root / "classifier"
    root.mkdir(parents=True, exist_ok=True)
    build("classifier", make_frame(20_000, 0), root)
    return root / "classifier"


# -- one measured run ------------------------------------------------------------------------
def scored(art: Path, inp: Path, *, chunk_rows: int | None = None,
           engine: str | None = None) -> dict:
    """``execute`` in a fresh process; its seconds and the peak memory of its process tree."""
    import resource

    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory(prefix="nbprod-bench-out-", dir=inp.parent) as out:
        params = {"input": str(inp), "output": str(Path(out) / "preds.parquet"),
                  "artifact": str(art), "chunk_rows": chunk_rows, "engine": engine}
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
        proc = subprocess.Popen([sys.executable, "-c", RUNNER, json.dumps(params)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        root = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            rss = 0
            for p in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss += p.memory_info().rss
            peak = max(peak, rss)
            time.sleep(0.05)
        stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"scoring run failed ({proc.returncode}):\n{stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_gb"] = peak / 2**30
    # CPU seconds of the whole process tree (a cluster's workers are the run's children),
    # start-up and loading included: what a run costs the machine, whatever else runs on it
    result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["load"] = os.getloadavg()[0]
    return result


def repeated(label: str, repeat: int, **kw) -> dict:
    runs = []
    for i in range(repeat):
        r = scored(**kw)
        runs.append(r)
        print(f"  {label} rep {i + 1}: {r['seconds']:7.2f} s  {r['rows'] / r['seconds']:>10,.0f} "
              f"rows/s  peak {r['peak_gb']:.2f} GB", flush=True)
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "peak_gb": statistics.median(r["peak_gb"] for r in runs),
            "rows": runs[0]["rows"], "engine": runs[0]["engine"]}


# -- drift on merged profiles ----------------------------------------------------------------
def drift_timings(repeat: int) -> tuple[float, float, bool]:
    """Median seconds of drift on 1M x 20 from one profile and from 4 merged chunk profiles;
    and whether the statistics agree to 1e-9."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from drift_speed import frame

    from nbprod.core.profile import frame_profile
    from nbprod.monitoring import drift as dr

    reference = frame_profile(frame(1_000_000, seed=1))
    batch = frame(1_000_000, seed=2, shift=0.3)

    def whole() -> dict:
        return dr.compare(reference, dr.frame_batch_profile(batch, reference))

    def merged() -> dict:
        parts = [dr.frame_batch_profile(batch.iloc[i:i + 250_000], reference, mergeable=True)
                 for i in range(0, len(batch), 250_000)]
        acc = parts[0]
        for p in parts[1:]:
            acc = {c: dr.merge(acc[c], p[c]) for c in acc}
        return dr.compare(reference, {c: dr.settled(p) for c, p in acc.items()})

    a, b = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        one = whole()
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        four = merged()
        b.append(time.perf_counter() - t)
    same = all(_close(one[c], four[c]) for c in one)
    return statistics.median(a), statistics.median(b), same


def _close(a: object, b: object) -> bool:
    """Equal: counts and verdicts exactly, floats to 1e-9."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= 1e-9 * max(1.0, abs(a))
    return a == b


def dask_interleaved(art: Path, inp: Path, repeat: int) -> None:
    """One process and a 2-worker LocalCluster on the same batch, alternately, ``repeat``
    times: medians of the wall seconds (scoring, as everywhere here) and of the CPU seconds of
    the whole process tree, with the load average each run started under."""
    runs: dict[str, list[dict]] = {"local": [], "dask": []}
    for i in range(repeat):
        for engine in ("local", "dask"):
            r = scored(art=art, inp=inp, engine=engine)
            runs[engine].append(r)
            print(f"  {engine:5} rep {i + 1}: {r['seconds']:7.2f} s  cpu {r['cpu_s']:7.2f} s  "
                  f"load {r['load']:.1f}  peak {r['peak_gb']:.2f} GB", flush=True)
    med = {e: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "cpu_s")}
           for e, rs in runs.items()}
    ratios = [a["seconds"] / b["seconds"] for a, b in zip(runs["local"], runs["dask"],
                                                            strict=True)]
    print(f"  medians: one process {med['local']['seconds']:.1f} s (cpu "
          f"{med['local']['cpu_s']:.1f} s); dask {med['dask']['seconds']:.1f} s (cpu "
          f"{med['dask']['cpu_s']:.1f} s); speed-up {med['local']['seconds'] / med['dask']['seconds']:.2f}x "
          f"(median of ratios {statistics.median(ratios):.2f}x); cpu ratio "
          f"{med['dask']['cpu_s'] / med['local']['cpu_s']:.2f}x")


def throughput_interleaved(art: Path, inp: Path, repeat: int) -> tuple[dict, dict]:
    """The same rows scored in one piece and streamed in the default chunks, alternately,
    ``repeat`` times: medians of the wall seconds and of the CPU seconds of ``execute`` in its
    process (every thread; loading the artifact included, the same for both), and the median
    of the paired ratios. CPU seconds hardly move with what else runs on the machine; wall
    seconds do."""
    runs: dict[str, list[dict]] = {"piece": [], "stream": []}
    for i in range(repeat):
        for how, chunk_rows in (("piece", 10**12), ("stream", None)):
            r = scored(art=art, inp=inp, chunk_rows=chunk_rows)
            runs[how].append(r)
            print(f"  {how:6} rep {i + 1}: {r['seconds']:7.2f} s  {r['rows'] / r['seconds']:>10,.0f} "
                  f"rows/s  cpu {r['run_cpu_s']:6.2f} s  load {r['load']:.1f}  peak "
                  f"{r['peak_gb']:.2f} GB", flush=True)
    med = {h: {"seconds": statistics.median(r["seconds"] for r in rs),
               "cpu_s": statistics.median(r["run_cpu_s"] for r in rs),
               "peak_gb": statistics.median(r["peak_gb"] for r in rs), "rows": rs[0]["rows"]}
           for h, rs in runs.items()}
    wall = [a["seconds"] / b["seconds"] for a, b in zip(runs["piece"], runs["stream"], strict=True)]
    cpu = [a["run_cpu_s"] / b["run_cpu_s"] for a, b in zip(runs["piece"], runs["stream"],
                                                            strict=True)]
    print(f"  medians: one piece {med['piece']['seconds']:.2f} s (cpu {med['piece']['cpu_s']:.2f} s); "
          f"streamed {med['stream']['seconds']:.2f} s (cpu {med['stream']['cpu_s']:.2f} s); "
          f"throughput ratio streamed / one piece: wall {statistics.median(wall):.2f}x, cpu "
          f"{statistics.median(cpu):.2f}x (medians of the paired ratios)", flush=True)
    return med["piece"], med["stream"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--big", type=int, default=20_000_000, help="rows of the large batch")
    ap.add_argument("--small", type=int, default=2_000_000, help="rows of the small batch")
    ap.add_argument("--throughput-rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "nbprod-bench-scale")
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--dask-only", action="store_true",
                    help="only one process against dask on --big rows, interleaved --repeat times")
    ap.add_argument("--throughput-only", action="store_true",
                    help="only the same --throughput-rows rows streamed against in one piece, "
                         "interleaved --repeat times")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    import sklearn

    from nbprod.core.sources import DEFAULT_CHUNK_ROWS

    print(f"nbprod scale bench: {os.cpu_count()} CPU(s), pandas {pd.__version__}, numpy "
          f"{np.__version__}, scikit-learn {sklearn.__version__}; chunks of "
          f"{DEFAULT_CHUNK_ROWS:,} rows; data in {args.data}", flush=True)
    art = artifact(args.data)
    if args.dask_only:
        print(f"one process vs dask (LocalCluster, 2 workers), {args.big:,} rows, interleaved:",
              flush=True)
        dask_interleaved(art, batch_file(args.data, args.big), args.repeat)
        return 0
    one_m = batch_file(args.data, args.throughput_rows)
    print("throughput (same rows, streamed vs in one piece, interleaved):", flush=True)
    piece, stream = throughput_interleaved(art, one_m, args.repeat)
    if args.throughput_only:
        return 0
    small, big = batch_file(args.data, args.small), batch_file(args.data, args.big)
    print("memory:", flush=True)
    mem_small = repeated(f"{args.small / 1e6:g}M rows", args.repeat, art=art, inp=small)
    mem_big = repeated(f"{args.big / 1e6:g}M rows", 1, art=art, inp=big)
    dask = None
    if not args.skip_dask:
        print("dask (LocalCluster, 2 workers) vs one process:", flush=True)
        dask = repeated("dask     ", 1, art=art, inp=big, engine="dask")
    print("drift on merged profiles:", flush=True)
    whole_s, merged_s, same = drift_timings(args.repeat)

    ratio_mem = mem_big["peak_gb"] / mem_small["peak_gb"]
    ratio_tp = piece["seconds"] / stream["seconds"]
    print("\nresults (medians):")
    print(f"  peak memory {args.small / 1e6:g}M rows        {mem_small['peak_gb']:.2f} GB")
    print(f"  peak memory {args.big / 1e6:g}M rows       {mem_big['peak_gb']:.2f} GB   ratio "
          f"{ratio_mem:.2f}x (target <= 1.3x, < 2 GB): "
          f"{'met' if ratio_mem <= 1.3 and mem_big['peak_gb'] < 2 else 'NOT met'}")
    print(f"  one piece, {args.throughput_rows / 1e6:g}M rows         "
          f"{args.throughput_rows / piece['seconds']:,.0f} rows/s, peak {piece['peak_gb']:.2f} GB")
    print(f"  streamed, {args.throughput_rows / 1e6:g}M rows          "
          f"{args.throughput_rows / stream['seconds']:,.0f} rows/s, peak {stream['peak_gb']:.2f} GB"
          f"   ratio {ratio_tp:.2f}x (target >= 0.9x): {'met' if ratio_tp >= 0.9 else 'NOT met'}")
    print(f"  one process, {args.big / 1e6:g}M rows      "
          f"{args.big / mem_big['seconds']:,.0f} rows/s ({mem_big['seconds']:.0f} s)")
    if dask is not None:
        speed = mem_big["seconds"] / dask["seconds"]
        print(f"  dask LocalCluster, {args.big / 1e6:g}M  "
              f"{args.big / dask['seconds']:,.0f} rows/s ({dask['seconds']:.0f} s), peak "
              f"{dask['peak_gb']:.2f} GB   speed-up {speed:.2f}x (target >= 1.5x): "
              f"{'met' if speed >= 1.5 else 'NOT met'}")
    print(f"  drift 1M x 20, one profile         {whole_s:.3f} s")
    print(f"  drift 1M x 20, 4 merged profiles   {merged_s:.3f} s   (statistics equal to 1e-9: "
          f"{same})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

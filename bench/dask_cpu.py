"""Where a Dask worker's CPU goes: the same parts scored in a plain process and on a LocalCluster.

The batch and artifact of ``bench/scale.py`` (``--data``). Every figure is CPU seconds read with
``getrusage`` (user, system, minor page faults, context switches), never wall time: the machine
this runs on is shared. The artifact is verified and loaded before the counters start, so they
hold the scoring of the parts only (:func:`nbprod.jobs.engines.score_part`, the function a worker
runs):

  plain   a fresh Python process scores every part, one after the other, in its main thread
          (``--thread``: in a second thread, as a worker does), under the environment given with
          ``--env NAME=VALUE`` (repeatable; ``--env NAME=`` removes NAME)
  pair    two such processes at the same time, each scoring every other part: the two cores
          shared as two workers share them, without Dask
  dask    a LocalCluster of 2 single-threaded workers started as nbprod starts it
          (``nbprod.jobs.engines``), under ``--config KEY=VALUE`` of Dask's configuration and
          ``--env`` (set here, inherited by the workers); the workers' own counters are read
          through ``client.run`` before and after, and the task thread's own counters inside
          each task

    .venv/bin/python bench/dask_cpu.py plain [--rows 2000000] [--env MALLOC_TRIM_THRESHOLD_=65536]
    .venv/bin/python bench/dask_cpu.py pair
    .venv/bin/python bench/dask_cpu.py dask [--rows 2000000] [--env MALLOC_TRIM_THRESHOLD_=65536]
        [--config distributed.worker.profile.enabled=False]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

FIELDS = ("ru_utime", "ru_stime", "ru_minflt", "ru_nvcsw", "ru_nivcsw")


def usage(who: int = resource.RUSAGE_SELF) -> dict[str, float]:
    r = resource.getrusage(who)
    return {f: getattr(r, f) for f in FIELDS}


def delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {f: b[f] - a[f] for f in FIELDS}


def total(ds: list[dict[str, float]]) -> dict[str, float]:
    return {f: sum(d[f] for d in ds) for f in FIELDS}


def show(label: str, d: dict[str, float], rows: int) -> str:
    cpu = d["ru_utime"] + d["ru_stime"]
    return (f"{label:28} cpu {cpu:6.2f} s (user {d['ru_utime']:5.2f}, sys {d['ru_stime']:5.2f})  "
            f"{cpu / rows * 1e6:5.2f} us/row  minflt {d['ru_minflt'] / rows:6.3f}/row  "
            f"csw {d['ru_nvcsw']:.0f}+{d['ru_nivcsw']:.0f}")


def setup(data: Path, rows: int) -> tuple[Path, Path, list]:
    from scale import artifact, batch_file

    from nbprod.core.sources import parts, resolve

    art = artifact(data)
    inp = batch_file(data, rows)
    return art, inp, parts(resolve(inp))


def task(part, source, root, work, chunk_rows):  # runs on a worker, or in the plain process
    """score_part with the task thread's own counters around it."""
    from nbprod.jobs.engines import score_part

    before = usage(resource.RUSAGE_THREAD)
    score_part(part, source, root, (), chunk_rows, work, "parquet", False)
    return delta(before, usage(resource.RUSAGE_THREAD))


def plain(args: argparse.Namespace) -> dict:
    """In this process (started by ``main`` with the asked environment)."""
    import threading

    from nbprod.core.sources import DEFAULT_CHUNK_ROWS, resolve
    from nbprod.jobs.engines import worker_artifact

    art, inp, pieces = setup(args.data, args.rows)
    worker_artifact(str(art))
    source = resolve(inp)
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="nbprod-dask-cpu-", dir=inp.parent) as work:
        for sub in ("out", "issues"):
            (Path(work) / sub).mkdir()

        def run() -> None:
            a = usage()
            mine = pieces if args.share is None else pieces[args.share::2]
            threads = [task(p, source, str(art), work, DEFAULT_CHUNK_ROWS) for p in mine]
            result.update(process=delta(a, usage()), thread=total(threads))

        if args.thread:
            t = threading.Thread(target=run)
            t.start()
            t.join()
        else:
            run()
    return result


def dask(args: argparse.Namespace) -> dict:
    from nbprod.core.sources import DEFAULT_CHUNK_ROWS, resolve
    from nbprod.jobs.engines import _client, worker_artifact

    art, inp, pieces = setup(args.data, args.rows)
    source = resolve(inp)
    import dask as dask_

    config = {}
    for item in args.config:
        name, _, value = item.partition("=")
        config[name] = {"None": None, "False": False, "True": True}.get(value, value)
    _environ(args.env, os.environ)  # inherited by the workers, as a user's would be
    with tempfile.TemporaryDirectory(prefix="nbprod-dask-cpu-", dir=inp.parent) as work, \
            dask_.config.set(config), _client(None, 2) as (client, _):
        for sub in ("out", "issues"):
            (Path(work) / sub).mkdir()
        client.run(worker_artifact, str(art))
        env = client.run(lambda: {k: os.environ.get(k) for k in (
            "MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS")})
        a = client.run(usage)
        t = time.perf_counter()
        futures = client.map(task, pieces, source=source, root=str(art), work=work,
                             chunk_rows=DEFAULT_CHUNK_ROWS, pure=False)
        threads = client.gather(futures)
        wall = time.perf_counter() - t
        b = client.run(usage)
        peak = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        profiling = client.run(lambda: dask_.config.get("distributed.worker.profile.enabled"))
    return {"process": total([delta(a[w], b[w]) for w in a]), "thread": total(threads),
            "workers": {w: delta(a[w], b[w]) for w in a}, "env": env, "wall": wall,
            "peak_mb": {w: v / 1024 for w, v in peak.items()}, "profile": profiling}


def _environ(items: list[str], env) -> None:
    for item in items:
        name, _, value = item.partition("=")
        if value:
            env[name] = value
        else:
            env.pop(name, None)


def pair(args: argparse.Namespace, env: dict) -> dict:
    """Two plain processes at once, each scoring every other part (what two workers share)."""
    procs = [subprocess.Popen(_child(args, k), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for k in range(2)]
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate()
        if proc.returncode:
            raise SystemExit(stderr[-3000:])
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    return {"process": total([o["process"] for o in outs]),
            "thread": total([o["thread"] for o in outs])}


def _child(args: argparse.Namespace, share: int | None = None) -> list[str]:
    return [sys.executable, __file__, "plain", "--child", "--rows", str(args.rows),
            "--data", str(args.data)] + (["--thread"] if args.thread else []) + (
        ["--share", str(share)] if share is not None else [])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("plain", "pair", "dask"))
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "nbprod-bench-scale")
    ap.add_argument("--thread", action="store_true", help="plain: score in a second thread")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE (NAME=: unset) for the plain processes, or in this process for "
                         "the workers to inherit")
    ap.add_argument("--config", action="append", default=[],
                    help="dask: KEY=VALUE of Dask's configuration (None: unset)")
    ap.add_argument("--share", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")
    if args.child or args.mode == "dask":
        out = plain(args) if args.mode == "plain" else dask(args)
        if args.child:
            print(json.dumps(out))
            return 0
    else:
        env = dict(os.environ)
        _environ(args.env, env)
        env["PYTHONPATH"] = str(HERE.parent)
        if args.mode == "pair":
            out = pair(args, env)
        else:
            proc = subprocess.run(_child(args), capture_output=True, text=True, env=env)
            if proc.returncode:
                raise SystemExit(proc.stderr[-3000:])
            out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"load average {os.getloadavg()[0]:.1f}; {args.mode} {' '.join(args.env)}"
          f"{' '.join(args.config)}{' (thread)' if args.thread else ''}")
    print(show("  processes", out["process"], args.rows))
    print(show("  task threads", out["thread"], args.rows))
    for w, d in out.get("workers", {}).items():
        print(show(f"  {w}", d, args.rows // 2))
    if "env" in out:
        print(f"  worker env {next(iter(out['env'].values()))}; profiler "
              f"{next(iter(out['profile'].values()))}; wall {out['wall']:.1f} s; peak RSS "
              f"{', '.join(f'{v:.0f}' for v in out['peak_mb'].values())} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What does it cost to import nbprod, and to load it into IPython?

Each figure comes from a fresh Python subprocess (so nothing is cached in ``sys.modules``),
repeated ``--repeat`` times; the median is printed:

  * ``import nbprod``: wall time of the import alone, measured inside the child;
  * ``%load_ext nbprod``: a real ``IPython.core.interactiveshell.InteractiveShell`` is created
    first (not timed), then only ``shell.run_line_magic("load_ext", "nbprod")`` is timed;
  * the python start-up itself (``python -c pass``) for reference.

After ``import nbprod`` and after ``%load_ext`` it reports whether mlflow, papermill, sklearn and
pandas ended up in ``sys.modules``; mlflow and papermill must not be imported by either.
This is a measurement, not a test: it always exits 0.

    .venv/bin/python bench/import_time.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WATCH = ("mlflow", "papermill", "sklearn", "pandas")
MUST_NOT = ("mlflow", "papermill")

IMPORT_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import nbprod
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "modules": {m: m in sys.modules for m in %(watch)r}}))
"""

LOAD_EXT_CHILD = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
cfg = Config()
cfg.HistoryManager.enabled = False
shell = InteractiveShell(config=cfg)
before = {m: m in sys.modules for m in %(watch)r}
t0 = time.perf_counter()
shell.run_line_magic("load_ext", "nbprod")
dt = time.perf_counter() - t0
after = {m: m in sys.modules for m in %(watch)r}
print(json.dumps({"seconds": dt, "modules": after, "before": before}))
"""


def child(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-c", code % {"watch": WATCH}], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def startup() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def report(title: str, runs: list[dict]) -> bool:
    times = [r["seconds"] for r in runs]
    print(f"{title}: median {statistics.median(times) * 1000:.1f} ms  "
          f"(runs: {', '.join(f'{t * 1000:.1f}' for t in times)} ms)")
    mods = runs[-1]["modules"]
    if "before" in runs[-1]:
        pre = runs[-1]["before"]
        print("  already imported by IPython itself: "
              + (", ".join(m for m in WATCH if pre[m]) or "none of " + ", ".join(WATCH)))
    print("  in sys.modules afterwards: "
          + ", ".join(f"{m}={'yes' if mods[m] else 'no'}" for m in WATCH))
    bad = [m for m in MUST_NOT if any(r["modules"][m] for r in runs)]
    if bad:
        print(f"  PROBLEM: {', '.join(bad)} imported (must stay lazy)")
    else:
        print(f"  OK: {' and '.join(MUST_NOT)} not imported")
    return not bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="fresh subprocesses per figure")
    args = ap.parse_args(argv)
    print(f"nbprod import time: {args.repeat} fresh subprocesses each, {sys.executable}, "
          f"{os.cpu_count()} CPU(s)")
    base = [startup() for _ in range(args.repeat)]
    print(f"python start-up (python -c pass, whole process): median "
          f"{statistics.median(base) * 1000:.1f} ms")
    ok = report("import nbprod", [child(IMPORT_CHILD) for _ in range(args.repeat)])
    ok &= report("%load_ext nbprod (run_line_magic only)",
                 [child(LOAD_EXT_CHILD) for _ in range(args.repeat)])
    print("all lazy imports respected" if ok else "lazy-import requirement NOT met")
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # a measurement: report, never fail the caller
        print(f"benchmark did not complete: {type(exc).__name__}: {exc}")
    sys.exit(0)

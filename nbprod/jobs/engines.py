"""Where a batch is scored: in this process, chunk after chunk, or on a Dask cluster.

Both engines score every chunk through :func:`nbprod.jobs.chunk.score_chunk` and return a
:class:`Streamed`: the merged :class:`~nbprod.jobs.chunk.Measured` of the batch, the predictions
written to the staged output, and the issues' parts (in a work directory) for the run to
assemble. Nothing here publishes a file: the run does, once everything succeeded.

- ``local`` (:func:`run_local`): the source is read in chunks (:func:`nbprod.core.sources.chunks`);
  memory is bounded by the chunk.
- ``dask`` (:func:`run_dask`): the source is split into parts that workers read themselves
  (:func:`nbprod.core.sources.parts`: Parquet row groups, CSV byte ranges); every worker verifies
  and loads the artifact once, scores its parts in chunks and writes them into the work
  directory, which must therefore be on storage that the workers share with this process (the
  same machine for a ``LocalCluster``). The measures come back and merge in the source's order.
  A ``distributed`` ``LocalCluster`` (one single-threaded worker process per core) is started
  and closed by the run, unless a scheduler address is given (``scheduler`` or
  ``DASK_SCHEDULER_ADDRESS``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.sources import Part, Source
from ..exceptions import NbprodUsageError
from .chunk import Measured, merge_all, score_chunk

ENGINES = ("local", "dask")
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


@dataclass
class Streamed:
    """A batch scored by an engine (see the module docs)."""

    measured: Measured
    issue_parts: list[tuple[Path, int]]  # (Parquet file, rows before its first row)
    output_rows: int = 0
    held: pd.DataFrame | None = None  # the predictions, when kept in memory
    scored: Any = None  # the Scored batch, when it was one chunk
    engine: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """Where an engine writes: the staged output (a file, or a directory of parts), and a work
    directory for the issues' parts and the spills."""

    output: Path | None
    parts: bool  # the output is a directory of Parquet parts
    work: Path
    hold: bool  # keep the predictions in memory (no output, or asked)


def check_engine(engine: str | None) -> str:
    name = (engine or "local").strip().lower() if isinstance(engine, str) or engine is None \
        else engine
    if name not in ENGINES:
        raise NbprodUsageError(f"engine must be one of {', '.join(ENGINES)}. Got {str(engine)[:40]!r}.")
    return name


# -- local ----------------------------------------------------------------------------------
def run_local(art: Any, source: Source, target: Target, *, chunk_rows: int, labels: Any = None,
              progress: Callable[[int], None] | None = None, side: Callable | None = None) -> Streamed:
    """``side(k, frame, scored, out, offset)``, when given, sees each chunk as the champion scored
    it and returns the output to write (a challenger's, :mod:`nbprod.jobs.challenger`)."""
    from ..core.sinks import FrameWriter, part_name
    from ..core.sources import chunks, output_ids

    writer = FrameWriter(target.output) if target.output and not target.parts else None
    if target.parts and target.output:
        target.output.mkdir(parents=True, exist_ok=True)
    issues = FrameWriter(target.work / "issues.parquet", "parquet")
    measured: Measured | None = None
    held: list[pd.DataFrame] = []
    first: Any = None
    rows = written = 0
    read_s = write_s = 0.0
    reader = chunks(source, art.reading_schema, chunk_rows, id_column=art.id_column)
    try:
        t = time.perf_counter()
        for k, frame in enumerate(reader):
            read_s += time.perf_counter() - t
            scored, m = score_chunk(art, frame, f"{k:06d}", spill_dir=target.work, labels=labels)
            t = time.perf_counter()
            out = with_output_ids(scored.output, art.id_column, output_ids)
            if side is not None:
                out = side(k, frame, scored, out, rows)
            if writer is not None and (len(out) or writer.columns is None):
                writer.write(out)
            elif target.parts and target.output is not None and len(out):
                with FrameWriter(target.output / part_name(k, "parquet"), "parquet") as part:
                    part.write(out)
            written += len(out)
            if len(scored.issues.frame):
                issues.write(scored.issues.frame.assign(row=scored.issues.frame["row"] + rows))
            if target.hold:
                held.append(out)
            first = scored if k == 0 else None
            rows += len(frame)
            write_s += time.perf_counter() - t
            measured = m if measured is None else measured.merge(m)
            if progress:
                progress(len(frame))
            t = time.perf_counter()
    except BaseException:
        if writer is not None:
            writer.close()
        issues.close()
        raise
    if writer is not None:
        writer.close()
    issues.close()
    assert measured is not None  # chunks() raises on a batch without rows
    measured.timings.update(read_s=read_s, write_s=measured.timings.get("write_s", 0.0) + write_s)
    keep = pd.concat(held, ignore_index=True) if len(held) > 1 else (held[0] if held else None)
    return Streamed(measured, [(target.work / "issues.parquet", 0)], written, keep, first,
                    {"name": "local", "chunks": measured.chunks, "chunk_rows": chunk_rows})


def with_output_ids(out: pd.DataFrame, id_column: str | None, fix: Callable) -> pd.DataFrame:
    if id_column and id_column in out.columns:
        ids = fix(out[id_column])
        if ids is not out[id_column]:
            out = out.assign(**{id_column: ids})
    return out


# -- dask -----------------------------------------------------------------------------------
_ARTIFACTS: dict[tuple[str, tuple[str, ...]], Any] = {}
_LOCK = threading.Lock()


def worker_artifact(root: str, trusted_keys: tuple[str, ...] = ()) -> Any:
    """The artifact at ``root``, verified and loaded once per worker process."""
    from ..core.artifact import load

    key = (str(root), tuple(trusted_keys))
    with _LOCK:
        art = _ARTIFACTS.get(key)
        if art is None:
            art = load(root, trusted_keys=list(trusted_keys) or None)
            _ARTIFACTS[key] = art
        return art


def score_part(part: Part, source: Source | None, root: str, trusted_keys: tuple[str, ...],
               chunk_rows: int, work: str, fmt: str | None, gz: bool,
               labels: Any = None,
               frame: pd.DataFrame | None = None) -> tuple[Measured | None, int, list[str] | None]:
    """Score one part on a worker: its output part and issues part go into ``work``; returns
    its measure (rows numbered from the part's first row), the rows written and the output's
    columns. The part is read from ``source``, or is ``frame`` (a partition of a Dask
    DataFrame, see :func:`run_dask`)."""
    from ..core.sinks import FrameWriter, part_name
    from ..core.sources import output_ids, read_part

    art = worker_artifact(root, trusted_keys)
    if frame is not None:
        frames = frame_chunks(frame, art, chunk_rows)
    else:
        frames = read_part(source, part, art.reading_schema, chunk_rows, id_column=art.id_column)
    work_dir = Path(work)
    out_path = work_dir / "out" / part_name(part.index, fmt, gz) if fmt else None
    writer = FrameWriter(out_path, fmt, header=False) if out_path else None
    issues = FrameWriter(work_dir / "issues" / f"part-{part.index:05d}.parquet", "parquet")
    measured: Measured | None = None
    rows = written = 0
    t = time.perf_counter()
    read_s = 0.0
    try:
        for j, chunk in enumerate(frames):
            read_s += time.perf_counter() - t
            scored, m = score_chunk(art, chunk, f"{part.index:06d}-{j:05d}", spill_dir=work_dir,
                                    labels=labels)
            out = with_output_ids(scored.output, art.id_column, output_ids)
            if writer is not None and (len(out) or writer.columns is None):
                writer.write(out)
            written += len(out)
            if len(scored.issues.frame):
                issues.write(scored.issues.frame.assign(row=scored.issues.frame["row"] + rows))
            rows += len(chunk)
            measured = m if measured is None else measured.merge(m)
            t = time.perf_counter()
    finally:
        if writer is not None:
            writer.close()
        issues.close()
    if measured is not None:
        measured.timings["read_s"] = measured.timings.get("read_s", 0.0) + read_s
    return measured, written, writer.columns if writer is not None else None


def frame_chunks(frame: pd.DataFrame, art: Any, chunk_rows: int) -> Any:
    """A Dask DataFrame's partition in canonical chunks of at most ``chunk_rows`` rows."""
    from ..core.sources import canonical

    frame = frame.reset_index(drop=True)
    for start in range(0, len(frame), chunk_rows):
        chunk = canonical(frame.iloc[start:start + chunk_rows], art.reading_schema,
                          art.id_column)
        chunk.index = pd.RangeIndex(start, start + len(chunk))
        yield chunk


def is_dask_frame(value: Any) -> bool:
    """Whether ``value`` is a Dask DataFrame (without importing Dask)."""
    return type(value).__module__.startswith("dask.") and hasattr(value, "to_delayed")


def run_dask(root: Path, trusted_keys: list[str] | None, source: Any, target: Target, *,
             chunk_rows: int, scheduler: str | None = None, labels: Any = None,
             progress: Callable[[int], None] | None = None,
             workers: int | None = None) -> Streamed:
    from ..core.sinks import concat
    from ..core.sources import parts as split

    frames = None
    if is_dask_frame(source):  # a Dask DataFrame: each partition is a part, computed on a worker
        frames = source.to_delayed()
        pieces = [Part(i, 0) for i in range(len(frames))]
        source = None
    else:
        pieces = split(source, chunk_rows)
    fmt, gz = None, False
    if target.output is not None:
        fmt = "parquet" if target.parts else _format(target.output)
        gz = target.output.name.lower().endswith(".gz") and not target.parts
    (target.work / "out").mkdir(parents=True, exist_ok=True)
    (target.work / "issues").mkdir(parents=True, exist_ok=True)
    address = scheduler or os.environ.get(SCHEDULER_ENV) or None
    with _client(address, workers) as (client, where):
        shared = client.scatter(labels, broadcast=True) if labels is not None else None
        options = {"root": str(root), "trusted_keys": tuple(trusted_keys or ()),
                   "chunk_rows": chunk_rows, "work": str(target.work), "fmt": fmt, "gz": gz}
        if frames is None:
            futures = client.map(score_part, pieces, source=source, labels=shared, pure=False,
                                 key=[f"nbprod-score-{time.time_ns()}-{p.index}" for p in pieces],
                                 **options)
        else:
            from dask import delayed

            futures = client.compute([delayed(score_part, pure=False)(
                p, None, labels=labels, frame=f, **options) for p, f in zip(pieces, frames,
                                                                           strict=True)])
        results: dict[int, Any] = {}
        from distributed import as_completed

        for future in as_completed(futures):
            i = futures.index(future)
            results[i] = future.result()
            m = results[i][0]
            if progress and m is not None:
                progress(m.rows_in)
        n_workers = len(client.scheduler_info().get("workers", {}))
    ordered = [results[i] for i in range(len(pieces))]
    measures = [r[0] for r in ordered]
    issue_parts: list[tuple[Path, int]] = []
    rows = 0
    for p, m in zip(pieces, measures, strict=True):
        issue_parts.append((target.work / "issues" / f"part-{p.index:05d}.parquet", rows))
        rows += m.rows_in if m is not None else 0
    present = [m for m in measures if m is not None]
    if not present:
        from ..exceptions import InputError

        raise InputError("input holds no rows." if source is None else
                         f"input {source.describe()} holds no rows.")
    measured = merge_all(present)
    written = sum(r[1] for r in ordered)
    columns = next((r[2] for r in ordered if r[2]), None)
    if target.output is not None:
        out_parts = [target.work / "out" / _part(p.index, fmt, gz) for p in pieces]
        if target.parts:
            os.replace(target.work / "out", target.output)
        else:
            t = time.perf_counter()
            concat([p for p in out_parts if p.exists()], columns or [], target.output)
            measured.timings["write_s"] = measured.timings.get("write_s", 0.0) + \
                time.perf_counter() - t
    held = None
    if target.hold and target.output is None:
        held = None  # a cluster's predictions are not gathered: give output_path
    return Streamed(measured, issue_parts, written, held, None,
                    {"name": "dask", "scheduler": where, "workers": n_workers,
                     "parts": len(pieces), "chunks": measured.chunks, "chunk_rows": chunk_rows})


def _part(index: int, fmt: str | None, gz: bool) -> str:
    from ..core.sinks import part_name

    return part_name(index, fmt or "parquet", gz)


def _format(path: Path) -> str:
    from ..core.dataio import file_format

    return file_format(path, "output")


def _main_module_spec_restored() -> None:
    """Give ``__main__`` back the ``__spec__`` attribute that IPython's ``%reset`` deletes.

    A LocalCluster spawns its worker processes with :mod:`multiprocessing`, which reads
    ``__main__.__spec__`` and fails ("module '__main__' has no attribute '__spec__'") in a
    notebook whose namespace was reset. ``None`` is what an interactive ``__main__`` has."""
    import sys

    main = sys.modules.get("__main__")
    if main is not None and not hasattr(main, "__spec__"):
        main.__spec__ = None


# Distributed starts every worker of a LocalCluster with MALLOC_TRIM_THRESHOLD_=65536 (its
# ``distributed.nanny.pre-spawn-environ``), to give freed memory back to the system sooner. Setting
# that variable, whatever its value, also turns off glibc's dynamic mmap threshold: every array
# over 128 KiB (a 250,000-row column is 2 MB) is then mapped afresh and unmapped when freed, and
# each of its pages faults in again. Scoring 2M rows on 2 workers took 0.73 minor page faults per
# row against 0.085 in one process, and 15.9 s of CPU (system 4.3 s) against 10.7 s (system
# 1.6 s; medians of 3, bench/dask_cpu.py); one plain process given the variable faulted the same
# 0.72 per row (at 256 MB too: the value does not matter). Unset for the workers nbprod starts,
# they fault 0.085 per row and spend 11.7 s (system 1.7 s): docs/performance.md, "What limits
# the Dask speed-up". A variable the user set in this process's environment still reaches the
# workers.
# The workers' statistical profiler (every task thread's stack sampled each 10 ms, for the
# dashboard, which nbprod's cluster does not open) is off too: it cost the two workers 0.33 s
# of CPU at 2M rows (outside the task threads: 1.63 s against 1.30 s, medians of 3).
_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                  "distributed.worker.profile.enabled": False}


class _client:
    """A distributed Client: on the cluster at ``address``, or on a LocalCluster of its own."""

    def __init__(self, address: str | None, workers: int | None) -> None:
        self.address = address
        self.workers = workers
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> tuple[Any, str]:
        import logging

        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise NbprodUsageError(
                "engine='dask' needs dask and distributed: pip install 'nbprod[dask]'.") from None
        dask.config.set({"dataframe.convert-string": False})
        if self.address:
            try:
                self.client = Client(self.address, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise NbprodUsageError(
                    f"Cannot reach the Dask scheduler at {self.address!r}: {exc}. Is it running "
                    f"(dask scheduler), and is the address right (--scheduler or "
                    f"{SCHEDULER_ENV})?") from None
            return self.client, self.address
        n = self.workers or os.cpu_count() or 1
        _main_module_spec_restored()
        with dask.config.set(_WORKER_CONFIG):
            self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.ERROR)
        self.client = Client(self.cluster)
        return self.client, f"LocalCluster({n} workers)"

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

"""A Dask DataFrame scored lazily, for Dask users: :func:`score` (also ``nbprod.dask.score``).

``score(artifact, frame)`` builds a graph and computes nothing. It returns a :class:`Lazy`:

- ``predictions``, a Dask DataFrame of the scored rows, partition for partition: the columns
  and values ``nbprod score`` writes for the same rows (rejected rows left out, the bounds'
  policy applied), indexed by the input rows' own index so that they join back to the input;
- ``summary``, a Dask ``Delayed`` of the run's summary (the dict of ``nbprod score``'s summary
  JSON: row issues, input checks, drift, the prediction figures, performance with ``labels``),
  reduced from the partitions' measures.

Each partition is scored on a worker in chunks through :func:`nbprod.jobs.chunk.score_chunk`,
the code of every other run; every worker verifies and loads the artifact once
(:func:`nbprod.jobs.engines.worker_artifact`). Both outputs hang on the same partition tasks, so
``dask.compute(result.predictions, result.summary)`` (or ``result.compute()``, or writing the
predictions with ``compute=False`` and computing that with the summary) scores every
partition once; computing them one after the other scores the partitions twice, as in any
Dask graph.

The measures that only the whole batch can judge (the ids, for ids repeated across
partitions; a regressor's predictions, for exact quartiles) are spilled by the partition tasks
into ``work`` and read, then removed, by the summary's task: ``work`` must be reachable at the
same path by every worker (the default, a temporary directory of this process, is, on a
``LocalCluster``; it is removed when this process ends). Dask itself is imported only here,
when used.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from ..exceptions import NbprodUsageError


class Lazy(NamedTuple):
    """What :func:`score` returns: ``predictions`` (a Dask DataFrame) and ``summary`` (a Dask
    ``Delayed`` of the summary dict); unpack it, or :meth:`compute` both in one pass."""

    predictions: Any
    summary: Any

    def compute(self, **kwargs: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Both at once (every partition scored once): a pandas DataFrame and the summary."""
        import warnings

        import dask

        with warnings.catch_warnings():  # a frame and a Delayed computed together, as meant
            warnings.filterwarnings("ignore", "Computing mixed collections", UserWarning)
            return dask.compute(self.predictions, self.summary, **kwargs)


def score(artifact: Any, frame: Any, *, labels: str | Path | None = None,
          chunk_rows: int | None = None, max_rejected: float | None = None,
          work: str | Path | None = None) -> Lazy:
    """Score the Dask DataFrame ``frame`` with ``artifact`` (a path, or a loaded artifact),
    lazily; see the module docs.

    ``labels`` (a CSV or Parquet file of id and target, read here) adds the performance;
    ``chunk_rows`` bounds the rows scored at once within a partition; ``max_rejected`` is the
    ``input:rows`` threshold of every run; ``work`` is where the partitions spill for the summary.
    """
    from ..core.artifact import load
    from ..core.signing import ENV as KEYS_ENV
    from ..core.sources import DEFAULT_CHUNK_ROWS
    from .engines import is_dask_frame
    from .run import DEFAULT_MAX_REJECTED, check_max_rejected
    from .usage import whole_number

    if not is_dask_frame(frame):
        raise NbprodUsageError(f"score needs a Dask DataFrame (dask.dataframe); got "
                               f"{type(frame).__name__}. For a pandas DataFrame use "
                               "nbprod.load(path).score(df); for files, nbprod score.")
    import os

    import dask
    import dask.dataframe as dd

    root = Path(getattr(artifact, "root", artifact))
    keys = tuple(k for k in os.environ.get(KEYS_ENV, "").split(os.pathsep) if k.strip())
    art = load(root, trusted_keys=list(keys) or None)  # verified here: a bad artifact fails now
    chunk_rows = DEFAULT_CHUNK_ROWS if chunk_rows is None else whole_number(
        chunk_rows, "chunk_rows", minimum=1)
    max_rejected = check_max_rejected(DEFAULT_MAX_REJECTED if max_rejected is None
                                      else max_rejected)
    label_frame = label_keys = None
    if labels is not None:
        from ..core.dataio import read_frame
        from ..core.sources import canonical
        from ..monitoring.labelled import LabelKeys

        label_frame = canonical(read_frame(str(labels), art.reading_schema, what="labels"),
                                art.reading_schema, art.id_column)
        label_frame.attrs["source"] = str(labels)
        label_keys = LabelKeys(art, label_frame)
    own = work is None
    work_dir = Path(tempfile.mkdtemp(prefix="nbprod-lazy-") if own else work)
    work_dir.mkdir(parents=True, exist_ok=True)

    parts = frame.to_delayed()
    options = {"root": str(root), "keys": keys, "chunk_rows": chunk_rows,
               "work": str(work_dir), "labels": label_keys}
    scored = [dask.delayed(score_partition, pure=False, nout=2)(p, i, **options)
              for i, p in enumerate(parts)]
    meta = _meta(art)
    predictions = dd.from_delayed([s[0] for s in scored], meta=meta, verify_meta=False)
    engine = {"name": "dask", "lazy": True, "parts": len(parts), "chunk_rows": chunk_rows}
    summary = dask.delayed(summarize, pure=False)(
        [s[1] for s in scored], root=str(root), keys=keys, work=str(work_dir),
        input_path=f"<Dask DataFrame, {len(parts)} partitions>", engine=engine,
        labels=label_frame, labels_path=str(labels) if labels is not None else None,
        max_rejected=max_rejected)
    if own:  # spills of predictions computed without their summary go when this process ends
        atexit.register(shutil.rmtree, str(work_dir), True)
    return Lazy(predictions, summary)


def score_partition(frame: pd.DataFrame, index: int, *, root: str, keys: tuple[str, ...],
                    chunk_rows: int, work: str, labels: Any = None) -> tuple[pd.DataFrame, Any]:
    """One partition scored on a worker, in chunks: its predictions (indexed by the input rows'
    index) and its :class:`~nbprod.jobs.chunk.Measured` (rows numbered from the partition's
    first; None for a partition without rows)."""
    import numpy as np

    from ..core.sources import output_ids
    from .chunk import score_chunk
    from .engines import frame_chunks, with_output_ids, worker_artifact

    art = worker_artifact(root, keys)
    original = frame.index
    outs: list[pd.DataFrame] = []
    measured = None
    run = uuid.uuid4().hex[:8]  # spills of a recomputed partition never meet the old ones
    for j, chunk in enumerate(frame_chunks(frame, art, chunk_rows)):
        scored, m = score_chunk(art, chunk, f"{index:06d}-{j:05d}-{run}", spill_dir=Path(work),
                                labels=labels)
        out = with_output_ids(scored.output, art.id_column, output_ids)
        rows = scored.all_outputs.index.get_indexer(out.index)
        at = chunk.index[0] + np.asarray(scored.positions, dtype="int64")[rows]
        outs.append(out.set_axis(original[at], axis=0))
        measured = m if measured is None else measured.merge(m)
    if not outs:
        return _meta(art), None
    return (pd.concat(outs) if len(outs) > 1 else outs[0]), measured


def summarize(measures: list[Any], *, root: str, keys: tuple[str, ...], work: str,
              input_path: str, engine: dict[str, Any], labels: pd.DataFrame | None,
              labels_path: str | None, max_rejected: float) -> dict[str, Any]:
    """The summary of the partitions' measures merged in order (as ``nbprod score`` judges a
    batch); the spills it read are removed."""
    from ..exceptions import InputError
    from .chunk import merge_all
    from .engines import worker_artifact
    from .run import judge_measures

    art = worker_artifact(root, keys)
    present = [m for m in measures if m is not None]
    try:
        if not present:
            raise InputError(f"input {input_path} holds no rows.")
        measured = merge_all(present)
        engine = {**engine, "chunks": measured.chunks}
        run = judge_measures(art, measured, work=Path(work), input_path=input_path,
                             engine=engine, labels=labels, labels_path=labels_path,
                             max_rejected=max_rejected)
        return run.summary()
    finally:
        _remove_spills(Path(work), present)


def _remove_spills(work: Path, measures: list[Any]) -> None:
    for m in measures:
        for s in m.spilled:
            for name in (f"hash-{s.key}.npy", f"ids-{s.key}.parquet"):
                (work / name).unlink(missing_ok=True)
        for run in m.prediction.get("runs", []):
            Path(run).unlink(missing_ok=True)


def _meta(art: Any) -> pd.DataFrame:
    """The predictions' empty frame (columns and dtypes), from scoring a few rows of the
    artifact's training sample; every column as text when none of them scores."""
    from ..core.sources import canonical, output_ids
    from .engines import with_output_ids

    try:
        sample = canonical(art.snapshot_sample("train").head(20), art.reading_schema,
                           art.id_column)
        out = art.scorer.score_detailed(sample, part=True).output
        out = with_output_ids(out, art.id_column, output_ids)
        if len(out):
            return out.iloc[:0]
    except Exception:  # noqa: BLE001 - a sample that does not score leaves the plain columns
        pass
    from ..core.scoring import OUT_OF_BOUNDS

    return pd.DataFrame({c: pd.Series([], dtype="object") for c in art.scorer.output_columns
                         if c != OUT_OF_BOUNDS})

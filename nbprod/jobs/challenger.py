"""A challenger beside the champion in a scoring run: shadow and A/B.

Both run through the one scoring path: every chunk the champion scores
(:func:`nbprod.jobs.chunk.score_chunk`) is scored by the challenger too, from the same raw rows,
and measured the same way, so the challenger's figures are those of its own scoring run.

- **shadow** (:data:`SHADOW`): the output is the champion's, untouched. The two models' outputs
  are paired by input row: disagreement (classifier: share of rows whose label differs, mean and
  max absolute difference of the positive-class probability, or for more than two classes the
  largest absolute difference over the classes' probabilities; regressor: mean, p95 and max
  absolute difference) and, with labels, the statistics of the per-row loss difference
  (challenger minus champion; :mod:`nbprod.core.losses`). A row the champion scores but the
  challenger's own input contract rejects has no pair: it is counted (``unpaired``), with the
  challenger's rejection rules named, and left out of the paired figures.
- **A/B** (:data:`AB`): each row goes to an arm by its id (:func:`arm_of`); a row of the
  challenger's arm carries the challenger's prediction and ``served_by = "challenger"``. The
  output holds the rows the champion's contract accepts, as without A/B; a challenger-arm row
  that the challenger rejects (or drops out of its bounds) is served by the champion and counted
  as ``fallback``; it counts in neither arm's loss statistics.

A challenger that fails as a whole (every row rejected, a model that raises) costs the run
nothing: the champion's output is written, and the summary says what failed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.losses import LOSS_NAMES, LossStats, paired_stats, row_losses
from ..exceptions import NbprodError, NbprodUsageError

SHADOW, AB = "shadow", "ab"
SERVED_BY = "served_by"
AB_SALT = "nbprod-ab:"  # part of the hashed text: the rule of arm_of, stable across versions


def check_split(value: Any, flag: str = "--ab-split") -> float:
    """The challenger's share of an A/B run: a number strictly between 0 and 1."""
    try:
        share = float(value)
    except (TypeError, ValueError):
        share = math.nan
    if isinstance(value, bool) or not 0.0 < share < 1.0:
        raise NbprodUsageError(
            f"{flag} is the challenger's share of the rows, a number strictly between 0 and 1 "
            f"such as 0.1; got {str(value)[:40]!r}.")
    return share


def check_options(shadow: Any, ab: Any, ab_split: Any, engine: str, *,
                  flags: bool = False) -> tuple[str | None, str | None, float | None]:
    """The challenger of a run, its mode (:data:`SHADOW`, :data:`AB` or None) and the A/B share,
    checked by the same rules for ``nbprod score``'s flags and ``execute``'s parameters
    (``flags``: name the flags, ``--ab-split``, rather than the parameters, ``ab_split``)."""
    def name(p: str) -> str:
        return "--" + p.replace("_", "-") if flags else p

    if shadow and ab:
        raise NbprodUsageError(
            f"{name('shadow')} and {name('ab')} cannot be combined: a shadow challenger scores "
            "every row beside the champion, an A/B challenger serves a share of them. Give one "
            "of them.")
    if ab_split is not None and not ab:
        raise NbprodUsageError(f"{name('ab_split')} is the A/B challenger's share: give the "
                               "challenger too (--ab CHALLENGER --ab-split FRACTION).")
    if not (shadow or ab):
        return None, None, None
    mode = SHADOW if shadow else AB
    if engine != "local":
        drop = f"--engine {engine}" if flags else f"engine={engine!r}"
        raise NbprodUsageError(f"{name(mode)} runs on the local engine only: drop {drop}.")
    split = None
    if ab:
        if ab_split is None:
            raise NbprodUsageError(f"{name('ab')} needs {name('ab_split')}, the challenger's share "
                                   "of the rows (--ab-split 0.1 for 10%).")
        split = check_split(ab_split, name("ab_split"))
    return str(shadow or ab), mode, split


def canonical_id(value: Any) -> str | None:
    """The text of an id that the A/B arm is hashed from: an integral number as its integer
    (``42``, ``42.0`` and ``np.int64(42)`` alike), another number as Python's shortest ``repr``
    of the float, anything else (text) as it is. None for a missing id."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        f = float(value)
        return str(int(f)) if f.is_integer() else repr(f)
    return str(value)


def arm_of(ids: Any, split: float) -> np.ndarray:
    """True where the id goes to the challenger: the first 8 bytes of SHA-256 of
    ``"nbprod-ab:" + canonical_id(id)`` (UTF-8), read as a big-endian integer and divided by
    2**64, fall below ``split``. The same id gives the same arm in every run, whatever the
    chunking, engine, row order or Python's hash seed. A missing id goes to the champion."""
    out = np.zeros(len(ids), dtype=bool)
    for i, v in enumerate(pd.Series(ids).to_numpy(dtype=object)):
        text = canonical_id(v)
        if text is not None:
            h = hashlib.sha256((AB_SALT + text).encode("utf-8")).digest()
            out[i] = int.from_bytes(h[:8], "big") / 2.0**64 < split
    return out


def same_kind(champion: Any, challenger: Any, flag: str) -> None:
    """Refuse a challenger that cannot be compared with the champion row by row."""
    problems = []
    if champion.task != challenger.task:
        problems.append(f"the champion is a {champion.task} model, the challenger a {challenger.task} one")
    elif champion.task == "classification" and [str(c) for c in champion.classes or []] != [
            str(c) for c in challenger.classes or []]:
        problems.append(f"the classes differ ({_short(champion.classes)} against "
                        f"{_short(challenger.classes)})")
    if champion.target != challenger.target:
        problems.append(f"the targets differ ({champion.target!r} against {challenger.target!r})")
    if problems:
        raise NbprodUsageError(f"{flag} {challenger.name!r} cannot be compared with the champion "
                               f"{champion.name!r}: {'; '.join(problems)}. Give a challenger "
                               "trained for the same task and target.")


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class _Disagreement:
    """Mergeable disagreement figures of paired rows."""

    n: int = 0
    differ: int = 0  # classifier: rows whose label differs
    abs_sum: float = 0.0
    abs_max: float = 0.0
    runs: list[str] = field(default_factory=list)  # regressor: spilled sorted |difference|

    def add(self, diff_label: np.ndarray | None, absdiff: np.ndarray, spill: Path | None) -> None:
        self.n += len(absdiff)
        if diff_label is not None:
            self.differ += int(diff_label.sum())
        if len(absdiff):
            self.abs_sum += float(absdiff.sum())
            self.abs_max = max(self.abs_max, float(absdiff.max()))
            if spill is not None:
                from ..core.quantiles import spill as write

                spill.parent.mkdir(parents=True, exist_ok=True)
                write(spill, absdiff)
                self.runs.append(str(spill))

    def figures(self, task: str) -> dict[str, Any]:
        mean = self.abs_sum / self.n if self.n else None
        if task == "classification":
            return {"rows": self.n, "label_differs": self.differ,
                    "label_differs_share": self.differ / self.n if self.n else None,
                    "probability_abs_diff_mean": mean,
                    "probability_abs_diff_max": self.abs_max if self.n else None}
        return {"rows": self.n, "abs_diff_mean": mean, "abs_diff_p95": self._p95(),
                "abs_diff_max": self.abs_max if self.n else None}

    def _p95(self) -> float | None:
        if not self.n:
            return None
        from ..core.quantiles import quantile

        runs = [r for r in (np.load(p, mmap_mode="r", allow_pickle=False) for p in self.runs)
                if len(r)]
        return quantile(runs, self.n, 0.95)


class Challenger:
    """The challenger's side of a run (see the module docs): fed chunk by chunk, then summed up."""

    def __init__(self, champion: Any, challenger: Any, mode: str, *, split: float | None,
                 labels: pd.DataFrame | None, work: Path) -> None:
        self.champion, self.art, self.mode, self.split = champion, challenger, mode, split
        self.labels = labels
        self.keys = None
        if labels is not None:
            from ..monitoring.labelled import LabelKeys

            self.keys = LabelKeys(challenger, labels)
        from ..core.scoring import proba_column

        self.work = work / "challenger"
        self.measured: Any = None
        self.error: str | None = None
        self.disagreement = _Disagreement()
        self.unpaired = 0  # rows the champion scored and the challenger did not
        self.paired = LossStats()  # shadow: challenger loss minus champion loss, per row
        self.losses = {"champion": LossStats(), "challenger": LossStats()}
        self.arms = {"champion": 0, "challenger": 0}
        self.fallback = 0
        self.served: dict[str, list[pd.DataFrame]] = {"champion": [], "challenger": []}
        self.predicted: dict[str, dict[str, Any]] = {"champion": {}, "challenger": {}}
        self.task = "classifier" if champion.task == "classification" else "regressor"
        self.probas = ([proba_column(c) for c in champion.classes] if self.task == "classifier"
                       else [])

    # -- per chunk ---------------------------------------------------------------------------
    def chunk(self, k: int, frame: pd.DataFrame, scored: Any, out: pd.DataFrame,
              offset: int) -> pd.DataFrame:
        """Score chunk ``k`` (first row at ``offset``) with the challenger; the output to write."""
        if self.error is not None:
            return self._fallback_all(out, k) if self.mode == AB else out
        from .chunk import score_chunk

        try:
            mine, m = score_chunk(self.art, frame, f"c{k:06d}", spill_dir=self.work,
                                  labels=self.keys)
        except NbprodError as exc:
            self.error = f"the challenger failed on rows {offset:,}+: {str(exc)[:300]}"
            return self._fallback_all(out, k) if self.mode == AB else out
        self.measured = m if self.measured is None else self.measured.merge(m)
        pc = np.asarray(scored.positions, dtype="int64")
        pq = np.asarray(mine.positions, dtype="int64")
        common, ic, iq = np.intersect1d(pc, pq, assume_unique=True, return_indices=True)
        self.unpaired += len(pc) - len(common)
        a = scored.all_outputs.iloc[ic].reset_index(drop=True)
        b = mine.all_outputs.iloc[iq].reset_index(drop=True)
        if self.mode == SHADOW:
            self._compare(a, b, common + offset, k)
            return out
        return self._serve(out, scored, mine, k)

    def _compare(self, a: pd.DataFrame, b: pd.DataFrame, rows: np.ndarray, k: int) -> None:
        if self.task == "classifier":
            differ = (a["prediction"].astype(str).to_numpy() != b["prediction"].astype(str).to_numpy())
            pa, pb = a[self.probas].to_numpy(float), b[self.probas].to_numpy(float)
            gap = np.abs(pb - pa)
            absdiff = gap[:, 1] if len(self.probas) == 2 else gap.max(axis=1, initial=0.0)
            self.disagreement.add(differ, absdiff, None)
        else:
            absdiff = np.abs(b["prediction"].to_numpy(float) - a["prediction"].to_numpy(float))
            self.disagreement.add(None, absdiff, self.work / f"absdiff-{k:06d}.npy")
        if self.labels is not None and len(a):
            y, ok = self._y(a, rows)
            la, lb = self._loss(a[ok], y), self._loss(b[ok], y)
            self.losses["champion"] += LossStats.of(la)
            self.losses["challenger"] += LossStats.of(lb)
            self.paired += paired_stats(la, lb)

    def _y(self, outputs: pd.DataFrame, rows: np.ndarray) -> tuple[Any, np.ndarray]:
        """The valid labels of ``outputs`` (input rows ``rows``), and which rows have one."""
        from ..monitoring.performance import join_labels, label_values

        art, labels = self.champion, self.labels
        if art.id_column:
            y = join_labels(art, outputs, labels).y
        else:  # labels by row order
            values = labels[art.target].to_numpy(dtype=object)
            inside = rows < len(values)
            y = pd.Series([values[r] if ok else None for r, ok in zip(rows, inside, strict=True)],
                          index=outputs.index, dtype=object)
        known = y.notna().to_numpy()
        lv = label_values(y[known], art.task, art.classes)
        ok = np.zeros(len(y), dtype=bool)
        ok[np.flatnonzero(known)[lv.valid]] = True
        return np.asarray(lv.values.to_numpy() if hasattr(lv.values, "to_numpy") else lv.values), ok

    def _loss(self, outputs: pd.DataFrame, y: Any) -> np.ndarray:
        if self.task == "classifier":
            return row_losses(y, outputs[self.probas].to_numpy(float), task="classifier",
                              classes=self.champion.classes)
        return row_losses(y, outputs["prediction"].to_numpy(float), task="regressor")

    def _serve(self, out: pd.DataFrame, scored: Any, mine: Any, k: int) -> pd.DataFrame:
        """The A/B output of a chunk: the challenger's prediction on its arm's rows."""
        id_column = self.champion.id_column
        to_challenger = arm_of(out[id_column], self.split)
        # the output rows as input positions: an output is all_outputs without the rows the bounds
        # policy dropped, in the same order
        pos_out = _output_positions(scored)
        theirs = pd.Series(np.arange(len(mine.output)), index=_output_positions(mine))
        at = theirs.reindex(pos_out).to_numpy()
        has = ~np.isnan(at.astype(float))
        served = to_challenger & has
        self.fallback += int((to_challenger & ~has).sum())
        result = out.copy()
        cols = [c for c in out.columns if c != id_column and c in mine.output.columns]
        if served.any():
            src = mine.output.iloc[at[served].astype("int64")]
            for c in cols:
                column = result[c].astype(object) if result[c].dtype != src[c].dtype else result[c]
                column = column.copy()
                column.iloc[np.flatnonzero(served)] = src[c].to_numpy()
                result[c] = column
        result[SERVED_BY] = np.where(served, "challenger", "champion")
        self.arms["challenger"] += int(served.sum())
        self.arms["champion"] += int((~served).sum())
        for arm, pick in (("champion", ~served), ("challenger", served)):
            self._count(arm, result.loc[pick, "prediction"], k)
        if self.labels is not None:
            for arm, pick in (("champion", ~to_challenger), ("challenger", served)):
                part = result[pick].reset_index(drop=True)
                if not len(part):
                    continue
                y, ok = self._y(part, np.zeros(len(part), dtype="int64"))
                self.losses[arm] += LossStats.of(self._loss(part[ok], y))
                keep = self.keys.pick(part) if self.keys is not None else np.ones(len(part), bool)
                self.served[arm].append(part[keep].drop(columns=[SERVED_BY]))
        return result

    def _count(self, arm: str, pred: pd.Series, k: int) -> None:
        """An arm's served predictions, in the mergeable form of the summary's ``prediction``."""
        from .chunk import _prediction, merge_prediction

        art = self.champion if arm == "champion" else self.art
        part = _prediction(art, pred.to_frame("prediction"), self.work, f"{arm}-{k:06d}")
        have = self.predicted[arm]
        self.predicted[arm] = merge_prediction(have, part) if have else part

    def _arm_prediction(self, arm: str) -> dict[str, Any]:
        have = self.predicted[arm]
        if not have:
            return {}
        if "class_counts" in have:
            counts = have["class_counts"]
            return {"class_counts": {c: counts[c] for c in sorted(counts, key=lambda c: (-counts[c], c))}}
        from ..core.quantiles import describe

        return {k: float(v) for k, v in describe([Path(p) for p in have["runs"]],
                                                 have["moments"]).items()}

    def _fallback_all(self, out: pd.DataFrame, k: int) -> pd.DataFrame:
        to_challenger = arm_of(out[self.champion.id_column], self.split)
        self.fallback += int(to_challenger.sum())
        self.arms["champion"] += len(out)
        self._count("champion", out["prediction"], k)
        return out.assign(**{SERVED_BY: "champion"})

    # -- the whole batch ---------------------------------------------------------------------
    def summary(self, champion_rows: int, champion_prediction: dict[str, Any],
                champion_performance: dict[str, Any] | None) -> dict[str, Any]:
        """The summary's ``shadow`` or ``ab`` entry."""
        c = self.art
        head = {"name": c.name, "path": str(c.root), "artifact_id": c.manifest.get("artifact_id"),
                "digest": c.digest}
        out: dict[str, Any] = {"challenger_artifact": head, "error": self.error}
        m = self.measured
        loss = LOSS_NAMES[self.task]
        if self.mode == SHADOW:
            mine = self._own(m)
            out["champion"] = {"rows": champion_rows, "prediction": champion_prediction,
                               **({"metrics": _metrics(champion_performance)}
                                  if champion_performance is not None else {})}
            out["challenger"] = mine
            out["unpaired"] = {"rows": self.unpaired, "reason": _rejections(m)}
            out["disagreement"] = self.disagreement.figures(self.champion.task)
            if self.labels is not None:
                out["evidence"] = {"loss": loss, "paired": self.paired.to_dict(),
                                   "champion": self.losses["champion"].to_dict(),
                                   "challenger": self.losses["challenger"].to_dict()}
            return out
        out["split"] = self.split
        out["fallback"] = {"rows": self.fallback, "reason": _rejections(m)}
        for arm, art in (("champion", self.champion), ("challenger", self.art)):
            entry: dict[str, Any] = {"rows": self.arms[arm], "prediction": self._arm_prediction(arm)}
            if self.labels is not None:
                entry["metrics"] = self._arm_metrics(art, arm)
            out[arm] = entry
        if self.labels is not None:
            out["evidence"] = {"loss": loss, "champion": self.losses["champion"].to_dict(),
                               "challenger": self.losses["challenger"].to_dict()}
        return out

    def _own(self, m: Any) -> dict[str, Any]:
        """The challenger's figures as its own scoring run gives them."""
        if m is None:
            return {"rows": 0}
        from .run import _Labelled, _prediction_figures

        mine: dict[str, Any] = {"rows": m.scored, "rejected": m.issues.n_rejected,
                                "prediction": _prediction_figures(self.art, m)}
        if self.labels is not None:
            from ..monitoring.performance import evaluate_performance

            labelled = _Labelled(m.labelled if m.labelled is not None else pd.DataFrame(),
                                 m.positions, m.rows_in)
            try:
                perf, _ = evaluate_performance(self.art, labelled, self.labels, scored_rows=m.scored)
                mine["metrics"] = _metrics(perf)
            except NbprodError as exc:
                mine["metrics"] = {}
                self.error = self.error or f"the challenger's metrics: {str(exc)[:300]}"
        return mine

    def _arm_metrics(self, art: Any, arm: str) -> dict[str, Any]:
        from ..monitoring.performance import evaluate_performance
        from .run import _Labelled

        parts = self.served[arm]
        outputs = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=[self.champion.id_column, "prediction"])
        try:
            perf, _ = evaluate_performance(art, _Labelled(outputs, None, len(outputs)),
                                           self.labels, scored_rows=self.arms[arm])
        except NbprodError:
            return {}
        return _metrics(perf)


def _output_positions(scored: Any) -> np.ndarray:
    """The input positions of a scored chunk's output rows."""
    pos = np.asarray(scored.positions, dtype="int64")
    if len(scored.output) == len(pos):
        return pos
    keep = ~np.asarray(scored.out_of_bounds, dtype=bool)  # the bounds policy dropped the rest
    return pos[keep]


def _metrics(perf: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v.get("value") for k, v in ((perf or {}).get("metrics") or {}).items()}


def _rejections(m: Any) -> str | None:
    if m is None or not m.issues.n_rejected:
        return None
    return "the challenger's input contract rejected them: " + m.issues.describe("rejected")

"""``nbprod promote`` with the evidence over runs: the shadow and A/B runs recorded in MLflow for
the champion and the challenger are added up and judged (:mod:`nbprod.lifecycle.evidence`); a
promotion the evidence contradicts is refused unless forced, and the evidence is recorded on the
promoted version either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .evidence import (
    BETTER,
    DEFAULT_CONFIDENCE,
    DEFAULT_MIN_EFFECT,
    judge,
    overall,
    promotion_problem,
)


def evidence_for(target: str | Path, *, min_effect: float = DEFAULT_MIN_EFFECT,
                 confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Any]:
    """The evidence for promoting ``target`` over the current champion: ``name``, ``version``,
    ``champion`` (its version), ``runs`` (how many shadow/A/B runs), ``judged`` (mode ->
    :class:`~nbprod.lifecycle.evidence.Evidence`), ``verdict`` and ``problem``."""
    from ..tracking.registry import champion_version, version_of
    from ..tracking.runs import challenger_runs

    name, version, v = version_of(target)
    current = champion_version(name)
    runs: list[dict[str, Any]] = []
    if current is not None and current != version:
        _, _, champ = version_of(f"models:/{name}/{current}")
        runs = challenger_runs(name, (champ.tags or {}).get("nbprod.digest", ""),
                               (v.tags or {}).get("nbprod.digest", ""))
    judged = judge(runs, min_effect=min_effect, confidence=confidence)
    return {"name": name, "version": version, "champion": current, "runs": len(runs),
            "judged": judged, "verdict": overall(judged),
            "problem": promotion_problem(judged, str(current))}


def promote(target: str | Path, *, by: str, reason: str = "", force: bool = False,
            min_effect: float = DEFAULT_MIN_EFFECT, confidence: float = DEFAULT_CONFIDENCE,
            evidence: dict[str, Any] | None = None) -> dict[str, Any]:
    """Promote ``target`` as :func:`nbprod.tracking.registry.promote` does, with the evidence
    over runs: refused (unless ``force``) when it contradicts the promotion; a ``better``
    verdict stands in for a recorded comparison win. The result gains ``evidence``.
    ``evidence``: :func:`evidence_for`'s result for the same target, when already read."""
    from ..tracking.registry import promote as move

    ev = evidence if evidence is not None else evidence_for(target, min_effect=min_effect,
                                                             confidence=confidence)
    record = None
    if ev["judged"]:
        record = {"champion_version": ev["champion"], "runs": ev["runs"], "verdict": ev["verdict"],
                  **{mode: e.to_dict() for mode, e in ev["judged"].items()}}
    result = move(target, by=by, reason=reason, force=force, evidence=record,
                  evidence_problem=ev["problem"], earned=ev["verdict"] == BETTER)
    return {**result, "evidence": ev}

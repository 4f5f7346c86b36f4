"""The one representation of a check result, used by magics, reports, CLI and summary alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("pass", "warn", "fail", "skip")
_ORDER = {"skip": 0, "pass": 1, "warn": 2, "fail": 3}


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: status, the measured value(s), the threshold and a message."""

    name: str  # unique key, e.g. "overfit:roc_auc"
    kind: str  # overfit, metric, cv, baseline, data, bounds, input, ...
    status: str
    message: str
    value: Any = None
    threshold: Any = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}. Got {self.status!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def worst(statuses: list[str]) -> str:
    """The most severe status among ``statuses`` (``skip`` when there are none)."""
    return max(statuses, key=_ORDER.__getitem__, default="skip")


def fmt(value: float) -> str:
    """A measured value or threshold as a check's message shows it (3 significant digits)."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"

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
    """A measured value or threshold as a check's message shows it: :func:`number`, the format
    of the tables, so a value reads the same in the message and in the table beside it."""
    return number(value)


def number(value: Any, digits: int = 4) -> str:
    """A number as nbprod shows it to people, in the CLI, messages, reports and widgets alike:
    a whole number with thousands separators (``10,790``), from 1,000 up rounded to a whole
    number (``1,597``), below that ``digits`` significant digits (``0.9923``); never
    scientific notation for a number a person counts. NumPy's numbers too. Empty for None;
    NaN is ``nan``."""
    import numbers

    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    shown = f"{value:.{digits}g}"
    return f"{float(shown):,.0f}" if abs(float(shown)) >= 1000 else shown  # 999.96 is 1,000


def listing(items: list[Any], limit: int = 5) -> str:
    """Up to ``limit`` items, comma-separated, and how many more there are:
    ``a, b, c, d, e and 2 more``. Each item is on one line and cut to a sane length
    (:func:`nbprod.core.text.one_line`): a column name cannot break a message into lines."""
    from .text import one_line

    items = [one_line(i) for i in items]
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown

"""How check results show in a notebook: compact HTML plus a JSON bundle for frontends.

The JSON travels under ``application/vnd.nbprod.check+json`` (the nbprod JupyterLab extension
renders it); classic Notebook, VS Code and nbconvert fall back to the HTML in the same bundle.
"""

from __future__ import annotations

import html
from typing import Any

from ..core.results import CheckResult, number, worst
from ..core.tables import NO_MATH, badge, table

CHECK_MIME = "application/vnd.nbprod.check+json"
def _value(v: Any) -> str:
    if isinstance(v, float):
        return number(v)
    if isinstance(v, dict):
        return ", ".join(f"{k} {_value(x)}" for k, x in v.items() if x is not None)
    return "" if v is None else str(v)


class ResultsView:
    """A list of check results, displayable as a MIME bundle."""

    def __init__(self, results: list[CheckResult], title: str = "nbprod checks") -> None:
        self.results = results
        self.title = title

    @property
    def status(self) -> str:
        return worst([r.status for r in self.results])

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "status": self.status, "results": [r.to_dict() for r in self.results]}

    def html(self) -> str:
        rows = [{"status": badge(r.status), "check": f"<code>{html.escape(r.name)}</code>",
                 "result": r.message, "value": _value(r.value), "threshold": _value(r.threshold)}
                for r in self.results]
        grid = table(rows, ["status", "check", "result", "value", "threshold"],
                     raw=("status", "check"))
        return (f'<div class="nbprod-checks {NO_MATH}"><b>{html.escape(self.title)}</b> {badge(self.status)}'
                f"{grid}</div>")

    def text(self) -> str:
        return "\n".join(f"{r.status.upper():<5} {r.name}: {r.message}" for r in self.results)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {CHECK_MIME: self.to_json(), "text/html": self.html(), "text/plain": self.text()}

    def __repr__(self) -> str:
        return self.text()

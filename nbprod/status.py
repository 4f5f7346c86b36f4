"""``%nbprod status``: what is captured and which checks passed, as HTML, text and JSON.

The JSON travels under ``application/vnd.nbprod.status+json`` (drawn by the JupyterLab
extension); other frontends show the HTML in the same bundle.
"""

from __future__ import annotations

from typing import Any

from .core.tables import badge, table

STATUS_MIME = "application/vnd.nbprod.status+json"


class Status:
    def __init__(self, session) -> None:
        self.session = session

    def rows(self) -> list[dict[str, Any]]:
        s = self.session
        rows = [{"capture": "name", "state": s.name or "(not set: %nbprod init NAME)"}]
        for role in ("train", "valid"):
            snap = s.snapshots.get(role)
            state = snap.describe().split(": ", 1)[1] if snap else "(none)"
            rows.append({"capture": f"{role} snapshot", "state": state})
        fc = s.feature_capture
        rows.append({"capture": "features",
                     "state": f"{fc.fn_name}() captured as source ({len(fc.code.source.splitlines())} lines)"
                     if fc else "(none: %%nbprod features)"})
        mc = s.model_capture
        rows.append({"capture": "model",
                     "state": f"{mc.var} = {mc.class_name} ({mc.task})" if mc else "(none: %%nbprod model)"})
        return rows

    def _repr_html_(self) -> str:
        checks = [
            {"status": badge(c.status), "check": c.name, "message": c.message}
            for c in self.session.checks.values()
        ]
        out = ["<b>nbprod status</b>", table(self.rows(), ["capture", "state"])]
        out.append("<b>Checks</b>")
        out.append(table(checks, ["status", "check", "message"]) if checks else
                   "<p>No checks run yet.</p>")
        return "\n".join(out)

    def __repr__(self) -> str:
        lines = [f"{r['capture']}: {r['state']}" for r in self.rows()]
        lines += [f"check {c.name}: {c.status.upper()} - {c.message}"
                  for c in self.session.checks.values()] or ["checks: none run yet"]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"captures": self.rows(),
                "checks": [c.to_dict() for c in self.session.checks.values()]}

    def to_json(self) -> dict[str, Any]:
        from .core.results import worst

        checks = list(self.session.checks.values())
        return {"version": 1, "status": worst([c.status for c in checks]),
                "name": self.session.name, **self.to_dict()}

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {STATUS_MIME: self.to_json(), "text/html": self._repr_html_(), "text/plain": repr(self)}

"""``%nbprod status``: what is captured and which checks passed, as HTML, text and JSON, and
as a dashboard of four tabs (Capture, Checks, Data, Drift) where widgets work.

The JSON travels under ``application/vnd.nbprod.status+json`` (drawn by the JupyterLab
extension); other frontends show the HTML in the same bundle. Whether the dashboard or its
static twin is shown follows :func:`nbprod.jupyter.widgets.use_widgets`.
"""

from __future__ import annotations

import html
from typing import Any

from ..core.results import number
from ..core.tables import badge, table
from .explore import from_session
from .widgets import ExplorerPanel, Panel, ipywidgets_module, use_widgets

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
        from ..core.results import worst

        checks = list(self.session.checks.values())
        return {"version": 1, "status": worst([c.status for c in checks]),
                "name": self.session.name, **self.to_dict()}

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {STATUS_MIME: self.to_json(), "text/html": self._repr_html_(), "text/plain": repr(self)}


# -- the dashboard ------------------------------------------------------------------------------
TABS = ("Capture", "Checks", "Data", "Drift")


class StatusView:
    """The content of ``%nbprod status`` in four sections, built from :class:`nbprod.jupyter.status.Status`
    and the snapshots; displays as static HTML (with Status's own bundle entries)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.status = Status(session)

    def capture_html(self) -> str:
        from ..core.tables import table

        return table(self.status.to_dict()["captures"], ["capture", "state"])

    def checks_html(self, problems_only: bool = False) -> str:
        from ..core.tables import badge, table

        checks = [c for c in self.status.to_dict()["checks"]
                  if not problems_only or c["status"] in ("warn", "fail")]
        if not checks:
            return "<p>No problems.</p>" if problems_only else "<p>No checks run yet (%nbprod check KIND ...).</p>"
        rows = [{"status": badge(c["status"]), "check": c["name"], "message": c["message"]} for c in checks]
        return table(rows, ["status", "check", "message"])

    def data_html(self) -> str:
        from ..core.tables import table

        snaps = self.session.snapshots
        train = snaps.get("train")
        if train is None:
            return "<p>No training snapshot yet: %nbprod snapshot DF --role train --target COL.</p>"
        roles = [r for r in ("train", "valid") if r in snaps]
        rows = []
        for col in train.feature_columns:
            row: dict[str, Any] = {"column": col, "kind": train.schema[col].kind}
            for role in roles:
                s = snaps[role].data[col] if col in snaps[role].data.columns else None
                row[f"{role} nulls"] = "" if s is None else f"{s.isna().mean():.1%}"
                row[f"{role} values"] = "" if s is None else _describe(s, col in train.pii)
            rows.append(row)
        head = "".join(f"<p>{html.escape(snaps[r].describe())}</p>" for r in roles)
        target = train.y.value_counts(normalize=True).head(6)
        head += (f"<p>Target <code>{html.escape(train.target)}</code> (train): "
                 + html.escape(", ".join(f"{k} {v:.0%}" for k, v in target.items())) + "</p>"
                 if train.y.nunique() <= 20 else "")
        cols = ["column", "kind"] + [f"{r} {w}" for r in roles for w in ("nulls", "values")]
        return head + table(rows, cols)

    def explorer(self) -> Any:
        return from_session(self.session) if "train" in self.session.snapshots else None

    def drift_html(self) -> str:
        ex = self.explorer()
        if ex is None:
            return "<p>No training snapshot yet: nothing to compare.</p>"
        return ex.html()

    def sections(self) -> dict[str, str]:
        return {"Capture": self.capture_html(), "Checks": self.checks_html(),
                "Data": self.data_html(), "Drift": self.drift_html()}

    def html(self) -> str:
        body = "".join(f'<h3 class="nbprod-section">{k}</h3>{v}' for k, v in self.sections().items())
        return f'<div class="nbprod-status"><h2>nbprod status</h2>{body}</div>'

    def text(self) -> str:
        return repr(self.status)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data: dict[str, Any] = {}
        own = getattr(self.status, "_repr_mimebundle_", None)
        if own is not None:  # e.g. the JSON the JupyterLab extension reads
            got = own(include=include, exclude=exclude)
            data.update(got[0] if isinstance(got, tuple) else got)
        data["text/html"] = self.html()
        data["text/plain"] = self.text()
        return data

    def __repr__(self) -> str:
        return self.text()


def _describe(s: Any, hidden: bool) -> str:
    import pandas as pd

    if hidden:
        return "(PII: not shown)"
    s = s.dropna()
    if s.empty:
        return ""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return (f"mean {number(s.mean())}, sd {number(s.std())}, range [{number(s.min())}, "
                f"{number(s.max())}]")
    top = s.astype("object").value_counts(normalize=True).head(3)
    return f"{s.nunique()} distinct; " + ", ".join(f"{k} {v:.0%}" for k, v in top.items())


class Dashboard(Panel):
    """``%nbprod status`` as tabs: Capture, Checks, Data, Drift (train versus valid)."""

    def __init__(self, session: Any) -> None:
        w = ipywidgets_module()
        self.session = session
        self.capture = w.HTML()
        self.problems_only = w.ToggleButtons(options=[("all checks", False), ("problems only", True)],
                                             value=False)
        self.checks = w.HTML()
        self.data = w.HTML()
        self.drift_box = w.VBox()
        self.drift: ExplorerPanel | None = None
        self.refresh_button = w.Button(description="Refresh", icon="refresh",
                                       tooltip="read the captures again")
        self.tabs = w.Tab(children=[self.capture, w.VBox([self.problems_only, self.checks]),
                                    self.data, self.drift_box], titles=TABS)
        self.problems_only.observe(self._show_checks, names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.header = w.HTML()
        self.root = w.VBox([w.HBox([self.header, self.refresh_button]), self.tabs])
        self.refresh()

    def refresh(self) -> None:
        """Read the session again (after more captures or checks)."""
        w = ipywidgets_module()
        self.view = StatusView(self.session)
        name = self.session.name or "(unnamed model)"
        checks = list(self.session.checks.values())
        bad = sum(c.status == "fail" for c in checks)
        self.header.value = (f"<b>nbprod status: {html.escape(name)}</b> — {len(checks)} checks"
                             + (f", {bad} failed" if bad else ""))
        self.capture.value = self.view.capture_html()
        self._show_checks()
        self.data.value = self.view.data_html()
        ex = self.view.explorer()
        self.drift = ExplorerPanel(ex) if ex is not None else None
        self.drift_box.children = [self.drift.root if self.drift else
                                   w.HTML("<p>No training snapshot yet: nothing to compare.</p>")]

    def _show_checks(self, change: Any = None) -> None:
        self.checks.value = self.view.checks_html(self.problems_only.value)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # the panel, and the status JSON the JupyterLab extension reads for its side panel (it
        # renders it only where no widget manager shows the panel)
        return {STATUS_MIME: self.view.status.to_json(), **super()._repr_mimebundle_(include, exclude)}

    def html(self) -> str:
        return self.view.html()

    def text(self) -> str:
        return self.view.text()


def status_view(session: Any, mode: str | None = None, shell: Any = None) -> Dashboard | StatusView:
    """What ``%nbprod status`` displays: the dashboard, or its static twin."""
    return Dashboard(session) if use_widgets(mode, shell) else StatusView(session)

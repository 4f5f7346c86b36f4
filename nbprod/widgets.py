"""The in-notebook faces: the ``%nbprod status`` dashboard, the drift explorer and the review
queue as ipywidgets panels, each with a static HTML twin carrying the same content.

When a panel is shown rather than static HTML (:func:`use_widgets`), in this order:

1. ``mode="static"`` (``%nbprod status --static``) or ``NBPROD_WIDGETS=0`` -> static HTML;
2. ipywidgets cannot be imported -> static HTML;
3. ``mode="widgets"`` (``%nbprod status --widgets``) or ``NBPROD_WIDGETS=1`` -> panel;
4. otherwise a panel only in a kernel (``ZMQInteractiveShell``) that a widget-capable frontend
   drives: Jupyter Server (JupyterLab, Notebook 7) says so with ``JPY_SESSION_NAME``, VS Code
   with ``__vsc_ipynb_file__``, Colab by its module. papermill, nbconvert and nbclient start
   kernels that have none of these, and terminal IPython is no kernel: they get static HTML.

A panel's display bundle also carries the static HTML, for frontends without a widget manager.
The panels are plain objects holding their widgets (``.root`` is the top one), so tests and
scripts can set values and click buttons: ``panel.rows.value = "c-17"``,
``panel.accept_button.click()``. ipywidgets is imported only when a panel is built.
"""

from __future__ import annotations

import contextlib
import html
import importlib.util
import os
import sys
import warnings
from typing import Any

from .exceptions import NbprodError

ENV_VAR = "NBPROD_WIDGETS"
_ON = {"1", "true", "yes", "on", "widgets"}
_OFF = {"0", "false", "no", "off", "static"}


# -- the rule --------------------------------------------------------------------------------
def use_widgets(mode: str | None = None, shell: Any = None) -> bool:
    """Whether to show a widget panel (see the module docs for the rule)."""
    wanted = (mode or os.environ.get(ENV_VAR, "") or "auto").strip().lower()
    if wanted in _OFF:
        return False
    if importlib.util.find_spec("ipywidgets") is None:
        if wanted in _ON:
            warnings.warn("ipywidgets is not installed: showing static HTML "
                          "(pip install ipywidgets).", stacklevel=2)
        return False
    if wanted in _ON:
        return True
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None or not any(k.__name__ == "ZMQInteractiveShell" for k in type(shell).__mro__):
        return False
    return bool(os.environ.get("JPY_SESSION_NAME") or shell.user_ns.get("__vsc_ipynb_file__")
                or "google.colab" in sys.modules)


def _ipywidgets() -> Any:
    try:
        import ipywidgets
    except ImportError:
        raise NbprodError("The interactive panels need ipywidgets: pip install ipywidgets.") from None
    return ipywidgets


def bundle(obj: Any, mode: str | None = None) -> dict[str, Any]:
    """The display bundle of an Explorer or ReviewQueue: its panel, or its static HTML."""
    if use_widgets(mode):
        return obj.widget()._repr_mimebundle_()
    return {"text/html": obj.html(), "text/plain": repr(obj)}


class _Panel:
    root: Any

    def html(self) -> str:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data = dict(self.root._repr_mimebundle_())
        data["text/html"] = self.html()  # for frontends without a widget manager
        data["text/plain"] = self.text()
        return data

    def __repr__(self) -> str:
        return self.text()


# -- the drift explorer ----------------------------------------------------------------------
class ExplorerPanel(_Panel):
    """Pick a column (``column``), see both distributions (``plot``) and statistics (``stats``)."""

    def __init__(self, explorer: Any, column: Any = None) -> None:
        w = _ipywidgets()
        self.explorer = explorer
        note = f"<p>{html.escape(explorer.note)}</p>" if explorer.note else ""
        self.header = w.HTML(f"<h3>{html.escape(explorer.title)}</h3>{note}")
        choices = explorer.choices()
        self.column = w.Dropdown(options=choices, description="Column",
                                 value=explorer.resolve(column) if choices else None,
                                 layout=w.Layout(width="420px"))
        self.plot = w.Image(format="png", layout=w.Layout(max_width="460px"))
        self.stats = w.HTML()
        self.overview = w.Accordion(children=[w.HTML(explorer.overview_html())],
                                    titles=("All columns",), selected_index=None)
        self.column.observe(self._show, names="value")
        self.root = w.VBox([self.header, self.column, w.HBox([self.plot, self.stats]), self.overview])
        self._show()

    def select(self, column: str) -> None:
        """Show ``column`` (an input column or model output, by name)."""
        self.column.value = self.explorer.resolve(column)

    def _show(self, change: Any = None) -> None:
        key = self.column.value
        if key is None:
            self.stats.value = "<p>No column to explore.</p>"
            self.plot.layout.display = "none"
            return
        self.stats.value = self.explorer.column_html(key, image=False)
        png = self.explorer.plot(key)
        self.plot.value = png or b""
        self.plot.layout.display = None if png else "none"

    def html(self) -> str:
        return self.explorer.html(self.column.value)

    def text(self) -> str:
        return self.explorer.text(self.column.value)


# -- %nbprod status ----------------------------------------------------------------------------
TABS = ("Capture", "Checks", "Data", "Drift")


class StatusView:
    """The content of ``%nbprod status`` in four sections, built from :class:`nbprod.status.Status`
    and the snapshots; displays as static HTML (with Status's own bundle entries)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        from .status import Status

        self.status = Status(session)

    def capture_html(self) -> str:
        from .core.tables import table

        return table(self.status.to_dict()["captures"], ["capture", "state"])

    def checks_html(self, problems_only: bool = False) -> str:
        from .core.tables import badge, table

        checks = [c for c in self.status.to_dict()["checks"]
                  if not problems_only or c["status"] in ("warn", "fail")]
        if not checks:
            return "<p>No problems.</p>" if problems_only else "<p>No checks run yet (%nbprod check KIND ...).</p>"
        rows = [{"status": badge(c["status"]), "check": c["name"], "message": c["message"]} for c in checks]
        return table(rows, ["status", "check", "message"])

    def data_html(self) -> str:
        from .core.tables import table

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
        from .explore import from_session

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
        return f"mean {s.mean():.4g}, sd {s.std():.4g}, range [{s.min():.4g}, {s.max():.4g}]"
    top = s.astype("object").value_counts(normalize=True).head(3)
    return f"{s.nunique()} distinct; " + ", ".join(f"{k} {v:.0%}" for k, v in top.items())


class Dashboard(_Panel):
    """``%nbprod status`` as tabs: Capture, Checks, Data, Drift (train versus valid)."""

    def __init__(self, session: Any) -> None:
        w = _ipywidgets()
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
        w = _ipywidgets()
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
        from .status import STATUS_MIME

        return {STATUS_MIME: self.view.status.to_json(), **super()._repr_mimebundle_(include, exclude)}

    def html(self) -> str:
        return self.view.html()

    def text(self) -> str:
        return self.view.text()


def status_view(session: Any, mode: str | None = None, shell: Any = None) -> Dashboard | StatusView:
    """What ``%nbprod status`` displays: the dashboard, or its static twin."""
    return Dashboard(session) if use_widgets(mode, shell) else StatusView(session)


# -- the review queue --------------------------------------------------------------------------
_MARK = {"pending": "•", "accepted": "✓", "relabelled": "✎"}


class ReviewPanel(_Panel):
    """Pick a row (``rows``), read it, then ``accept_button`` or set ``label`` and
    ``relabel_button``; ``note`` and ``reviewer`` go with the decision."""

    def __init__(self, queue: Any) -> None:
        w = _ipywidgets()
        self.queue = queue
        self.header = w.HTML()
        self.rows = w.Select(options=self._options(), rows=12, description="Rows",
                             layout=w.Layout(width="460px"))
        self.detail = w.HTML()
        if queue.task == "classification":
            self.label = w.Dropdown(options=[(str(c), c) for c in queue.classes or []],
                                    description="Label")
        else:
            self.label = w.FloatText(description="Label")
        self.note = w.Text(description="Note", placeholder="why (optional)")
        self.reviewer = w.Text(value=queue.reviewer, description="Reviewer")
        self.accept_button = w.Button(description="Accept prediction", button_style="success", icon="check")
        self.relabel_button = w.Button(description="Relabel", button_style="warning", icon="pencil")
        self.message = w.HTML()
        self.accept_button.on_click(lambda _: self._decide("accept"))
        self.relabel_button.on_click(lambda _: self._decide("relabel"))
        self.rows.observe(self._show, names="value")
        form = w.VBox([self.detail, self.label, self.note, self.reviewer,
                       w.HBox([self.accept_button, self.relabel_button]), self.message])
        self.root = w.VBox([self.header, w.HBox([self.rows, form])])
        first = queue.pending()["id"].tolist() or queue.items["id"].tolist()
        self.rows.value = first[0] if first else None
        self._show()

    def _options(self) -> list[tuple[str, str]]:
        q = self.queue
        return [(f"{_MARK[q.status(r.id)]} {r.id}: {r.why}"[:90], r.id) for r in q.items.itertuples()]

    def _show(self, change: Any = None) -> None:
        import pandas as pd

        from .core.tables import table

        q = self.queue
        done = sum(1 for i in q.items["id"] if q.status(i) != "pending")
        self.header.value = (f"<h3>Review queue: {len(q)} rows ({done} decided)</h3>"
                             f"<p>Decisions go to <code>{html.escape(str(q.feedback))}</code>.</p>")
        key = self.rows.value
        for b in (self.accept_button, self.relabel_button):
            b.disabled = key is None
        if key is None:
            self.detail.value = "<p>Nothing to review.</p>" if not len(q) else ""
            return
        item = q.items.loc[q.items["id"] == key].iloc[0]
        row = q.row(key)
        facts = [{"": "why", "value": item["why"]}, {"": "status", "value": q.status(key)},
                 {"": "prediction", "value": item["prediction"]},
                 {"": "confidence", "value": item["confidence"]},
                 {"": "label", "value": item["label"]}, {"": "error", "value": item["error"]}]
        shown = [{"": k, "value": v} for k, v in row.items() if k not in ("prediction", "label")]
        self.detail.value = (f"<h4>Row <code>{html.escape(key)}</code></h4>" + table(facts, ["", "value"])
                             + "<details><summary>inputs and outputs</summary>"
                             + table(shown, ["", "value"]) + "</details>")
        guess = item["label"] if pd.notna(item["label"]) else item["prediction"]
        with contextlib.suppress(NbprodError):  # an out-of-bounds prediction may be no label
            self.label.value = q.coerce_label(guess)

    def _decide(self, decision: str) -> None:
        key = self.rows.value
        if key is None:
            return
        q = self.queue
        try:
            if decision == "accept":
                d = q.accept(key, note=self.note.value, reviewer=self.reviewer.value or None)
            else:
                d = q.relabel(key, self.label.value, note=self.note.value,
                              reviewer=self.reviewer.value or None)
        except NbprodError as exc:
            self.message.value = f'<p style="color:#cf222e">{html.escape(str(exc))}</p>'
            return
        self.message.value = (f"<p>Recorded: {html.escape(d.decision)} <code>{html.escape(d.id)}</code>"
                              f" as {html.escape(str(d.label))}.</p>")
        self.note.value = ""
        pending = q.pending()["id"].tolist()
        ids = q.items["id"].tolist()
        after = [i for i in ids[ids.index(key) + 1:] + ids[:ids.index(key)] if i in set(pending)]
        self.rows.unobserve(self._show, names="value")
        self.rows.options = self._options()
        self.rows.value = after[0] if after else key
        self.rows.observe(self._show, names="value")
        self._show()

    def html(self) -> str:
        return self.queue.html()

    def text(self) -> str:
        return repr(self.queue)

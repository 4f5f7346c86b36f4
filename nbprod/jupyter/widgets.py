"""The in-notebook panels: the drift explorer and the review queue as ipywidgets panels, each
with a static HTML twin carrying the same content, and the rule that chooses between them
(the ``%nbprod status`` dashboard, :mod:`nbprod.jupyter.status`, follows the same rule).

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

from ..exceptions import NbprodError

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


def ipywidgets_module() -> Any:
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


class Panel:
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
class ExplorerPanel(Panel):
    """Pick a column (``column``), see both distributions (``plot``) and statistics (``stats``)."""

    def __init__(self, explorer: Any, column: Any = None) -> None:
        w = ipywidgets_module()
        self.explorer = explorer
        note = f"<p>{html.escape(explorer.note)}</p>" if explorer.note else ""
        self.header = w.HTML(f"<h3>{html.escape(explorer.title)}</h3>{note}")
        choices = explorer.choices()
        self.column = w.Dropdown(options=choices, description="Column",
                                 value=explorer.resolve(column) if choices else None,
                                 layout=w.Layout(width="420px"))
        self.plot = w.HTML(layout=w.Layout(max_width="460px"))  # an inline SVG chart
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
        svg = self.explorer.plot(key)
        self.plot.value = svg or ""
        self.plot.layout.display = None if svg else "none"

    def html(self) -> str:
        return self.explorer.html(self.column.value)

    def text(self) -> str:
        return self.explorer.text(self.column.value)


# -- the review queue --------------------------------------------------------------------------
_MARK = {"pending": "•", "accepted": "✓", "relabelled": "✎"}


class ReviewPanel(Panel):
    """Pick a row (``rows``), read it, then ``accept_button`` or set ``label`` and
    ``relabel_button``; ``note`` and ``reviewer`` go with the decision."""

    def __init__(self, queue: Any) -> None:
        w = ipywidgets_module()
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

        from ..core.tables import table

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
        if isinstance(item.get("contributions"), str):  # why the model said it (docs/explain.md)
            facts.append({"": "top contributions", "value": item["contributions"]})
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

"""The in-notebook faces, driven as a person would: set values, click buttons, read the effects.

The dashboard (`%nbprod status`), the drift explorer and the review queue run on real ipywidgets
objects; outside a widget frontend the same content comes as static HTML.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError

import nbprod
from nbprod.jupyter.status import TABS, Dashboard
from nbprod.jupyter.widgets import bundle
from nbprod.lifecycle.feedback import read as read_feedback

from .conftest import run
from .test_review import churn, package_classifier, score

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
SVG = "<svg "


@pytest.fixture
def ishell(in_tmp, monkeypatch):
    """The process's InteractiveShell (so `display` publishes through it), capturing displays."""
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.delenv("NBPROD_WIDGETS", raising=False)
    cfg = Config()
    cfg.HistoryManager.enabled = False
    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance(config=cfg)
    sh.display_pub = CapturingDisplayPublisher()
    sh.run_line_magic("load_ext", "nbprod")
    yield sh
    sh.reset()
    sh.cleanup()  # gives sys.modules['__main__'] back
    InteractiveShell.clear_instance()


@pytest.fixture(scope="module")
def churn_artifact(tmp_path_factory):
    return package_classifier(tmp_path_factory.mktemp("widgets") / "art")


def _shown(sh) -> dict:
    return sh.display_pub.outputs[-1]["data"]


MODEL_CELL = '''%%nbprod model
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
pre = ColumnTransformer([("num", StandardScaler(), ["spend", "visits", "tenure", "spend_per_visit"]),
                         ("cat", OneHotEncoder(handle_unknown="ignore"), ["channel"])])
model = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(
    features(train.drop(columns=["churned", "customer"])), train["churned"])
'''

FEATURES_CELL = '''%%nbprod features
def features(df):
    return df.assign(spend_per_visit=df["spend"] / (df["visits"] + 1))
'''


def _capture(sh) -> None:
    sh.user_ns["train"] = churn(800, 1)
    sh.user_ns["valid"] = churn(300, 2, shift=1.0)  # a validation set unlike training
    run(sh, "%nbprod init churn")
    run(sh, "%nbprod snapshot train --role train --target churned --id customer --pii email")
    run(sh, "%nbprod snapshot valid --role valid --target churned --id customer --pii email")
    run(sh, FEATURES_CELL)
    run(sh, MODEL_CELL)
    run(sh, "%nbprod check metric roc_auc --min 0.999")  # fails: shows among the checks


def test_import_nbprod_stays_cheap():
    code = ("import sys, nbprod\n"
            "assert 'pandas' not in sys.modules and 'ipywidgets' not in sys.modules\n"
            "import nbprod.jupyter.widgets, nbprod.jupyter.review, nbprod.jupyter.explore\n"
            "assert 'ipywidgets' not in sys.modules, 'widgets must import ipywidgets lazily'\n"
            "import types\n"
            "print(isinstance(nbprod.review, types.FunctionType),\n"
            "      isinstance(nbprod.explore, types.FunctionType))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]  # plain functions, whatever was imported


def test_status_magic_outside_a_widget_frontend_shows_static_html(ishell):
    _capture(ishell)
    run(ishell, "%nbprod status")
    data = _shown(ishell)
    assert WIDGET_MIME not in data
    page = data["text/html"]
    heads = [page.index(f">{t}</h3>") for t in TABS]
    assert heads == sorted(heads)  # Capture, Checks, Data, Drift in that order
    assert "train snapshot" in page and "sklearn.pipeline.Pipeline" in page
    assert "metric:roc_auc" in page
    assert "(PII: not shown)" in page and "u1.0@example.com" not in page
    assert "Validation versus training" in page and "<svg " in page
    assert "spend" in page and "drifted" in page
    assert "train snapshot:" in data["text/plain"]
    from nbprod.jupyter.status import Status

    own = getattr(Status, "_repr_mimebundle_", None)
    if own is not None:  # whatever Status itself carries (the JupyterLab extension's JSON) stays
        session = ishell.magics_manager.registry["NbprodMagics"].session
        assert set(own(Status(session))) <= set(data)


def test_status_magic_flags_choose_the_face(ishell, monkeypatch):
    _capture(ishell)
    run(ishell, "%nbprod status --widgets")
    data = _shown(ishell)
    assert WIDGET_MIME in data
    from nbprod.jupyter.status import STATUS_MIME

    # the JupyterLab extension's JSON rides along (it renders it only without a widget manager)
    assert data[STATUS_MIME]["name"] == "churn"
    assert "metric:roc_auc" in [c["name"] for c in data[STATUS_MIME]["checks"]]
    assert all(f">{t}</h3>" in data["text/html"] for t in TABS)  # the same content, as fallback
    monkeypatch.setenv("NBPROD_WIDGETS", "1")
    run(ishell, "%nbprod status")
    assert WIDGET_MIME in _shown(ishell)
    run(ishell, "%nbprod status --static")
    assert WIDGET_MIME not in _shown(ishell)
    with pytest.raises(UsageError, match="not allowed with"):
        run(ishell, "%nbprod status --static --widgets")
    with pytest.raises(UsageError, match="did you mean '--static'"):
        run(ishell, "%nbprod status --statik")


def test_dashboard_tabs_respond_to_the_controls(ishell):
    _capture(ishell)
    session = ishell.magics_manager.registry["NbprodMagics"].session
    d = Dashboard(session)
    assert d.tabs.titles == TABS
    assert "churned" in d.data.value and "(PII: not shown)" in d.data.value

    assert "metric:roc_auc" in d.checks.value
    d.problems_only.value = True
    assert "metric:roc_auc" in d.checks.value and "FAIL" in d.checks.value and "PASS" not in d.checks.value
    session.check("metric", metric="roc_auc", min=0.5)  # now it passes
    d.refresh_button.click()
    assert "No problems." in d.checks.value
    d.problems_only.value = False
    assert "PASS" in d.checks.value

    d.tabs.selected_index = TABS.index("Drift")
    assert d.drift.column.value in (("inputs", "channel"), ("inputs", "spend"))  # drifted first
    d.drift.select("spend")
    stats = d.drift.explorer.details("spend")
    psi = next(r for r in stats["statistics"] if r["statistic"] == "PSI")
    assert stats["drifted"] and psi["exceeded"]
    assert f"<td>{psi['value']}</td>" in d.drift.stats.value
    assert d.drift.plot.value.startswith(SVG) and "spend (drifted)" in d.drift.plot.value
    assert d.drift.plot.layout.display is None
    d.drift.select("email")  # PII: no distribution to show
    assert "only null counts" in d.drift.stats.value and d.drift.plot.layout.display == "none"
    d.drift.select("tenure")
    assert "no drift" in d.drift.stats.value


def test_explorer_reads_a_run_its_summary_and_the_summary_file(churn_artifact, tmp_path):
    run_ = score(churn_artifact, tmp_path, "x", churn(800, 21, shift=1.0), "churned")
    s = run_.summary()
    assert set(s["drift"]["profiles"]["columns"]["email"]) == {"type", "count", "null_count"}
    summary_file = tmp_path / "x.summary.json"
    for source in (run_, s, str(summary_file)):
        ex = nbprod.explore(source)
        assert ex.columns[0] in s["drift"]["dataset"]["drifted_columns"]
        assert set(ex.outputs) == set(s["drift"]["predictions"]["columns"])
        d = ex.details("spend")
        psi = next(r for r in d["statistics"] if r["statistic"] == "PSI")
        assert psi["value"] == f"{s['drift']['columns']['spend']['psi']:.4g}"
        assert d["summary"][0] == {"": "rows", "reference": "1200", "current": "800"}  # train, batch
        assert ex.plot("email") is None and ex.details("email")["hidden"]

    p = nbprod.explore(str(summary_file)).widget()
    p.select("channel")
    assert "phone" in p.stats.value and "category frequencies (PSI)" in p.stats.value
    p.column.value = ("predictions", "proba_1")
    assert p.plot.value.startswith(SVG) and "model output" in p.stats.value
    static = bundle(nbprod.explore(run_))  # no widget frontend here: static HTML, same content
    assert WIDGET_MIME not in static and "<svg " in static["text/html"]

    # a summary written before batch profiles were kept: the batch is binned again from the files
    old = json.loads(summary_file.read_text())
    del old["drift"]["profiles"]
    again = nbprod.explore(old)
    assert "binned again" in again.note
    assert again.details("spend")["statistics"] == nbprod.explore(s).details("spend")["statistics"]


def test_review_panel_records_what_the_reviewer_clicks(churn_artifact, tmp_path):
    run_ = score(churn_artifact, tmp_path, "r", churn(500, 22, flip=0.2), "churned")
    fb = tmp_path / "feedback.parquet"
    q = nbprod.review(run_, feedback=fb, reviewer="ana")
    ids = q.items["id"].tolist()
    panel = q.widget()
    assert panel.rows.value == ids[0] and f"<code>{ids[0]}</code>" in panel.detail.value

    panel.note.value = "checked the invoice"
    panel.accept_button.click()
    got = read_feedback(fb)
    assert got[["id", "decision", "reviewer", "note"]].values.tolist() == [
        [ids[0], "accept", "ana", "checked the invoice"]]
    assert got["label"].iloc[0] == q.row(ids[0])["prediction"]
    assert panel.rows.value == ids[1]  # on to the next pending row
    assert panel.rows.options[0][0].startswith("✓") and "Recorded: accept" in panel.message.value

    panel.rows.value = ids[2]
    other = 1 - int(q.row(ids[2])["prediction"])
    panel.label.value = other
    panel.reviewer.value = "bo"
    panel.relabel_button.click()
    panel.rows.value = ids[0]  # second thoughts on the first row: the last decision wins
    panel.label.value = 1 - int(q.row(ids[0])["prediction"])
    panel.relabel_button.click()

    got = read_feedback(fb).set_index("id")
    assert list(got.index) == [ids[2], ids[0]]  # one row per id, in the order of last decisions
    assert (got.loc[ids[2], "label"], got.loc[ids[2], "reviewer"]) == (other, "bo")
    assert got.loc[ids[0], "decision"] == "relabel" and got.loc[ids[0], "note"] == ""
    assert "(2 decided)" in panel.header.value

    static = bundle(q)
    assert WIDGET_MIME not in static and "accepted" not in static["text/html"]
    assert static["text/html"].count("relabelled") == 2


@pytest.mark.slow
def test_a_real_kernel_gets_static_html_unless_a_widget_frontend_drives_it(tmp_path):
    """papermill/nbclient kernels have no frontend: static HTML; Jupyter Server's mark: widgets."""
    import nbformat.v4 as nbf
    from nbclient import NotebookClient

    cells = [
        "%load_ext nbprod\nimport pandas as pd, numpy as np\n"
        "train = pd.DataFrame({'x': np.arange(50.0), 'c': ['a', 'b'] * 25, 'y': [0, 1] * 25})",
        "%nbprod snapshot train --role train --target y",
        "%nbprod status",
        "import os\nos.environ['JPY_SESSION_NAME'] = 'train.ipynb'  # as Jupyter Server sets it",
        "%nbprod status",
        "%nbprod status --static",
    ]
    nb = nbf.new_notebook(cells=[nbf.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    def data(i: int) -> dict:
        shown = [o for o in nb.cells[i].outputs if o.output_type == "display_data"]
        assert shown, nb.cells[i].outputs
        return shown[-1]["data"]

    assert WIDGET_MIME not in data(2) and ">Drift</h3>" in data(2)["text/html"]
    assert WIDGET_MIME in data(4) and ">Drift</h3>" in data(4)["text/html"]
    assert WIDGET_MIME not in data(5)


@pytest.mark.slow
def test_explorer_and_review_from_an_executed_report_notebook(churn_artifact, tmp_path):
    import papermill as pm

    batch = churn(600, 23, shift=1.0, flip=0.2)
    inputs, labels = tmp_path / "in.csv", tmp_path / "labels.csv"
    batch.drop(columns=["churned"]).to_csv(inputs, index=False)
    batch[["customer", "churned"]].to_csv(labels, index=False)
    params = {"input_path": str(inputs), "output_path": str(tmp_path / "pred.csv"),
              "labels_path": str(labels), "artifact_path": str(churn_artifact), "log_to_mlflow": False}
    pm.execute_notebook(str(churn_artifact / "score.ipynb"), str(tmp_path / "with.ipynb"),
                        parameters={**params, "summary_path": str(tmp_path / "s.json")},
                        progress_bar=False)
    pm.execute_notebook(str(churn_artifact / "score.ipynb"), str(tmp_path / "without.ipynb"),
                        parameters=params, progress_bar=False)
    summary = json.loads((tmp_path / "s.json").read_text())

    with_summary = nbprod.explore(tmp_path / "with.ipynb")
    assert "binned again" not in with_summary.note
    recomputed = nbprod.explore(tmp_path / "without.ipynb")  # from the notebook's parameters
    assert "binned again" in recomputed.note
    for ex in (with_summary, recomputed):
        assert sorted(ex.columns[:2]) == sorted(summary["drift"]["dataset"]["drifted_columns"][:2])
        for col, st in summary["drift"]["columns"].items():
            got = ex.groups["inputs"].stats[col]
            assert got["drifted"] == st["drifted"]
            for stat in ("psi", "wasserstein", "new_share", "null_rate_change"):
                if stat in st:  # PII columns have null counts only
                    assert got[stat] == pytest.approx(st[stat], rel=1e-9, abs=1e-12), (col, stat)

    q = nbprod.review(tmp_path / "without.ipynb", feedback=tmp_path / "fb.parquet")
    same = nbprod.review(str(tmp_path / "s.json"), feedback=tmp_path / "fb.parquet")
    assert q.items["id"].tolist() == same.items["id"].tolist() and len(q) > 0
    assert "large_error" in q.items["reasons"].iloc[0]  # labels found through the parameters
    assert np.isfinite(q.items["confidence"]).all()
    assert isinstance(q.row(q.items["id"].iloc[0])["spend"], float)  # inputs read as well
    pd.testing.assert_frame_equal(q.outputs, pd.read_csv(tmp_path / "pred.csv"))


@pytest.mark.slow
def test_the_examples_in_docs_widgets_run(tmp_path):
    """docs/widgets.md's Python blocks, in order, as one script in an empty directory."""
    import re

    from .conftest import ROOT

    text = (ROOT / "docs" / "widgets.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 5
    (tmp_path / "example.py").write_text("\n".join(blocks), encoding="utf-8")
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(pd.read_parquet(tmp_path / "feedback.parquet")) == 3

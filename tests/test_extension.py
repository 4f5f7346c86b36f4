"""The JupyterLab extension, end to end: a real JupyterLab on localhost, Debian's chromium
driven by Playwright, a notebook that uses the magics on scikit-learn's bundled breast cancer
data. It checks the badges, the side panel (jump to cell, Package writes an artifact) and the
MIME renderers, and keeps screenshots under test-output/screenshots/.

Also here, without a browser: the extension is installed and enabled, and the JSON bundles the
extension draws keep the HTML that classic Notebook, VS Code and nbconvert show instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .conftest import SCREENSHOTS

ROOT = Path(__file__).resolve().parents[1]
LAB_START_TIMEOUT_S = 90
RUN_ALL_TIMEOUT_S = 240
PACKAGE_TIMEOUT_S = 180
NOTEBOOK = "breast_cancer.ipynb"

pytestmark = pytest.mark.slow

# (cell source, badge kind, badge status after a run)
CELLS: list[tuple[str, str | None, str | None]] = [
    ("%load_ext nbprod\n"
     "import pandas as pd\n"
     "from sklearn.datasets import load_breast_cancer\n"
     "from sklearn.model_selection import train_test_split\n"
     "df = load_breast_cancer(as_frame=True).frame\n"
     "df.columns = [c.replace(' ', '_') for c in df.columns]\n"
     "train, valid = train_test_split(df, test_size=0.3, random_state=0, stratify=df['target'])",
     None, None),
    ("%nbprod snapshot train --role train --target target\n"
     "%nbprod snapshot valid --role valid --target target", "snapshot", "pass"),
    ("%%nbprod features\n"
     "def features(df):\n"
     "    out = df.copy()\n"
     "    out['area_ratio'] = out['worst_area'] / out['mean_area']\n"
     "    return out", "features", "pass"),
    ("%%nbprod model\n"
     "from sklearn.linear_model import LogisticRegression\n"
     "from sklearn.pipeline import make_pipeline\n"
     "from sklearn.preprocessing import StandardScaler\n"
     "model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(\n"
     "    features(train.drop(columns='target')), train['target'])", "model", "pass"),
    ("%nbprod check metric roc_auc --min 0.95", "check", "pass"),
    ("%nbprod check overfit --metric roc_auc --max-gap 0.2 --warn-gap 0.0001", "check", "warn"),
    ("%nbprod check metric accuracy --min 0.999", "check", "fail"),
    ("%nbprod status", "status", "fail"),
    ("%nbprod package artifact-nb --force --overwrite --no-mlflow", "package", "warn"),
    # refused (a check failed, no --force): the last cell, as running all stops at its error
    ("%nbprod package artifact-refused --no-mlflow", "package", "fail"),
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Breast cancer model, captured with nbprod")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source, _, _ in CELLS]
    return nb


# -- no browser -------------------------------------------------------------------------
def test_labextension_is_installed_and_enabled() -> None:
    jupyter = Path(sys.executable).with_name("jupyter")
    out = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "NO_COLOR": "1"})
    listing = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    assert re.search(r"nbprod v\S+ enabled\s+OK", listing), listing
    package = json.loads((Path(sys.prefix) / "share/jupyter/labextensions/nbprod/package.json")
                         .read_text())
    assert package["jupyterlab"]["_build"]["mimeExtension"] == "./mimeExtension"


def test_bundles_carry_json_for_lab_and_html_for_other_frontends(tmp_path: Path) -> None:
    from nbconvert import HTMLExporter

    from nbprod.capture.package import PACKAGE_MIME, PackageResult
    from nbprod.core.results import CheckResult
    from nbprod.jupyter.display import CHECK_MIME, ResultsView
    from nbprod.jupyter.status import STATUS_MIME, Status

    results = [CheckResult("metric:roc_auc", "metric", "pass", "ROC AUC 0.99 meets >= 0.95", 0.99,
                           {"min": 0.95}),
               CheckResult("metric:accuracy", "metric", "fail", "accuracy 0.96 below 0.999", 0.96)]
    check = ResultsView(results, title="nbprod check metric")._repr_mimebundle_()

    class _Session:
        name = "cancer"
        snapshots: dict[str, Any] = {}
        feature_capture = None
        model_capture = None
        checks = {r.name: r for r in results}

    status = Status(_Session())._repr_mimebundle_()
    manifest = {"name": "cancer", "task": "classification", "model": {"class": "Pipeline"},
                "files": {"a": {}, "b": {}}, "checks": [r.to_dict() for r in results],
                "override": {"by": "me", "at": "now", "checks": ["metric:accuracy"]}}
    package = PackageResult(path=tmp_path / "art", manifest=manifest, digest="ab" * 32,
                            mlflow=None, parity_rows=50)._repr_mimebundle_()

    for bundle, mime in ((check, CHECK_MIME), (status, STATUS_MIME), (package, PACKAGE_MIME)):
        assert set(bundle) == {mime, "text/html", "text/plain"}
        json.dumps(bundle[mime])  # JSON-able as sent by the kernel
        assert bundle[mime]["version"] == (2 if mime == PACKAGE_MIME else 1)
    assert status[STATUS_MIME]["status"] == "fail"
    assert [c["name"] for c in status[STATUS_MIME]["checks"]] == ["metric:roc_auc", "metric:accuracy"]
    assert package[PACKAGE_MIME]["outcome"] == "packaged"
    assert package[PACKAGE_MIME]["status"] == "warn"  # forced past a failed check
    assert package[PACKAGE_MIME]["files"] == 2

    # nbconvert (like classic Notebook and VS Code) does not know the JSON types: HTML shows.
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%nbprod check metric", outputs=[
        nbformat.v4.new_output("display_data", data=b) for b in (check, status, package)])]
    exporter = HTMLExporter(mathjax_url="", require_js_url="")
    html, _ = exporter.from_notebook_node(nb)
    assert 'class="nbprod-checks ' in html
    assert "<b>nbprod status</b>" in html and "nbprod: packaged" in html, html[-3000:]


# -- JupyterLab in a browser ------------------------------------------------------------
class Lab:
    def __init__(self, url: str, root: Path, log: Path, proc: subprocess.Popen) -> None:
        self.url, self.root, self.log, self.proc = url, root, log, proc

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A real JupyterLab on a free localhost port, with its own settings and runtime dirs."""
    base = tmp_path_factory.mktemp("lab")
    root, home = base / "root", base / "home"
    root.mkdir()
    settings = home / "settings"
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    nbformat.write(demo_notebook(), str(root / NOTEBOOK))

    port = _free_port()
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ,
           "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
           "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "MPLBACKEND": "Agg",
           # `%nbprod status` as its static view (with the JSON this extension draws), not the
           # ipywidgets dashboard it shows by default in JupyterLab
           "NBPROD_WIDGETS": "0"}
    log = base / "lab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
           "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    server = Lab(url, root, log, proc)
    deadline = time.monotonic() + LAB_START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}; its log:\n{server.log_text()}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"JupyterLab did not answer in {LAB_START_TIMEOUT_S} s; its log:\n"
                        f"{server.log_text()}")
        time.sleep(0.3)
    yield server
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def page(lab: Lab, browser: Any) -> Iterator[Any]:
    """The demo notebook open in JupyterLab, every cell run."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    pg = context.new_page()
    console: list[str] = []
    pg.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    pg.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    pg.nbprod_console = console
    with explained(lab, pg, "setup"):
        pg.goto(f"{lab.url}/lab/tree/{NOTEBOOK}", timeout=60_000)
        pg.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        _wait_kernel_idle(pg, 120_000)
        pg.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        # every magic cell has a badge with a final status, and the kernel is idle again
        pg.wait_for_function(
            """n => { const b = [...document.querySelectorAll('.nbprod-CellBadge')];
                      return b.length === n && b.every(x => !['idle', 'running']
                          .includes(x.dataset.nbprodStatus)); }""",
            arg=sum(1 for _, kind, _ in CELLS if kind), timeout=RUN_ALL_TIMEOUT_S * 1000)
        _wait_kernel_idle(pg, 60_000)
    yield pg
    context.close()


@contextmanager
def explained(lab: Lab, pg: Any, name: str) -> Iterator[None]:
    """On failure: a screenshot, the browser console and JupyterLab's log, then re-raise."""
    try:
        yield
    except BaseException:
        shot = _shoot(pg, f"failure-{name}")
        print(f"screenshot: {shot}")
        print("browser console:\n" + "\n".join(getattr(pg, "nbprod_console", [])[-200:]))
        print("JupyterLab log (tail):\n" + lab.log_text()[-20_000:])
        raise


def _wait_kernel_idle(pg: Any, timeout_ms: int) -> None:
    pg.wait_for_function(
        """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                   const k = w && w.sessionContext && w.sessionContext.session
                       && w.sessionContext.session.kernel;
                   return !!k && k.status === 'idle'; }""", timeout=timeout_ms)


def _shoot(pg: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=False)
    return path


def _cell(pg: Any, index: int) -> Any:
    """The code cell holding CELLS[index] (cell 0 of the notebook is markdown)."""
    return pg.locator(".jp-Notebook .jp-Cell").nth(index + 1)


def _open_panel(pg: Any) -> Any:
    panel = pg.locator("#nbprod-panel")
    if not panel.is_visible():
        pg.locator(".jp-SideBar [data-id='nbprod-panel']").click()
    panel.wait_for(state="visible", timeout=10_000)
    return panel


@pytest.mark.browser
def test_magic_cells_get_kind_and_status_badges(page: Any, lab: Lab) -> None:
    with explained(lab, page, "magic_cells_get_kind_and_status_badges"):
        for i, (source, kind, status) in enumerate(CELLS):
            badge = _cell(page, i).locator(".nbprod-CellBadge")
            if kind is None:
                assert badge.count() == 0, f"cell {i} ({source.splitlines()[0]!r}) has no magic"
                continue
            assert badge.count() == 1, f"no badge on cell {i}: {source.splitlines()[0]!r}"
            assert badge.get_attribute("data-nbprod-kind") == kind
            assert badge.get_attribute("data-nbprod-status") == status, badge.get_attribute("title")
            text = badge.inner_text()
            assert kind in text and status.upper() in text
        assert "×2" in _cell(page, 1).locator(".nbprod-CellBadge").inner_text()  # two snapshots
        _cell(page, 1).scroll_into_view_if_needed()
        _shoot(page, "badges")

        # editing a cell re-reads it: a new magic line gets a badge, not run yet
        page.evaluate("""() => {
            const nb = window.jupyterapp.shell.currentWidget.content;
            nb.model.sharedModel.insertCell(nb.model.cells.length,
                {cell_type: 'code', source: '%nbprod init cancer'}); }""")
        page.wait_for_function(
            "() => document.querySelectorAll('.nbprod-CellBadge[data-nbprod-status=\"idle\"]')"
            ".length === 1", timeout=10_000)
        new = page.locator(".nbprod-CellBadge[data-nbprod-status='idle']")
        assert new.get_attribute("data-nbprod-kind") == "init" and "not run" in new.inner_text()
        page.evaluate("""() => { const nb = window.jupyterapp.shell.currentWidget.content;
            nb.model.sharedModel.deleteCell(nb.model.cells.length - 1); }""")
        page.wait_for_function(
            "() => !document.querySelector('.nbprod-CellBadge[data-nbprod-status=\"idle\"]')",
            timeout=10_000)
        assert page.locator(".jp-Notebook .jp-Cell").count() == len(CELLS) + 1


@pytest.mark.browser
def test_check_status_and_package_bundles_are_rendered_by_the_extension(page: Any, lab: Lab) -> None:
    with explained(lab, page, "check_status_and_package_bundles_are_rendered_by_the_extension"):
        # the check cell: the extension's renderer, not the HTML fallback of the same bundle
        out = _cell(page, 5).locator(".jp-OutputArea-output")
        assert out.count() == 1
        view = out.and_(page.locator(".nbprod-CheckView"))  # the renderer is the output node
        assert view.count() == 1
        assert view.get_attribute("data-nbprod-status") == "warn"
        assert out.locator(".nbprod-checks").count() == 0  # the HTML table is not what shows
        rows = view.locator("tbody tr")
        assert rows.count() == 1
        assert "overfit:roc_auc" in rows.first.inner_text()
        assert rows.first.locator(".nbprod-Status").inner_text() == "WARN"

        status = _cell(page, 7).locator(".nbprod-StatusView")
        assert status.count() == 1
        text = status.inner_text()
        assert "train snapshot" in text and "metric:accuracy" in text

        package = _cell(page, 8).locator(".nbprod-PackageView")
        assert package.count() == 1
        assert "artifact-nb" in package.inner_text() and "forced past metric:accuracy" in package.inner_text()
        # the refused package: the refusal's JSON drawn (reason and failed check), the badge FAIL
        refused = _cell(page, 9).locator(".nbprod-PackageView")
        assert refused.count() == 1 and refused.get_attribute("data-nbprod-status") == "fail"
        text = refused.inner_text()
        assert "not packaged to artifact-refused" in text and "ChecksFailedError" in text
        assert refused.locator(".nbprod-CheckTable tbody tr").inner_text().count("metric:accuracy") == 1
        badge = _cell(page, 9).locator(".nbprod-CellBadge")
        assert badge.get_attribute("title").endswith(
            "FAIL: not packaged: Refusing to package: 1 check(s) failed: metric:accuracy. Fix them, "
            "or package with --force to record an override.")
        assert not (lab.root / "artifact-refused").exists()
        _cell(page, 5).scroll_into_view_if_needed()
        _shoot(page, "renderer-checks")
        _cell(page, 8).scroll_into_view_if_needed()
        _shoot(page, "renderer-status-package")


@pytest.mark.browser
def test_panel_lists_captures_and_checks_and_jumps_to_cells(page: Any, lab: Lab) -> None:
    with explained(lab, page, "panel_lists_captures_and_checks_and_jumps_to_cells"):
        panel = _open_panel(page)
        captures = panel.locator(".nbprod-Panel-captures .nbprod-Panel-item")
        labels = [captures.nth(i).locator(".nbprod-Panel-label").inner_text()
                  for i in range(captures.count())]
        assert labels == ["train snapshot of train", "valid snapshot of valid", "features",
                          "model", "status", "package to artifact-nb", "package to artifact-refused"]
        checks = panel.locator(".nbprod-Panel-checks .nbprod-Panel-item")
        found = {checks.nth(i).locator(".nbprod-Panel-label").inner_text():
                 checks.nth(i).get_attribute("data-nbprod-status") for i in range(checks.count())}
        assert found == {"metric:roc_auc": "pass", "overfit:roc_auc": "warn", "metric:accuracy": "fail"}
        _shoot(page, "panel")

        # from the bottom of the notebook, jump back to the model cell, then to the failed check
        _cell(page, len(CELLS) - 1).click()
        captures.nth(3).click()  # "model"
        active = page.locator(".jp-Notebook .jp-Cell.jp-mod-active")
        page.wait_for_function(
            "() => document.querySelector('.jp-Notebook .jp-Cell.jp-mod-active .jp-InputArea')"
            ".textContent.includes('%%nbprod model')", timeout=10_000)
        assert _in_view(page, active)
        checks.filter(has_text="metric:accuracy").click()
        page.wait_for_function(
            "() => document.querySelector('.jp-Notebook .jp-Cell.jp-mod-active .jp-InputArea')"
            ".textContent.includes('accuracy --min 0.999')", timeout=10_000)
        assert _in_view(page, active)
        _shoot(page, "panel-jump")


def _in_view(page: Any, locator: Any) -> bool:
    box = locator.bounding_box()
    scroller = page.locator(".jp-NotebookPanel-notebook, .jp-Notebook").first.bounding_box()
    return box is not None and scroller is not None and (
        box["y"] < scroller["y"] + scroller["height"] and box["y"] + 20 > scroller["y"])


@pytest.mark.browser
def test_panel_package_runs_in_the_kernel_and_shows_the_result(page: Any, lab: Lab) -> None:
    with explained(lab, page, "panel_package_runs_in_the_kernel_and_shows_the_result"):
        panel = _open_panel(page)
        artifact = lab.root / "artifact-panel"
        shutil.rmtree(artifact, ignore_errors=True)
        panel.locator("input[name='path']").fill("artifact-panel")
        mlflow = panel.locator("input[name='log-to-MLflow']")
        if mlflow.is_checked():
            mlflow.uncheck()
        result = panel.locator(".nbprod-Panel-result")

        # a failed check: nbprod refuses, the panel says why and how to go on
        panel.locator("button.nbprod-Panel-package").click()
        page.wait_for_function(
            "() => ['error', 'done'].includes(document.querySelector('.nbprod-Panel-result')"
            ".dataset.state)", timeout=PACKAGE_TIMEOUT_S * 1000)
        assert result.get_attribute("data-state") == "error"
        assert result.get_attribute("data-error") == "PackageRefusedError"
        assert "metric:accuracy" in result.inner_text() and "--force" in result.inner_text()
        failed = result.locator(".nbprod-Panel-failedCheck")  # from the refusal's JSON
        assert failed.count() == 1 and failed.get_attribute("data-check") == "metric:accuracy"
        assert not artifact.exists()
        _shoot(page, "panel-package-refused")

        panel.locator("input[name='force']").check()
        panel.locator("button.nbprod-Panel-package").click()
        page.wait_for_function(
            "() => ['error', 'done'].includes(document.querySelector('.nbprod-Panel-result')"
            ".dataset.state)", timeout=PACKAGE_TIMEOUT_S * 1000)
        assert result.get_attribute("data-state") == "done", result.inner_text()
        view = result.locator(".nbprod-PackageView")
        assert view.count() == 1
        assert str(artifact) in view.inner_text()
        assert "--force" in result.locator(".nbprod-Panel-code").inner_text()
        manifest = json.loads((artifact / "nbprod.json").read_text())
        assert manifest["override"]["checks"] == ["metric:accuracy"]
        assert (artifact / "score.ipynb").is_file() and (artifact / "MLmodel").is_file()
        _shoot(page, "panel-package-done")

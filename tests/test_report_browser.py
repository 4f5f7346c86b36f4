"""The HTML report in a real browser: it renders, the code is hidden, the figures are visible,
and it fetches nothing. Debian's chromium, driven by Playwright, opens the page that
`nbprod score --html` wrote for a drifted batch; the screenshot stays under
test-output/screenshots/report.png."""

from __future__ import annotations

import pytest

from nbprod import cli

from .conftest import SCREENSHOTS

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_report_renders_with_code_hidden_and_figures_visible(cancer_art, tmp_path, browser,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    batch = cancer_art.batch.copy()
    batch["mean_area"] *= 1.8  # drift: the report draws reference-vs-current plots
    batch["worst_texture"] += 6
    batch.to_csv("batch.csv", index=False)
    cancer_art.labels.to_csv("labels.csv", index=False)
    code = cli.main(["score", str(cancer_art.path), "batch.csv", "-o", "pred.csv",
                     "--labels", "labels.csv", "--report", "report.ipynb", "--html", "report.html",
                     "--no-mlflow"])
    assert code in (cli.EXIT_OK, cli.EXIT_ALERT)
    page_file = tmp_path / "report.html"

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri(), wait_until="load")

    text = page.inner_text("body")
    assert "Scoring report: cancer" in text
    verdict, drift = page.get_by_text("Verdict:").first, page.get_by_text("Data drift").first
    assert verdict.is_visible() and drift.is_visible()
    assert verdict.bounding_box()["y"] < drift.bounding_box()["y"]  # verdict first

    # code hidden: no code cell draws its input (only the markdown intro has an input area) and
    # no line of the notebook's code shows
    assert page.locator(".jp-CodeCell").count() > 5
    assert page.locator(".jp-CodeCell .jp-InputArea, .jp-InputArea-editor").count() == 0
    for code_line in ("nbprod.scoring_job(", 'job.show("drift")', "input_path ="):
        assert code_line not in text

    # figures visible: the drift plots are drawn at a readable size
    figures = page.locator("svg")
    assert figures.count() >= 2
    for i in range(min(figures.count(), 4)):
        box = figures.nth(i).bounding_box()
        assert figures.nth(i).is_visible() and box["width"] > 150 and box["height"] > 80, box
    assert page.locator("svg rect").count() > 10  # bars, not an empty frame

    assert all(u.startswith(("file:", "data:", "about:")) for u in requests), requests
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    context.close()

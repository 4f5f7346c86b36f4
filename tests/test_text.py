"""Words and numbers a user reads: the one number format, lists that say how many more, user
text (column names, messages) shown literally in messages, Markdown and HTML."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

from nbprod.core.results import fmt, listing, number
from nbprod.core.text import markdown_text, one_line, quote

from .artifacts import ROOT

# names a hostile or careless input can carry: nested backticks, markup, table pipes, emphasis,
# math, a heading's closing hashes, a newline that would forge a line of output, an address
HOSTILE = [
    "a `b` ``c`` d",
    "[link](http://evil.example)",
    "```",
    "`start",
    "<script>alert(1)</script>",
    "x | y | z",
    "*bold* _it_ __dunder__",
    "$z$ and $$w$$",
    "name #",
    "line\nFAIL  forged: check",
    "tab\there\u2028sep",
    "a\\b & c &amp; d",
    "www.evil.example me@mail.example",
]


# -- the number formatter --------------------------------------------------------------------
NUMBERS = json.loads((ROOT / "extension/src/__tests__/fixtures/numbers.json").read_text())["cases"]


@pytest.mark.parametrize(("value", "shown"), NUMBERS, ids=[str(v) for v, _ in NUMBERS])
def test_one_number_format_shared_with_the_extension(value, shown):
    """The cases the JupyterLab extension's formatNumber is tested on too (parse.spec.ts)."""
    assert number(float(value) if isinstance(value, str) else value) == shown


@pytest.mark.parametrize(("value", "shown"), [
    (np.int64(10790), "10,790"), (np.float64(0.99234), "0.9923"), (np.float32(0.25), "0.25"),
    (np.int32(-4), "-4"), (np.float64("nan"), "nan"), (None, ""), (True, "True"),
    ("text", "text"),
])
def test_numpy_numbers_and_other_values(value, shown):
    assert number(value) == shown


def test_check_messages_use_the_table_format():
    for v in (0.123456, 1597.4, 2.0, 1e-12, -0.0004567, float("nan")):
        assert fmt(v) == number(v)
    assert fmt(0.123456) == "0.1235"  # 4 significant digits, as the tables show it


def test_no_number_a_person_reads_is_in_scientific_notation_from_a_thousandth_up():
    for v in np.concatenate([np.logspace(-3, 15, 400), -np.logspace(-3, 15, 400)]):
        assert "e" not in number(float(v)), v


# -- lists and one-line text -----------------------------------------------------------------
def test_a_truncated_list_says_how_many_more():
    assert listing(list("abcdefg")) == "a, b, c, d, e and 2 more"
    assert listing(list("abc")) == "a, b, c"
    assert listing([], 3) == ""
    assert listing(list("abcdefghijkl"), 10).endswith("j and 2 more")


@pytest.mark.parametrize("name", HOSTILE)
def test_names_in_a_message_stay_on_one_line(name):
    shown = listing([name, "ok"])
    assert "\n" not in shown and "\u2028" not in shown and "\t" not in shown
    assert shown.endswith(", ok")
    assert one_line(name) == name or any(ord(c) < 32 or c == "\u2028" for c in name)
    assert len(one_line("x" * 5000)) == 120 and "..." in one_line("x" * 5000)
    assert quote(name).count("\n") == 0


# -- Markdown --------------------------------------------------------------------------------
def _rendered(markdown: str) -> str:
    """``markdown`` as the HTML export of a notebook renders it (nbconvert's mistune filter)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    rendered = markdown2html_mistune(markdown)
    return re.sub(r'<a class="anchor-link"[^>]*>[^<]*</a>', "", rendered)  # the heading's anchor


def _text_of(rendered: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip()


@pytest.mark.parametrize("name", HOSTILE)
def test_user_text_renders_literally_in_markdown(name):
    rendered = _rendered(f"# Scoring report: {markdown_text(name)}")
    assert rendered.startswith("<h1") and rendered.count("<h1") == 1
    # no element but the heading: no code span, emphasis, link, script, table
    assert re.findall(r"<(\w+)", rendered) == ["h1"], rendered
    assert _text_of(rendered) == f"Scoring report: {one_line(name)}"


def test_markdown_cells_of_generated_notebooks_escape_the_name():

    from nbprod.jobs.notebook import scoring_notebook

    nb = scoring_notebook(name="__main__", packaged_at="/srv/art", artifact_id="f" * 32)
    title = nb.cells[0].source.splitlines()[0]
    assert title == "# Scoring report: \\_\\_main\\_\\_"
    assert _text_of(_rendered(title)) == "Scoring report: __main__"


# -- a real run on a batch whose extra column has a hostile name ------------------------------
@pytest.fixture(scope="module")
def hostile_run(diabetes_art, tmp_path_factory):
    from nbprod.jobs import run as nbrun

    d = tmp_path_factory.mktemp("hostile")
    batch = diabetes_art.batch.copy()
    for i, name in enumerate(HOSTILE):
        batch[name] = float(i)
    batch.to_parquet(d / "in.parquet")
    return nbrun.execute(input_path=str(d / "in.parquet"), output_path=str(d / "out.csv"),
                         artifact_path=str(diabetes_art.path), log_to_mlflow=False)


def test_hostile_column_names_stay_on_one_line_in_check_messages(hostile_run):
    extra = next(c for c in hostile_run.summary()["checks"] if c["name"] == "input:extra-columns")
    assert "\n" not in extra["message"] and "\u2028" not in extra["message"]
    assert extra["message"].startswith(f"{len(HOSTILE)} column(s) the model does not use")
    assert extra["message"].endswith(f"and {len(HOSTILE) - 10} more")
    assert extra["details"]["columns"] == HOSTILE  # the summary keeps the names exactly


def test_the_report_shows_hostile_text_literally_and_exports_to_html(hostile_run, tmp_path):
    import nbformat

    from nbprod.jupyter.html_export import to_html
    from nbprod.jupyter.scoring_job import ScoringJob

    job = ScoringJob(hostile_run)
    views = [job.show(section) for section in ("verdict", "checks")]
    for view in views:
        assert "<script>" not in view.html and 'class="nbprod-view tex2jax_ignore mathjax_ignore"' \
            in view.html  # '$z$' is not typeset as a formula
    checks = views[1].html
    assert "\nFAIL  forged" not in views[1].text  # a name cannot forge a line of the text form
    assert html.escape("<script>alert(1)</script>") in checks
    assert html.escape("a `b` ``c`` d") in checks  # backticks are text in HTML, never code
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("job", outputs=[
        nbformat.v4.new_output("display_data", data={"text/html": v.html, "text/plain": v.text})
        for v in views])])
    nbformat.write(nb, str(tmp_path / "report.ipynb"))
    page = to_html(tmp_path / "report.ipynb")  # a column named 'http://...' is text, not a fetch
    assert "<script>alert" not in page
    shown = html.unescape(re.sub(r"<[^>]+>", " ", page))
    assert "[link](http://evil.example)" in shown and "<script>alert(1)</script>" in shown

    # an address in the markup itself is still refused
    from nbprod.exceptions import NbprodError

    nb.cells[0].outputs[0]["data"]["text/html"] += '<img src="http://evil.example/x.png">'
    nbformat.write(nb, str(tmp_path / "fetching.ipynb"))
    with pytest.raises(NbprodError, match="external URL"):
        to_html(tmp_path / "fetching.ipynb")


def test_an_estimate_reads_in_the_one_format():
    from nbprod.monitoring.estimation import EstimatedMetric, EstimatedPerformance, describe

    est = EstimatedPerformance("cbpe", "unchanged", 500, metrics={"mae": EstimatedMetric(
        1597.38, 1234.5, 2000.01, 0.123456, 12345.67, 0.1, True, "dle")})
    assert describe(est) == ("estimated MAE 1,597 [1,234, 2,000] (validation 0.1235; dropped "
                             "beyond the tolerance 12,346)")

"""The contract between the kernel and the JupyterLab extension, from the kernel's side.

``%nbprod package`` displays one JSON bundle whatever happens (packaged, refused, broken), and
only then fails the cell as before; the extension reads that JSON, never the message's English.
These tests run the magics in a real IPython shell (the process-wide one, as in a kernel, so
that ``display`` publishes) and capture what a notebook would receive.

The bundles are also committed as fixtures under ``extension/src/__tests__/fixtures``, which the
extension's unit tests (jest) read: each real bundle here must have the fixture's shape, so a
change of shape on the Python side fails here until the fixture, and so the TypeScript reading
it, follows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from nbprod.capture.contract import PACKAGE_MIME, PACKAGE_VERSION
from nbprod.jupyter.display import CHECK_MIME
from nbprod.jupyter.status import STATUS_MIME

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "extension" / "src" / "__tests__" / "fixtures"
# free-form values: their inner keys depend on the check or the run, not on the contract
FREE = {"details", "value", "threshold", "timings"}

SETUP = [
    "%nbprod init cancer",
    "%nbprod snapshot train --role train --target target --id patient_id",
    "%nbprod snapshot valid --role valid --target target --id patient_id",
    "%%nbprod features\ndef features(df):\n    out = df.copy()\n"
    "    out['area_ratio'] = df['mean_area'] / (df['worst_area'] + 1.0)\n    return out",
    "%%nbprod model\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler\n"
    "model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(\n"
    "    features(train.drop(columns=['target', 'patient_id'])), train['target'])",
]


@pytest.fixture
def kernel_shell(in_tmp: Path, cancer):
    """The process-wide InteractiveShell (a kernel's is one too), nbprod loaded, captures made."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    if InteractiveShell.initialized():
        pytest.fail("another test left the process-wide InteractiveShell behind")
    cfg = Config()
    cfg.HistoryManager.enabled = False
    sh = InteractiveShell.instance(config=cfg)
    try:
        sh.run_line_magic("load_ext", "nbprod")
        sh.user_ns["train"] = cancer.iloc[:400].copy()
        sh.user_ns["valid"] = cancer.iloc[400:].copy()
        for cell in SETUP:
            sh.run_cell(cell, store_history=False).raise_error()
        yield sh
    finally:
        sh.reset()
        sh.cleanup()
        InteractiveShell.clear_instance()


def _run(sh, line: str) -> tuple[list[dict[str, Any]], BaseException | None, str]:
    """Run a cell: the display bundles it published, what it raised, the text it showed."""
    with capture_output() as cap:
        result = sh.run_cell(line, store_history=False)
    return [o.data for o in cap.outputs], result.error_in_exec, cap.stderr + cap.stdout


def _only(bundles: list[dict[str, Any]], mime: str) -> dict[str, Any]:
    found = [b for b in bundles if mime in b]
    assert len(found) == 1, f"expected one {mime} display, got {[list(b) for b in bundles]}"
    assert {"text/html", "text/plain"} <= set(found[0])  # other frontends still see it
    payload = found[0][mime]
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload  # strict JSON, as sent
    return payload


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def _same_shape(real: Any, fixture: Any, where: str = "$") -> list[str]:
    """Where ``real`` and ``fixture`` differ in keys or JSON types (null matches anything)."""
    if real is None or fixture is None:
        return []
    if isinstance(real, dict) and isinstance(fixture, dict):
        out = [f"{where}: keys {sorted(set(real) ^ set(fixture))} not in both"] \
            if set(real) != set(fixture) else []
        for key in set(real) & set(fixture) - FREE:
            out += _same_shape(real[key], fixture[key], f"{where}.{key}")
        return out
    if isinstance(real, list) and isinstance(fixture, list):
        return [p for item in real[:1] for f in fixture[:1] for p in _same_shape(item, f, f"{where}[0]")]
    kinds = [("number" if isinstance(v, int | float) and not isinstance(v, bool) else type(v).__name__)
             for v in (real, fixture)]
    return [] if kinds[0] == kinds[1] else [f"{where}: {kinds[0]} here, {kinds[1]} in the fixture"]


def _matches_fixture(payload: dict[str, Any], name: str, *discriminators: str) -> None:
    fixture = _fixture(name)
    problems = _same_shape(payload, fixture)
    problems += [f"{k}: {payload.get(k)!r} here, {fixture.get(k)!r} in the fixture"
                 for k in ("version", *discriminators) if payload.get(k) != fixture.get(k)]
    assert not problems, (
        f"the bundle no longer has the shape of extension/src/__tests__/fixtures/{name} "
        f"(which the extension's jest tests read): {problems}. Update the fixture (and the "
        f"extension's reader) to:\n{json.dumps(payload, indent=2)}")


def test_refused_package_displays_the_failed_checks_then_raises(kernel_shell, in_tmp):
    bundles, _, _ = _run(kernel_shell, "%nbprod check metric accuracy --min 0.999")
    check = _only(bundles, CHECK_MIME)
    _matches_fixture(check, "check.json", "status")

    bundles, error, shown = _run(kernel_shell, "%nbprod package art --no-mlflow")
    # the cell still fails with one clear line for people ...
    assert isinstance(error, UsageError)
    assert str(error).startswith("Refusing to package: 1 check(s) failed: metric:accuracy.")
    assert shown.startswith("UsageError: Refusing to package") and "Traceback" not in shown
    assert not (in_tmp / "art").exists()
    # ... and the extension gets the same facts as data
    refusal = _only(bundles, PACKAGE_MIME)
    assert refusal["version"] == PACKAGE_VERSION == 2
    assert refusal["outcome"] == "refused" and refusal["status"] == "fail"
    assert refusal["error"] == "ChecksFailedError" and refusal["path"] == "art"
    assert refusal["reason"] == str(error)
    [failed] = refusal["failed_checks"]
    assert failed["name"] == "metric:accuracy" and failed["kind"] == "metric"
    assert failed["status"] == "fail" and failed["message"] == check["results"][0]["message"]
    assert failed["value"] == pytest.approx(check["results"][0]["value"])
    assert "metric:accuracy" in bundles[0]["text/html"] and "not packaged" in bundles[0]["text/plain"]
    _matches_fixture(refusal, "package-refused.json", "outcome", "status", "error")

    bundles, _, _ = _run(kernel_shell, "%nbprod status --static")
    _matches_fixture(_only(bundles, STATUS_MIME), "status.json", "status")


def test_packaged_bundle_has_the_shape_the_extension_reads(diabetes_art):
    # the artifact shared with the other tests (packaging costs seconds): its result is what
    # `%nbprod package` displays when it writes an artifact
    packaged = _only([diabetes_art.result._repr_mimebundle_()], PACKAGE_MIME)
    assert packaged["version"] == PACKAGE_VERSION and packaged["outcome"] == "packaged"
    assert packaged["status"] == "pass" and packaged["override"] is None
    assert packaged["path"] == str(diabetes_art.path)
    _matches_fixture(packaged, "package-packaged.json", "outcome")


@pytest.mark.parametrize(
    ("line", "error", "needle"),
    [
        # an existing PATH: refused, no checks to blame
        ("%nbprod package taken --no-mlflow", "PackagingError", "already exists"),
        # a flag combination the magic refuses itself
        ("%nbprod package art --register --no-mlflow", "UsageError", "--register needs MLflow"),
        # a --notebook that names no file
        ("%nbprod package art --notebook missing.ipynb", "UsageError", "does not exist"),
    ],
)
def test_every_refusal_is_displayed_before_the_usage_error(kernel_shell, in_tmp, line, error, needle):
    (in_tmp / "taken").mkdir()
    (in_tmp / "taken" / "keep.txt").write_text("mine")
    bundles, raised, _ = _run(kernel_shell, line)
    assert isinstance(raised, UsageError) and needle in str(raised)
    refusal = _only(bundles, PACKAGE_MIME)
    assert (refusal["outcome"], refusal["error"], refusal["failed_checks"]) == ("refused", error, [])
    assert refusal["reason"] == str(raised)
    assert (in_tmp / "taken" / "keep.txt").read_text() == "mine" and not (in_tmp / "art").exists()
    _matches_fixture(refusal, "package-refused.json", "outcome", "status")


def test_unexpected_failure_is_displayed_then_keeps_its_traceback(kernel_shell, in_tmp):
    (in_tmp / "afile").write_text("not a directory")
    bundles, raised, shown = _run(kernel_shell, "%nbprod package afile/art --no-mlflow")
    assert isinstance(raised, OSError) and not isinstance(raised, UsageError)
    last = re.sub(r"\x1b\[[0-9;]*m", "", shown).strip().splitlines()[-1]
    assert last == f"{type(raised).__name__}: {raised}"  # the traceback's end, not a UsageError
    broke = _only(bundles, PACKAGE_MIME)
    assert broke["outcome"] == "error" and broke["status"] == "fail"
    assert broke["error"] == type(raised).__name__ and broke["reason"] == str(raised)
    _matches_fixture(broke, "package-error.json", "outcome", "status")


def test_a_line_refused_before_packaging_displays_nothing(kernel_shell):
    # argparse refuses the line before the package step starts: only the UsageError (the
    # extension never writes such a line; it reads a UsageError without a bundle as a refusal)
    bundles, raised, _ = _run(kernel_shell, "%nbprod package")
    assert isinstance(raised, UsageError) and "required: PATH" in str(raised)
    assert not [b for b in bundles if PACKAGE_MIME in b]


def test_the_extension_can_ask_the_kernel_its_contract_version():
    # extension/src/kernel.ts PROBE evaluates exactly these user expressions in the kernel
    probe = (ROOT / "extension" / "src" / "kernel.ts").read_text()
    contract = "__import__('nbprod.frontend', fromlist=['PACKAGE_VERSION']).PACKAGE_VERSION"
    assert contract in probe
    assert eval(contract) == PACKAGE_VERSION  # the very expression the extension sends
    ts = (ROOT / "extension" / "src" / "contract.ts").read_text()
    assert f"export const PACKAGE_VERSION = {PACKAGE_VERSION};" in ts


def _switches(parser: Any) -> set[str]:
    """The long flags of ``parser`` and its subparsers that take no value."""
    import argparse

    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _switches(sub)
        elif action.option_strings and action.nargs == 0:
            found |= {o for o in action.option_strings if o.startswith("--") and o != "--help"}
    return found


def test_the_extension_knows_every_switch_of_the_magics():
    """The extension labels ``%nbprod package --register out`` by skipping flag values; a switch
    it did not know would swallow the path. Its list (parse.ts, checked by jest against this
    fixture) must be the parser's."""
    from nbprod.jupyter.magics import build_parser

    fixture = json.loads((FIXTURES / "flags.json").read_text())
    assert fixture["switches"] == sorted(_switches(build_parser()))

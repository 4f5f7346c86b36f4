"""A generated campaign of bad inputs, in CSV and Parquet, against the artifact with every column
kind (``kinds_art``).

Each case corrupts a fresh batch (per column kind: NaN, +/-inf, 1e308, text in a number, blank,
an unseen category, a null or repeated id, a sign never seen, out of range, a bad bool or date,
a whole column of the wrong type, a missing column, an empty, header-only, garbage or misnamed
file...) at varying positions and counts, runs it in-process through ``nbprod.jobs.run.execute`` and
maps the outcome to the exit code with the CLI's own :func:`nbprod.cli.exit_code`. For each case:
the exit code; only NbprodError subclasses escape; an error names the column or the file and
leaves no file behind; a scored run keeps every clean row's prediction, and lists every
corrupted row in the issues file with the right rule and action. A few representative cases
also run end to end through the real ``nbprod score`` (a papermill kernel).

The counts per outcome are written to ``test-output/rows-campaign.json`` (docs/reliability.md).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbprod import cli
from nbprod.exceptions import NbprodError
from nbprod.jobs import run as nbrun

from .artifacts import ROOT, kinds_frame

N_ROWS = 200
SEED = 20261130
DUP = object()  # the value marker of a repeated id: the id of an earlier, clean row
REPORT = ROOT / "test-output" / "rows-campaign.json"


@dataclass(frozen=True)
class Corruption:
    """One bad value, what goes into the file and what nbprod must make of it."""

    name: str
    column: str
    value: Any
    rule: str
    action: str
    typed: Any = None  # a flagged row's value as the model sees it (None: the file's value)


ROW_CORRUPTIONS = [
    Corruption("float-nan", "usage", np.nan, "missing", "rejected"),
    Corruption("float-inf", "usage", np.inf, "non-finite", "rejected"),
    Corruption("float-minus-inf", "usage", -np.inf, "non-finite", "rejected"),
    Corruption("float-1e308", "usage", 1e308, "magnitude", "rejected"),
    Corruption("float-text", "usage", "12,5 kWh", "type", "rejected"),
    Corruption("float-blank", "usage", "", "missing", "rejected"),
    Corruption("float-sign", "usage", -1.5, "sign", "flagged"),
    Corruption("float-range", "usage", 140.0, "out-of-range", "flagged"),
    Corruption("int-text", "tenure", "x7", "type", "rejected"),
    Corruption("int-nan", "tenure", np.nan, "missing", "rejected"),
    Corruption("int-sign", "tenure", -3, "sign", "flagged"),
    Corruption("int-range", "tenure", 64, "out-of-range", "flagged"),
    Corruption("int-huge", "tenure", 1e12, "magnitude", "rejected"),
    Corruption("category-unseen-strict", "plan", "gold", "unseen-category", "rejected"),
    Corruption("category-null-strict", "plan", None, "missing", "rejected"),
    Corruption("category-unseen-lenient", "region", "mars", "unseen-category", "flagged"),
    Corruption("bool-bad", "active", "maybe", "type", "rejected"),
    Corruption("bool-null", "active", None, "missing", "rejected"),
    Corruption("date-bad", "since", "31/31/2023", "type", "rejected"),
    Corruption("date-range", "since", "2024-06-30", "out-of-range", "flagged",
               typed=pd.Timestamp("2024-06-30")),
    Corruption("date-null", "since", None, "missing", "rejected"),
    Corruption("id-null", "account", None, "null-id", "rejected"),
    Corruption("id-duplicate", "account", DUP, "duplicate-id", "flagged"),
]
INPUT_COLUMNS = ["usage", "tenure", "plan", "region", "active", "since"]


@dataclass
class Case:
    id: str
    fmt: str  # csv | parquet
    make: Any  # (directory, batch) -> path of the input file
    exit: int  # the expected exit code
    corrupted: dict[int, Corruption] = field(default_factory=dict)  # row -> corruption
    needles: tuple[str, ...] = ()  # an error names one of these (a column or the file)
    max_rejected: float | None = None


# -- writing inputs -----------------------------------------------------------------------------
def _file_ready(df: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """Parquet cannot hold text and numbers in one column: such columns become text, as a
    producer that writes everything as text would write them."""
    if fmt == "csv":
        return df
    out = df.copy()
    for c in out.columns:
        if out[c].dtype != object:
            continue
        if any(isinstance(v, str) for v in out[c]):
            out[c] = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                      for v in out[c]]
        else:  # numbers, bools or dates with nulls keep their type
            out[c] = out[c].infer_objects()
    return out


def _write(df: pd.DataFrame, d: Path, fmt: str, name: str = "in") -> Path:
    path = d / f"{name}.{fmt}"
    df = _file_ready(df, fmt)
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path


def _apply(batch: pd.DataFrame, corrupted: dict[int, Corruption]) -> pd.DataFrame:
    bad = batch.copy()
    clean = [i for i in range(len(batch)) if i not in corrupted]
    for row, c in sorted(corrupted.items()):
        if bad[c.column].dtype != object:
            bad[c.column] = bad[c.column].astype("object")
        if c.value is DUP:
            source = max(i for i in clean if i < row)
            bad.loc[row, c.column] = batch.loc[source, c.column]
        else:
            bad.loc[row, c.column] = c.value
    return bad


def _row_case(rng, cid: str, fmt: str, specs: list[tuple[Corruption, int]],
              max_rejected: float | None = None, edge: bool = False) -> Case:
    """Corrupt ``count`` distinct rows per spec; rows 0 and the last one when ``edge``."""
    corrupted: dict[int, Corruption] = {}
    free = list(range(1, N_ROWS))  # row 0 has no earlier row to repeat the id of
    rng.shuffle(free)
    if edge:
        free = [N_ROWS - 1, *[r for r in free if r != N_ROWS - 1]]
    for spec, count in specs:
        for _ in range(count):
            if edge and spec.value is not DUP and 0 not in corrupted:
                corrupted[0] = spec
                continue
            corrupted[free.pop(0)] = spec
    rejected = {r for r, c in corrupted.items() if c.action == "rejected"}
    share = len(rejected) / N_ROWS
    limit = nbrun.DEFAULT_MAX_REJECTED if max_rejected is None else max_rejected
    return Case(cid, fmt, lambda d, batch, c=corrupted, f=fmt: _write(_apply(batch, c), d, f),
                cli.EXIT_ALERT if share > limit else cli.EXIT_OK, corrupted,
                max_rejected=max_rejected)


def _error_case(cid: str, fmt: str, make, needles: tuple[str, ...]) -> Case:
    return Case(cid, fmt, make, cli.EXIT_ERROR, needles=needles)


def _garbage(d: Path, name: str, seed: int) -> Path:
    path = d / name
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path


def generate() -> list[Case]:
    rng = np.random.default_rng(SEED)
    cases: list[Case] = []
    for i, fmt in enumerate(("csv", "parquet")):
        cases.append(_row_case(rng, f"{fmt}-clean", fmt, []))
        for j, spec in enumerate(ROW_CORRUPTIONS):  # one bad row at the edges, a few, many
            cases.append(_row_case(rng, f"{fmt}-{spec.name}-x1-edge", fmt, [(spec, 1)], edge=True))
            if (i + j) % 2:  # a few: in one format or the other
                few = int(rng.choice([2, 3]))
                cases.append(_row_case(rng, f"{fmt}-{spec.name}-x{few}", fmt, [(spec, few)]))
            many = int(rng.choice([5, 8]))
            cases.append(_row_case(rng, f"{fmt}-{spec.name}-x{many}", fmt, [(spec, many)]))
        for k in range(4):  # rejections within a raised max_rejected
            spec = ROW_CORRUPTIONS[int(rng.integers(len(ROW_CORRUPTIONS)))]
            cases.append(_row_case(rng, f"{fmt}-{spec.name}-x6-max5pct-{k}", fmt, [(spec, 6)],
                                   max_rejected=0.05))
        for k in range(8):  # two kinds of corruption in one file
            a, b = rng.choice(len(ROW_CORRUPTIONS), size=2, replace=False)
            sa, sb = ROW_CORRUPTIONS[int(a)], ROW_CORRUPTIONS[int(b)]
            ca, cb = int(rng.integers(1, 3)), int(rng.integers(1, 3))
            cases.append(_row_case(rng, f"{fmt}-{sa.name}+{sb.name}-{k}", fmt, [(sa, ca), (sb, cb)]))

        # whole-input problems: exit 1, nothing written
        for col in [*INPUT_COLUMNS, "account"]:
            cases.append(_error_case(f"{fmt}-missing-column-{col}", fmt,
                                     lambda d, b, c=col, f=fmt: _write(b.drop(columns=[c]), d, f),
                                     (repr(col),)))
        wrong = {"usage": [f"n/a {i}" for i in range(N_ROWS)], "tenure": "x",
                 "active": "sometimes", "since": "soon"}
        for col, values in wrong.items():
            cases.append(_error_case(f"{fmt}-wrong-type-column-{col}", fmt,
                                     lambda d, b, c=col, v=values, f=fmt: _write(b.assign(**{c: v}), d, f),
                                     (repr(col),)))
        for col, value in (("plan", "gold"), ("account", None), ("usage", np.inf),
                           ("since", None), ("active", None), ("tenure", -1e15)):
            cases.append(_error_case(f"{fmt}-every-row-rejected-{col}", fmt,
                                     lambda d, b, c=col, v=value, f=fmt: _write(b.assign(**{c: v}), d, f),
                                     (repr(col),)))
        cases.append(_error_case(f"{fmt}-empty-file", fmt,
                                 lambda d, b, f=fmt: _touch(d / f"in.{f}"), ("in.",)))
        cases.append(_error_case(f"{fmt}-header-only", fmt,
                                 lambda d, b, f=fmt: _write(b.iloc[:0], d, f), ("in.",)))
        for seed in (1, 2, 3):
            cases.append(_error_case(f"{fmt}-garbage-bytes-{seed}", fmt,
                                     lambda d, b, f=fmt, s=seed: _garbage(d, f"in.{f}", s),
                                     ("in.", *map(repr, INPUT_COLUMNS), "'account'")))
        for ext in ("json", "xlsx"):
            cases.append(_error_case(f"{fmt}-wrong-extension-{ext}", fmt,
                                     lambda d, b, f=fmt, e=ext: _rename(_write(b, d, f), f"in.{e}"),
                                     (f"in.{ext}",)))
        cases.append(_error_case(f"{fmt}-a-directory", fmt,
                                 lambda d, b, f=fmt: _mkdir(d / f"in.{f}"), ("in.",)))
        cases.append(_error_case(f"{fmt}-only-unknown-columns", fmt,
                                 lambda d, b, f=fmt: _write(b.add_prefix("x_"), d, f),
                                 ("'account'", *map(repr, INPUT_COLUMNS))))
        cases.append(_error_case(f"{fmt}-wrong-extension-txt", fmt,
                                 lambda d, b, f=fmt: _rename(_write(b, d, f), "in.txt"), ("in.txt",)))
        cases.append(_error_case(f"{fmt}-no-extension", fmt,
                                 lambda d, b, f=fmt: _rename(_write(b, d, f), "input"), ("input",)))
        cases.append(_error_case(f"{fmt}-nonexistent", fmt, lambda d, b, f=fmt: d / f"absent.{f}",
                                 ("absent.",)))
    cases.append(_error_case("csv-blank-lines", "csv",
                             lambda d, b: _text(d / "in.csv", "\n\n\n"), ("in.csv",)))
    cases.append(_error_case("csv-named-parquet", "parquet",
                             lambda d, b: _rename(_write(b, d, "csv"), "in.parquet"), ("in.parquet",)))
    cases.append(_error_case("parquet-named-csv", "csv",
                             lambda d, b: _rename(_write(b, d, "parquet"), "in.csv"),
                             ("in.csv", *map(repr, INPUT_COLUMNS), "'account'")))
    cases.append(_error_case("parquet-truncated", "parquet",
                             lambda d, b: _truncate(_write(b, d, "parquet")), ("in.parquet",)))
    cases.append(_error_case("csv-gz-not-gzip", "csv",
                             lambda d, b: _rename(_write(b, d, "csv"), "in.csv.gz"), ("in.csv.gz",)))
    cases.append(_error_case("csv-binary-garbage-utf16", "csv",
                             lambda d, b: _utf16(_write(b, d, "csv")), ("in.csv", "'usage'")))
    return cases


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _rename(path: Path, name: str) -> Path:
    return path.rename(path.with_name(name))


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _utf16(path: Path) -> Path:
    path.write_bytes(path.read_text().encode("utf-16"))
    return path


CASES = generate()


# -- running a case -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def batch() -> pd.DataFrame:
    return kinds_frame(N_ROWS, 2).drop(columns=["label"])


@pytest.fixture(scope="module")
def clean(kinds_art, batch, tmp_path_factory):
    """The clean batch's predictions and issues, per format."""
    out = {}
    for fmt in ("csv", "parquet"):
        d = tmp_path_factory.mktemp(f"clean-{fmt}")
        inp = _write(batch, d, fmt)
        run = nbrun.execute(input_path=str(inp), output_path=str(d / f"p.{fmt}"),
                            artifact_path=str(kinds_art.path), log_to_mlflow=False)
        assert run.status != "alert", [c.message for c in run.checks if c.status == "fail"]
        assert run.summary()["rejected"] == 0
        out[fmt] = (_read(d / f"p.{fmt}"), _read(d / f"p.issues.{fmt}"))
    return out


@pytest.fixture(scope="module")
def tally():
    counts: dict[str, Counter] = {"exit": Counter(), "outcome": Counter(), "format": Counter(),
                                  "corruptions": Counter()}
    yield counts
    if sum(counts["exit"].values()) == len(CASES):  # the whole campaign ran: record it
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps({"inputs": len(CASES), "rows_per_input": N_ROWS,
                                      **{k: dict(sorted(v.items())) for k, v in counts.items()}},
                                     indent=1) + "\n")


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"account": "str"})


def execute(inp: Path, out: Path, fmt: str, max_rejected: float | None, art: Path):
    options = {} if max_rejected is None else {"max_rejected": max_rejected}
    return nbrun.execute(input_path=str(inp), output_path=str(out / f"preds.{fmt}"),
                         summary_path=str(out / "summary.json"), artifact_path=str(art),
                         log_to_mlflow=False, **options)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, kinds_art, batch, clean, tally, tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    inp = case.make(inputs, batch)
    try:
        run = execute(inp, out, case.fmt, case.max_rejected, kinds_art.path)
    except Exception as exc:  # noqa: BLE001 - the point: what escapes, and how it reads
        assert isinstance(exc, NbprodError), f"{type(exc).__name__} escaped: {exc}"
        code, message = cli.exit_code(exc), str(exc)
        assert code == case.exit == cli.EXIT_ERROR, message
        assert any(n in message for n in case.needles), f"names none of {case.needles}: {message}"
        assert "\n" not in message and "Traceback" not in message
        assert list(out.iterdir()) == []  # exit 1 keeps its promise: nothing written
        tally["outcome"]["exit 1: " + type(exc).__name__] += 1
        tally["exit"][code] += 1
        tally["format"][case.fmt] += 1
        return
    code = cli.exit_code(run)
    assert code == case.exit, [c.message for c in run.checks if c.status == "fail"]
    check_scored(case, run, out, batch, kinds_art, *clean[case.fmt])
    s = run.summary()
    label = ("clean" if not case.corrupted else
             "rows rejected, share above max_rejected" if code == cli.EXIT_ALERT else
             "rows rejected within max_rejected" if s["rejected"] else "rows flagged only")
    tally["outcome"][f"exit {code}: {label}"] += 1
    tally["exit"][code] += 1
    tally["format"][case.fmt] += 1
    for c in set(case.corrupted.values()):
        tally["corruptions"][f"{c.column} {c.rule} {c.action}"] += 1


def check_scored(case: Case, run, out: Path, batch: pd.DataFrame, art, clean_preds: pd.DataFrame,
                 clean_issues: pd.DataFrame) -> None:
    fmt = case.fmt
    preds, issues = _read(out / f"preds.{fmt}"), _read(out / f"preds.issues.{fmt}")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"preds.{fmt}", f"preds.issues.{fmt}", "summary.json"])
    assert list(issues.columns) == ["row", "account", "column", "value", "rule", "action", "detail"]
    rejected = set(issues.loc[issues["action"] == "rejected", "row"])
    expected_rejected = {r for r, c in case.corrupted.items() if c.action == "rejected"}
    assert rejected == expected_rejected
    s = json.loads((out / "summary.json").read_text())
    assert (s["rows_in"], s["rows"], s["rejected"]) == (N_ROWS, N_ROWS - len(rejected), len(rejected))
    assert s["issues_path"] == str(out / f"preds.issues.{fmt}")
    rows_check = next(c for c in s["checks"] if c["name"] == "input:rows")
    assert rows_check["status"] == ("pass" if not rejected else
                                    "fail" if case.exit == cli.EXIT_ALERT else "warn")
    for c in {c for c in case.corrupted.values() if c.action == "rejected"}:
        assert f"{c.column} {c.rule}" in rows_check["message"]  # the check names the column

    # every corrupted row: its issue, with the right rule and action
    found = set(zip(issues["row"], issues["column"], issues["rule"], issues["action"], strict=True))
    for row, c in case.corrupted.items():
        assert (row, c.column, c.rule, c.action) in found, (row, c)
    # every clean row: the clean run's issues, nothing more
    def clean_rows(t):
        return {i for i in zip(t["row"], t["column"], t["rule"], t["action"], strict=True)
                if i[0] not in case.corrupted}
    assert clean_rows(issues) == clean_rows(clean_issues)

    # predictions: exactly the rows not rejected, in input order; clean rows as in the clean run
    kept = [r for r in range(N_ROWS) if r not in rejected]
    assert len(preds) == len(kept)
    preds.index = kept
    ids = batch["account"].astype("object")
    for row, c in case.corrupted.items():
        if c.value is DUP and row in kept:
            ids = ids.copy()
            ids[row] = _apply(batch, case.corrupted).loc[row, "account"]
    assert preds["account"].tolist() == ids.iloc[kept].tolist()
    untouched = [r for r in kept if r not in case.corrupted]
    proba = ["proba_high", "proba_low", "proba_mid"]
    got, want = preds.loc[untouched], clean_preds.iloc[untouched]
    assert got["prediction"].tolist() == want["prediction"].tolist()
    np.testing.assert_allclose(got[proba].to_numpy(), want[proba].to_numpy(), rtol=1e-12, atol=0)
    # flagged corrupted rows: scored as the notebook's own model scores those values
    flagged = [r for r, c in case.corrupted.items() if c.action == "flagged"]
    if flagged:
        typed = batch.copy()
        for r in flagged:
            c = case.corrupted[r]
            if c.value is not DUP:
                typed[c.column] = typed[c.column].astype("object")
                typed.loc[r, c.column] = c.typed if c.typed is not None else c.value
        typed = typed.astype({k: batch[k].dtype for k in INPUT_COLUMNS if k != "region"})
        expected = art.expected(typed.iloc[flagged])
        assert preds.loc[flagged, "prediction"].tolist() == expected["prediction"].tolist()
        np.testing.assert_allclose(preds.loc[flagged, proba].to_numpy(),
                                   expected[proba].to_numpy(), rtol=1e-9, atol=1e-12)


def test_the_campaign_is_big_and_varied():
    assert len(CASES) >= 200
    assert len({c.id for c in CASES}) == len(CASES)
    by_exit = Counter(c.exit for c in CASES)
    assert by_exit[cli.EXIT_OK] > 50 and by_exit[cli.EXIT_ALERT] > 30 and by_exit[cli.EXIT_ERROR] > 40
    assert Counter(c.fmt for c in CASES)["parquet"] >= 90
    kinds = {(c.column, c.rule, c.action) for case in CASES for c in case.corrupted.values()}
    assert kinds == {(c.column, c.rule, c.action) for c in ROW_CORRUPTIONS}
    rows_used = {r for case in CASES for r in case.corrupted}
    assert {0, N_ROWS - 1} <= rows_used and len(rows_used) > 100


# -- end to end through the real CLI ------------------------------------------------------------
def _pick(fmt: str, exit: int, max_rejected: float | None = None) -> Case:
    """The first case of that kind whose corrupted rows are all rejected."""
    return next(c for c in CASES if c.fmt == fmt and c.exit == exit and c.corrupted
                and c.max_rejected == max_rejected
                and all(v.action == "rejected" for v in c.corrupted.values()))


CLI_CASES = {  # a representative few, end to end through `nbprod score` (a papermill kernel)
    "rejected-within-max": (_pick("csv", cli.EXIT_OK), []),
    "rejected-above-max-own-issues-path": (_pick("parquet", cli.EXIT_ALERT),
                                           ["--issues", "{out}/rejected.parquet"]),
    "max-rejected-5pct": (_pick("csv", cli.EXIT_OK, 0.05), ["--max-rejected", "5%"]),
    "wrong-type-column": (next(c for c in CASES if c.id == "parquet-wrong-type-column-since"), []),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CLI_CASES))
def test_bad_input_through_nbprod_score(name, kinds_art, batch, tmp_path, capfd):
    case, extra = CLI_CASES[name]
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    inp = case.make(inputs, batch)
    extra = [a.format(out=out) for a in extra]
    code = cli.main(["score", str(kinds_art.path), str(inp), "-o", str(out / f"preds.{case.fmt}"),
                     "--summary", str(out / "summary.json"), "--no-mlflow", *extra])
    stdout, stderr = capfd.readouterr()  # file descriptors: the kernel's output counts too
    assert code == case.exit, stderr
    if code == cli.EXIT_ERROR:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nbprod: error: ")
        assert any(n in lines[0] for n in case.needles) and "(SchemaError)" in lines[0]
        assert list(out.iterdir()) == []
        return
    issues = Path(extra[1]) if "--issues" in extra else out / f"preds.issues.{case.fmt}"
    assert f"issues in {issues}" in stdout
    table = _read(issues)
    rejected = {r for r, c in case.corrupted.items() if c.action == "rejected"}
    assert set(table.loc[table["action"] == "rejected", "row"]) == rejected
    s = json.loads((out / "summary.json").read_text())
    assert s["issues_path"] == str(issues) and s["rejected"] == len(rejected)
    assert len(_read(out / f"preds.{case.fmt}")) == N_ROWS - len(rejected)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"preds.{case.fmt}", issues.name, "summary.json"])


def test_cli_refuses_a_bad_max_rejected_or_issues_path(kinds_art, tmp_path, capsys):
    (tmp_path / "in.csv").write_text("a\n1\n")
    base = ["score", str(kinds_art.path), str(tmp_path / "in.csv"), "-o", str(tmp_path / "p.csv")]
    for value in ("2", "150%", "lots"):
        with pytest.raises(SystemExit) as err:
            cli.main([*base, "--max-rejected", value])
        assert err.value.code == cli.EXIT_USAGE
        assert "--max-rejected: expected a share of the input rows" in capsys.readouterr().err
    assert cli.main([*base, "--issues", str(tmp_path / "i.txt")]) == cli.EXIT_ERROR
    assert "--issues" in capsys.readouterr().err
    assert cli.main([*base, "--issues", str(tmp_path / "nodir" / "i.csv")]) == cli.EXIT_USAGE
    assert "--issues '" in capsys.readouterr().err
    assert cli.main([*base, "--issues", str(tmp_path / "p.csv")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "is the same file as" in err and "--issues" in err and "--output" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]

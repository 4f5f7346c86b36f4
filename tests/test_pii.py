"""Personal data: the detector, its place in snapshots, and no raw value anywhere nbprod writes."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from stdnum import iban as stdnum_iban
from stdnum import luhn

import nbprod
from nbprod.core import pii
from nbprod.exceptions import CaptureError, PersonalDataWarning

from .conftest import run

FIRST = ["Amelia", "Bruno", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
         "Kirsten", "Lorenzo", "Maya", "Nikolai", "Odile", "Pavel", "Quentin", "Rosa", "Sven",
         "Talia"]
LAST = ["Abernathy", "Brightwater", "Castellano", "Delacroix", "Eriksson", "Fairweather",
        "Gallagher", "Holloway", "Ingleby", "Jorgensen", "Kingsley", "Lindqvist", "Montague",
        "Northcott", "Oyelaran", "Pemberton", "Quarrington", "Rasmussen", "Stonebridge",
        "Thistlewood"]


# -- generated values -----------------------------------------------------------------------------
def _card(rng: np.random.Generator, prefix: str = "4929", spaced: bool = True) -> str:
    body = prefix + "".join(str(d) for d in rng.integers(0, 10, 15 - len(prefix)))
    digits = body + luhn.calc_check_digit(body)
    return " ".join(digits[i:i + 4] for i in range(0, 16, 4)) if spaced else digits


def _iban(rng: np.random.Generator) -> str:
    bban = "".join(str(d) for d in rng.integers(0, 10, 18))
    check = stdnum_iban.calc_check_digits("DE00" + bban)
    return f"DE{check}{bban}"


def _ssn(rng: np.random.Generator) -> str:
    return f"{rng.integers(100, 665)}-{rng.integers(10, 99)}-{rng.integers(1000, 9999)}"


def _cpf(rng: np.random.Generator) -> str:
    """A Brazilian CPF: nine digits and two mod-11 check digits."""
    d = [int(x) for x in rng.integers(0, 10, 9)]
    for top in (10, 11):
        d.append(sum(a * w for a, w in zip(d, range(top, 1, -1), strict=False)) * 10 % 11 % 10)
    digits = "".join(map(str, d))
    return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"


def _name(rng: np.random.Generator) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


POSITIVES = {  # column name -> (kind, value generator); names that do not say what they hold
    "contact": ("email", lambda r, i: f"user{i}.{r.integers(99)}@mail{r.integers(5)}.example"),
    "reach": ("phone", lambda r, i: f"+44 20 7946 {r.integers(0, 1000):04d}"),
    "reach_us": ("phone", lambda r, i: f"(415) {r.integers(200, 999)}-{r.integers(1000, 9999)}"),
    "holder": ("person_name", lambda r, i: _name(r)),
    "src": ("ip_address", lambda r, i: f"{r.integers(1, 224)}.{r.integers(256)}.{r.integers(256)}.{r.integers(1, 255)}"),
    "src6": ("ip_address", lambda r, i: f"2001:db8:{r.integers(65536):x}::{r.integers(1, 65536):x}"),
    "number": ("card_number", lambda r, i: _card(r)),
    "account": ("iban", lambda r, i: _iban(r)),
    "tax": ("national_id", lambda r, i: _ssn(r)),
    "doc": ("national_id", lambda r, i: _cpf(r)),
}


@pytest.mark.parametrize("column", list(POSITIVES))
def test_detector_finds_each_kind_by_content(column):
    kind, make = POSITIVES[column]
    rng = np.random.default_rng(3)
    s = pd.Series([make(rng, i) for i in range(800)], dtype="str")
    found = pii.detect_column(s, column)
    assert found is not None and found.kind == kind, found
    assert found.sampled == pii.SAMPLE_SIZE and found.share >= pii.MATCH_SHARE
    assert found.evidence.startswith(f"looks like {found.label}: ")
    assert found.evidence.endswith(f"of {pii.SAMPLE_SIZE} sampled values")


def test_detector_evidence_names_the_share_and_the_name():
    values = [f"user{i}@example.com" for i in range(490)] + ["n/a"] * 10
    found = pii.detect_column(pd.Series(values), "customer_email")
    assert found.evidence == ("looks like email addresses: 98% of 500 sampled values "
                              "(and its name says so)")


def test_name_hints_lower_the_bar_but_never_replace_content():
    rng = np.random.default_rng(4)
    half = [f"u{i}@example.com" if i % 2 else "unknown" for i in range(400)]
    assert pii.detect_column(pd.Series(half), "notes") is None  # 50% < 80% without a hint
    assert pii.detect_column(pd.Series(half), "email").kind == "email"  # 50% with one
    # a hinted name with content of another nature is left alone
    assert pii.detect_column(pd.Series(rng.integers(0, 30, 400)), "phone_calls") is None
    assert pii.detect_column(pd.Series(rng.random(400) < 0.5), "email_opened") is None
    # bare digits are personal only when the name says so
    ssn_digits = pd.Series([_ssn(rng).replace("-", "") for _ in range(400)])
    assert pii.detect_column(ssn_digits, "reference") is None
    assert pii.detect_column(ssn_digits, "ssn").detail == "US social security numbers"
    first = pd.Series(rng.choice(FIRST, 400))
    assert pii.detect_column(first, "label") is None
    assert pii.detect_column(first, "first_name").kind == "person_name"
    ints = pd.Series([int(_card(rng, spaced=False)) for _ in range(400)])  # cards as integers
    assert pii.detect_column(ints, "x").kind == "card_number"


LOOKALIKES = {  # column name -> values that must not be taken for personal data
    "customer_id": lambda r, n: np.arange(100_000, 100_000 + n),
    "nine_digit_id": lambda r, n: np.arange(123_456_789, 123_456_789 + n),
    "sixteen_digit_id": lambda r, n: np.arange(4_000_000_000_000_000, 4_000_000_000_000_000 + n),
    "luhn_broken_cards": lambda r, n: [_card(r)[:-1] + str((int(_card(r)[-1]) + 1) % 10)
                                       for _ in range(n)],
    "iban_broken": lambda r, n: [_iban(r)[:-1] + "X" for _ in range(n)],
    "measurement": lambda r, n: r.normal(170, 12, n),
    "whole_floats": lambda r, n: r.integers(0, 10**9, n).astype(float),
    "product_code": lambda r, n: [f"SKU-{r.integers(10000, 99999)}-{r.choice(list('ABC'))}"
                                  for _ in range(n)],
    "zip": lambda r, n: [f"{r.integers(0, 99999):05d}" for _ in range(n)],
    "zip4": lambda r, n: [f"{r.integers(0, 99999):05d}-{r.integers(0, 9999):04d}" for _ in range(n)],
    "city": lambda r, n: r.choice(["New York", "San Francisco", "Los Angeles", "Saint Paul"], n),
    "product": lambda r, n: [f"{r.choice(['Blue', 'Red'])} {r.choice(['Widget', 'Gadget'])}"
                             for _ in range(n)],
    "day": lambda r, n: [f"2024-{r.integers(1, 13):02d}-{r.integers(1, 29):02d}" for _ in range(n)],
    "version": lambda r, n: [f"{r.integers(1, 4)}.{r.integers(20)}.{r.integers(30)}" for _ in range(n)],
    "amount": lambda r, n: [f"{r.integers(1000, 99999)}.{r.integers(100):02d}" for _ in range(n)],
    "phone_calls": lambda r, n: r.integers(0, 20, n),
    "ten_digits": lambda r, n: [str(r.integers(10**9, 10**10)) for _ in range(n)],
    "hex_token": lambda r, n: [f"{r.integers(2**40):x}" for _ in range(n)],
    "flag": lambda r, n: r.random(n) < 0.3,
    "when": lambda r, n: pd.date_range("2024-01-01", periods=n, freq="h"),
}


@pytest.mark.parametrize("column", list(LOOKALIKES))
def test_detector_leaves_lookalikes_alone(column):
    values = LOOKALIKES[column](np.random.default_rng(5), 1000)
    assert pii.detect_column(pd.Series(values), column) is None


def test_detector_is_reproducible_and_samples_at_most_its_size():
    rng = np.random.default_rng(6)
    s = pd.Series([f"u{i}@example.com" if rng.random() < 0.85 else "-" for i in range(50_000)])
    a, b = pii.detect_column(s, "c"), pii.detect_column(s, "c")
    assert a == b and a.sampled == pii.SAMPLE_SIZE
    assert pii.detect_column(pd.Series([None, None], dtype="str"), "email") is None


# -- snapshots and the session ----------------------------------------------------------------------
def personal_frame(n: int, seed: int, *, offset: int = 0) -> pd.DataFrame:
    """Generated customers: an email id, four undeclared personal columns, three features.

    Every personal value carries an anchor (a domain, a number range, a surname list) that
    :func:`_leaks` looks for, so that the whole of a store can be searched quickly."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(0, 1, n)
    x2 = rng.normal(5, 2, n)
    seg = rng.choice(["basic", "plus", "pro"], n)
    y = ((x1 + (seg == "pro") + rng.logistic(size=n) * 0.5) > 0.3).astype(int)
    return pd.DataFrame({
        "email": [f"cust{offset + i}@pii-e2e.example" for i in range(n)],
        "phone": [f"+44 20 7946 {rng.integers(0, 1000):04d}" for _ in range(n)],
        "last_ip": [f"203.0.113.{rng.integers(1, 255)}" for _ in range(n)],
        "payment": [_card(rng) for _ in range(n)],
        "holder": [_name(rng) for _ in range(n)],
        "x1": x1, "x2": x2, "segment": pd.array(seg, dtype="str"), "churned": y,
    })


PERSONAL = ["email", "phone", "last_ip", "payment", "holder"]


def test_session_hides_undeclared_personal_columns_with_a_warning():
    df = personal_frame(300, 1)
    s = nbprod.Session("p")
    with pytest.warns(PersonalDataWarning) as caught:
        snap = s.snapshot(df, role="train", target="churned", id="email", pii=["holder"])
    said = "\n".join(str(w.message) for w in caught)
    assert "column 'payment' of the train snapshot looks like payment card numbers: 100% of 300" in said
    assert "holder" not in said  # declared, so no warning
    assert set(snap.pii) == set(PERSONAL) and snap.pii_declared == ("holder",)
    assert set(snap.pii_detected) == {"email", "phone", "last_ip", "payment"}
    meta = snap.metadata()
    assert meta["pii_declared"] == ["holder"] and meta["not_pii"] == []
    assert meta["pii_detected"]["email"]["kind"] == "email"
    assert meta["pii_detected"]["phone"]["evidence"].startswith("looks like phone numbers: 100%")
    assert all(meta["profile"][c]["hidden"] for c in ("phone", "last_ip", "payment", "holder"))
    sample = snap.stored_sample(b"k" * 32)
    for col in PERSONAL:
        assert not sample[col].isin(df[col]).any()
    assert "PII holder, email (detected)" in snap.describe()


def test_not_pii_keeps_a_column_raw_and_holds_for_both_snapshots():
    train, valid = personal_frame(300, 1), personal_frame(200, 2, offset=1000)
    s = nbprod.Session("p")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PersonalDataWarning)
        t = s.snapshot(train, role="train", target="churned", not_pii=["last_ip"])
        v = s.snapshot(valid, role="valid", target="churned")
    assert "last_ip" not in t.pii and "last_ip" not in v.pii and v.not_pii == ("last_ip",)
    assert t.stored_sample(b"k" * 32)["last_ip"].isin(train["last_ip"]).all()
    # a later --not-pii on the valid snapshot un-hides what the detector found in train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PersonalDataWarning)
        s.snapshot(valid, role="valid", target="churned", not_pii=["last_ip", "holder"])
    assert "holder" not in s.train.pii and "holder" not in s.valid.pii
    assert s.train.metadata()["profile"]["holder"].get("frequencies")


def test_what_the_valid_snapshot_finds_is_hidden_in_train_too():
    train, valid = personal_frame(200, 1), personal_frame(100, 2, offset=500)
    train["note"] = [f"n{i}@example.com" if i % 2 else "none" for i in range(200)]  # 50%: no
    valid["note"] = [f"v{i}@example.com" for i in range(100)]  # 100%: personal
    s = nbprod.Session("p")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PersonalDataWarning)
        t = s.snapshot(train, role="train", target="churned")
    assert "note" not in t.pii
    with pytest.warns(PersonalDataWarning) as caught:
        s.snapshot(valid, role="valid", target="churned")
    assert any("column 'note' of the valid snapshot looks like email" in str(w.message) for w in caught)
    assert "note" in s.train.pii and s.train.metadata()["profile"]["note"]["hidden"]
    assert not s.train.stored_sample(b"k" * 32)["note"].isin(train["note"]).any()


def test_declaring_a_column_both_ways_or_the_target_is_refused():
    df = personal_frame(50, 1)
    s = nbprod.Session("p")
    with pytest.raises(CaptureError, match="'phone' is declared both --pii and --not-pii"):
        s.snapshot(df, role="train", target="churned", pii=["phone"], not_pii=["phone"])
    with pytest.raises(CaptureError, match="--not-pii names column 'phnoe'.*'phone'"):
        s.snapshot(df, role="train", target="churned", not_pii=["phnoe"])
    with pytest.raises(CaptureError, match="--pii names the target 'churned'"):
        s.snapshot(df, role="train", target="churned", pii=["churned"])
    with pytest.warns(PersonalDataWarning):
        s.snapshot(df, role="train", target="churned", pii=["phone"])
    with pytest.raises(CaptureError, match="contradicts the train snapshot, which declared it --pii"):
        s.snapshot(df, role="valid", target="churned", not_pii=["phone"])


def test_magic_flags(shell, capsys):
    shell.user_ns["df"] = personal_frame(60, 1)
    with pytest.raises(UsageError, match="--pii and --not-pii both name 'phone'"):
        run(shell, "%nbprod snapshot df --role train --target churned --pii phone --not-pii phone")
    run(shell, "%nbprod snapshot df --role train --target churned --not-pii holder,last_ip")
    out = capsys.readouterr()
    assert "nbprod: WARNING: column 'email' of the train snapshot looks like email addresses" in out.err
    assert "holder" not in out.err and "--not-pii COL" not in out.err
    run(shell, "%nbprod snapshot --help")
    assert "--not-pii COL,..." in capsys.readouterr().out


def test_schema_errors_never_quote_a_personal_value():
    from nbprod.core.schema import Schema, conform
    from nbprod.exceptions import SchemaError

    rng = np.random.default_rng(2)
    df = pd.DataFrame({"card": [int(_card(rng, spaced=False)) for _ in range(50)],
                       "n": np.arange(50)})
    schema = Schema.infer(df, hide_categories=["card"])
    assert schema["card"].pii and schema.to_list()[0]["pii"] is True
    assert Schema.from_list(schema.to_list()) == schema
    bad = df.astype({"card": "object", "n": "object"})
    bad.loc[3, "card"] = "4929 0000 oops"
    with pytest.raises(SchemaError, match=r"e\.g\. \[personal data\] at row 3") as e:
        conform(bad, schema)
    assert "oops" not in str(e.value)
    bad.loc[3, "card"], bad.loc[4, "n"] = df.loc[3, "card"], "four"
    with pytest.raises(SchemaError, match="e.g. 'four' at row 4"):  # other columns: quoted
        conform(bad, schema)


def test_feature_names_made_of_personal_values_are_refused(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from nbprod.exceptions import PackagingError

    df = personal_frame(120, 7).drop(columns=["phone", "last_ip", "payment", "holder"])
    df["country_code"] = pd.array(np.random.default_rng(1).choice(["fr", "de"], len(df)), dtype="str")
    s = nbprod.Session("onehot")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PersonalDataWarning)
        s.snapshot(df, role="train", target="churned", pii=["country_code"])

    def features(df):
        return pd.get_dummies(df[["x1", "country_code"]], columns=["country_code"], dtype=float)

    s.features(features)
    model = LogisticRegression().fit(features(df.drop(columns=["churned"])), df["churned"])
    s.model(model)
    with pytest.raises(PackagingError, match="made of values of the personal column 'country_code'"):
        s.package(tmp_path / "art", log_to_mlflow=False)
    assert not (tmp_path / "art").exists()


# -- end to end: nothing raw in the artifact, MLflow, the summary, the report or its HTML ----------
FEATURES_CELL = '''%%nbprod features
def features(df):
    return df.assign(x3=df["x1"] * df["x2"])
'''

MODEL_CELL = '''%%nbprod model
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
pre = ColumnTransformer([("num", StandardScaler(), ["x1", "x2", "x3"]),
                         ("cat", OneHotEncoder(handle_unknown="ignore"), ["segment"])])
model = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(
    features(train.drop(columns=["churned", "email"])), train["churned"])
'''


def _anchor(column: str, value: str) -> str:
    """A piece of every raw value of the column, found fast in a large file."""
    return {"email": "@pii-e2e.example", "phone": "7946 ", "last_ip": "203.0.113.",
            "payment": "4929 "}.get(column) or value.split()[-1]


def _leaks(blob: bytes, values: set[str], column: str) -> set[str]:
    """The raw values that occur in ``blob``: at each occurrence of an anchor, compare."""
    groups: dict[tuple[bytes, int, int], set[bytes]] = {}
    for v in values:
        anchor = _anchor(column, v)
        at = v.index(anchor)
        groups.setdefault((anchor.encode(), len(v[:at].encode()), len(v.encode())), set()).add(v.encode())
    found = set()
    for (anchor, before, length), wanted in groups.items():
        i = blob.find(anchor)
        while i >= 0:
            piece = blob[i - before:i - before + length] if i >= before else b""
            if piece in wanted:
                found.add(piece.decode())
            i = blob.find(anchor, i + 1)
    return found


def _blobs(path: Path):
    """(name, bytes) for a file, with parquet decoded to CSV text and zip members opened."""
    data = path.read_bytes()
    yield str(path), data
    if path.suffix == ".parquet":
        yield f"{path} (decoded)", pd.read_parquet(path).to_csv(index=False).encode()
    elif zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for member in zf.namelist():
                yield f"{path}!{member}", zf.read(member)


def _files(*roots: Path):
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in sorted(root.rglob("*")) if p.is_file())


@pytest.mark.slow
def test_undeclared_personal_data_never_leaves_the_notebook(shell, in_tmp, capsys, mlflow_store):
    train = personal_frame(400, 11)
    valid = pd.concat([personal_frame(200, 12, offset=1000), train.iloc[:3]], ignore_index=True)
    batch = personal_frame(300, 13, offset=2000)
    shell.user_ns.update(train=train, valid=valid)
    run(shell, "%nbprod init personal")
    run(shell, "%nbprod snapshot train --role train --target churned --id email")
    run(shell, "%nbprod snapshot valid --role valid --target churned --id email")
    err = capsys.readouterr().err
    for col, kind in (("email", "email addresses"), ("phone", "phone numbers"),
                      ("last_ip", "IP addresses"), ("payment", "payment card numbers"),
                      ("holder", "person names")):
        assert f"WARNING: column {col!r} of the train snapshot looks like {kind}: 100% of 400" in err
    run(shell, FEATURES_CELL)  # passes every personal column through to the model's features
    run(shell, MODEL_CELL)  # ... which uses none of them
    run(shell, "%nbprod check data")  # fails: 3 validation rows share ids with train
    run(shell, "%nbprod check bounds --classes 0")  # flags every row predicted 1
    run(shell, "%nbprod package art --force")
    art = in_tmp / "art"
    manifest = json.loads((art / "nbprod.json").read_text())
    assert manifest["snapshots"]["train"]["pii_detected"]["holder"].startswith("looks like person")
    assert "'valid row 200'" in manifest["override"]["messages"]["data:overlap"]

    batch.drop(columns=["churned"]).to_csv(in_tmp / "batch.csv", index=False)
    batch[["email", "churned"]].to_csv(in_tmp / "labels.csv", index=False)
    out = in_tmp / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "nbprod.cli", "score", str(art), str(in_tmp / "batch.csv"),
         "-o", str(out / "pred.csv"), "--labels", str(in_tmp / "labels.csv"),
         "--summary", str(out / "s.json"), "--report", str(out / "report.ipynb"),
         "--html", str(out / "report.html")],
        capture_output=True, text=True, cwd=in_tmp, env=os.environ.copy(), timeout=300,
    )
    assert proc.returncode == 3, proc.stderr  # the bounds check flags rows
    summary = json.loads((out / "s.json").read_text())
    bounds = next(c for c in summary["checks"] if c["name"] == "output:bounds")
    assert bounds["status"] == "fail" and "rows [" in bounds["message"]  # row numbers, no ids
    assert summary["drift"]["profiles"]["columns"]["holder"] == {"type": "categorical",
                                                                 "count": 300, "null_count": 0}
    # the caller's own output keeps the caller's own ids
    assert pd.read_csv(out / "pred.csv")["email"].tolist() == batch["email"].tolist()

    raw = {c: set(pd.concat([train[c], valid[c], batch[c]]).astype(str)) for c in PERSONAL}
    store = Path(mlflow_store.removeprefix("sqlite:///"))
    with sqlite3.connect(store) as db:  # the packaging and the scoring runs, and where their files are
        kinds = db.execute("select t.value from tags t join runs r on r.run_uuid = t.run_uuid "
                           "join experiments e on e.experiment_id = r.experiment_id where "
                           "t.key = 'nbprod.kind' and e.name like 'personal%'").fetchall()
        roots = [row[0] for row in db.execute(
            "select artifact_location from experiments where name like 'personal%'")]
    assert sorted(k for (k,) in kinds) == ["package", "score"]
    artifact_dirs = [Path(r.removeprefix("file://")) for r in roots]
    assert any(d.is_dir() and any(d.rglob("*.parquet")) for d in artifact_dirs)
    searched = 0
    places = _files(art, out / "s.json", out / "report.ipynb", out / "report.html", store,
                    *artifact_dirs)
    for path in places:
        for name, blob in _blobs(path):
            searched += 1
            for col, values in raw.items():
                leaked = _leaks(blob, values, col)
                assert not leaked, f"raw {col} values in {name}: {sorted(leaked)[:3]}"
    assert searched > 20
    # the search does find raw values where they are: the caller's own files
    assert _leaks((out / "pred.csv").read_bytes(), raw["email"], "email")
    assert _leaks((in_tmp / "batch.csv").read_bytes(), raw["holder"], "holder")

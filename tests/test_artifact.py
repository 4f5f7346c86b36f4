"""The artifact contract: manifest, round trip, hash verification, and scoring bad input."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbprod
from nbprod import cli
from nbprod.exceptions import InputError, IntegrityError, NbprodUsageError, RowError, SchemaError
from nbprod.jobs import run as nbrun

from .artifacts import (
    ARTIFACT_FILES,
    BAD_INPUTS,
    WHEEL,
    assert_valid_manifest,
    copy_artifact,
    write_csv,
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the manifest ---------------------------------------------------------------------------
def test_manifest_identity_and_schema_fields(cancer_art, cancer):
    m = json.loads((cancer_art.path / "nbprod.json").read_text())
    assert m["format"] == "nbprod-artifact"
    assert m["format_version"] == 1
    assert m["name"] == "cancer"
    assert m["task"] == "classification"
    assert m["target"] == "target"
    assert m["id_column"] == "patient_id"
    assert m["classes"] == [0, 1]
    assert m["input_columns"] == [c for c in cancer.columns if c not in ("patient_id", "target")]
    assert m["features"] == {"file": "features.py", "function": "cancer_features"}
    assert m["model"]["file"] == "model.skops" and m["model"]["format"] == "skops"
    assert m["model"]["class"] == "sklearn.pipeline.Pipeline"
    assert m["scoring"]["output_columns"] == ["patient_id", "prediction", "proba_0", "proba_1"]
    assert m["scoring"]["notebook"] == "score.ipynb"
    assert m["packaged_at"] == str(cancer_art.path)
    assert len(m["artifact_id"]) == 32
    assert [c["name"] for c in m["checks"]] == ["metric:accuracy", "row-rules:missing"]
    assert m["checks"][0]["status"] == "pass"
    # a LogisticRegression cannot take NaN, and no input column had any in training
    assert m["checks"][1]["status"] == "warn"
    assert "a row with a missing value there is rejected" in m["checks"][1]["message"]
    assert set(m["row_rules"]["columns"]) == set(m["input_columns"])
    assert not any(c["takes_missing"] for c in m["row_rules"]["columns"].values())


def test_manifest_lists_every_file_with_its_sha256(cancer_art):
    m = cancer_art.manifest
    on_disk = sorted(
        p.relative_to(cancer_art.path).as_posix()
        for p in cancer_art.path.rglob("*")
        if p.is_file() and p.name != "nbprod.json"
    )
    assert sorted(m["files"]) == on_disk
    for rel, entry in m["files"].items():
        f = cancer_art.path / rel
        assert entry["sha256"] == _sha256(f), rel
        assert entry["bytes"] == f.stat().st_size, rel


def test_tamper_tests_cover_every_manifest_file(cancer_art, diabetes_art):
    for packaged in (cancer_art, diabetes_art):
        missing = set(packaged.manifest["files"]) - set(ARTIFACT_FILES)
        assert not missing, f"add {sorted(missing)} to tests/artifacts.py ARTIFACT_FILES"
        assert set(ARTIFACT_FILES) <= set(packaged.manifest["files"])


def test_manifest_snapshots_record_fingerprints(cancer_art):
    snaps = cancer_art.manifest["snapshots"]
    assert set(snaps) == {"train", "valid"}
    live = cancer_art.session.snapshots
    for role, rows in (("train", 300), ("valid", 150)):
        s = snaps[role]
        assert s["rows"] == rows
        assert s["fingerprint"] == live[role].fingerprint
        assert len(s["fingerprint"]) == 64 and int(s["fingerprint"], 16) >= 0
        assert (s["target"], s["id"], s["pii"]) == ("target", "patient_id", [])
        assert s["file"] == f"snapshots/{role}.json"
        assert s["sample"] == f"snapshots/{role}.sample.parquet"
        meta = json.loads((cancer_art.path / s["file"]).read_text())
        assert meta["fingerprint"] == s["fingerprint"]
        assert {c["name"] for c in meta["schema"]} >= set(cancer_art.manifest["input_columns"])
    assert snaps["train"]["fingerprint"] != snaps["valid"]["fingerprint"]


def test_manifest_environment_and_provenance(cancer_art):
    env = cancer_art.manifest["environment"]
    assert env["nbprod"] == nbprod.__version__
    assert env["python"].count(".") == 2
    for dist in ("pandas", "numpy", "scikit-learn", "skops", "mlflow", "papermill"):
        assert env["packages"][dist] == version(dist), dist
    prov = cancer_art.manifest["provenance"]
    assert prov["user"]
    assert prov["working_directory"]
    kinds = [c["kind"] for c in prov["cells"]]
    assert kinds == ["snapshot train", "snapshot valid", "features"]
    features_cell = prov["cells"][2]["source"]
    assert "def cancer_features(df):" in features_cell


def test_contents_are_the_captured_code_and_a_loadable_mlflow_model(cancer_art):
    root = cancer_art.path
    source = (root / "features.py").read_text()
    assert "import numpy as np" in source and "def cancer_features(df):" in source
    assert "pytest" not in source  # only what the function needs travels with it
    mlmodel = (root / "MLmodel").read_text()
    assert "loader_module: nbprod\n" in mlmodel
    assert "python_env.yaml" in mlmodel
    reqs = (root / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={version('scikit-learn')}" in reqs
    assert f"numpy=={version('numpy')}" in reqs
    assert reqs[-1] == f"./{WHEEL}"  # nbprod itself travels inside the artifact
    nb = json.loads((root / "score.ipynb").read_text())
    params = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    # papermill --help-notebook lists every parameter with its type and help
    import papermill

    found = papermill.inspect_notebook(str(root / "score.ipynb"))
    assert {name: p["inferred_type_name"] for name, p in found.items()} == {
        "input_path": "Optional[str]", "output_path": "Optional[str]",
        "labels_path": "Optional[str]", "summary_path": "Optional[str]",
        "artifact_path": "Optional[str]", "drift_runs": "int", "log_to_mlflow": "bool",
        "raise_on_alert": "bool", "issues_path": "Optional[str]", "max_rejected": "float",
        "engine": "Optional[str]", "scheduler": "Optional[str]", "chunk_rows": "Optional[int]"}
    assert found["drift_runs"]["help"] == ("consecutive drifted runs before retraining is "
                                           "recommended")


def test_the_mlflow_environment_needs_only_public_packages_and_the_wheel(cancer_art, kinds_art):
    import base64
    import zipfile

    import yaml
    from mlflow.utils.environment import _PythonEnv
    from mlflow.utils.virtualenv import _get_virtualenv_name

    root = cancer_art.path
    reqs = (root / "requirements.txt").read_text().splitlines()
    pins = dict(r.split("==") for r in reqs[:-1])
    for dist in ("cryptography", "mlflow", "numpy", "pandas", "pyarrow", "scikit-learn", "scipy",
                 "skops"):
        assert pins[dist] == version(dist), dist
    assert "nbprod" not in pins and reqs[-1] == f"./{WHEEL}"
    mlmodel = yaml.safe_load((root / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["env"] == {"conda": "conda.yaml",
                                                             "virtualenv": "python_env.yaml"}
    conda = yaml.safe_load((root / "conda.yaml").read_text())
    assert conda["dependencies"][-1] == {"pip": reqs}
    # the wheel: the importable package and its metadata, named by its content
    data = (root / WHEEL).read_bytes()
    assert WHEEL.split("/")[1] == hashlib.sha256(data).hexdigest()[:16]
    with zipfile.ZipFile(root / WHEEL) as zf:
        names = zf.namelist()
        record = zf.read(f"nbprod-{nbprod.__version__}.dist-info/RECORD").decode()
        for line in record.splitlines():  # every file's hash as installers check it
            path, digest, _ = line.split(",")
            if digest:
                raw = hashlib.sha256(zf.read(path)).digest()
                assert digest == "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        metadata = zf.read(f"nbprod-{nbprod.__version__}.dist-info/METADATA").decode()
    assert {"nbprod/__init__.py", "nbprod/tracking/flavor.py", "nbprod/mlflow_flavor.py",
            "nbprod/py.typed", "nbprod/core/manifest.schema.json"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or "labextension" in n]
    assert "Requires-Dist: skops" in metadata and "papermill" not in metadata
    # every artifact of the same nbprod carries the same bytes; MLflow names the environment
    # it restores by the requirements' text, so other code means another environment
    assert (kinds_art.path / WHEEL).read_bytes() == data
    env = _PythonEnv.from_yaml(str(root / "python_env.yaml"))
    name = _get_virtualenv_name(env, str(root))
    other = root.parent / "other"
    other.mkdir(exist_ok=True)
    (other / "requirements.txt").write_text("\n".join([*reqs[:-1], "./wheels/0123456789abcdef/"
                                                        + WHEEL.split("/")[-1]]) + "\n")
    assert _get_virtualenv_name(env, str(other)) != name


def test_the_mlflow_signature_and_input_example(cancer_art, kinds_art):
    import yaml

    from nbprod.capture.example import as_received

    for packaged in (cancer_art, kinds_art):
        root, m = packaged.path, packaged.manifest
        mlmodel = yaml.safe_load((root / "MLmodel").read_text())
        signature = mlmodel["signature"]
        assert signature["inputs"] is None  # nbprod validates the input, row by row
        outputs = json.loads(signature["outputs"])
        assert [o["name"] for o in outputs] == m["scoring"]["output_columns"]
        assert json.loads(signature["params"])[0]["name"] == "errors"
        schema = mlmodel["metadata"]["nbprod.input_schema"]
        assert [c["name"] for c in schema] == [m["id_column"], *m["input_columns"]]
        example = json.loads((root / "input_example.json").read_text())
        serving = json.loads((root / "serving_input_example.json").read_text())
        assert serving == {"dataframe_split": example}
        assert example["columns"] == [c["name"] for c in schema] and len(example["data"]) == 3
        rows = as_received(pd.DataFrame(example["data"], columns=example["columns"]))
        assert len(nbprod.load(root).score(rows)) == 3  # the example scores as sent
    kinds = {o["name"]: o["type"] for o in json.loads(
        yaml.safe_load((kinds_art.path / "MLmodel").read_text())["signature"]["outputs"])}
    assert kinds == {"account": "string", "prediction": "string", "proba_high": "double",
                     "proba_low": "double", "proba_mid": "double"}


# -- load and score -------------------------------------------------------------------------
def test_load_verifies_and_exposes_the_artifact(cancer_art):
    art = nbprod.load(cancer_art.path)
    assert (art.name, art.task, art.id_column, art.target) == (
        "cancer", "classification", "patient_id", "target")
    assert art.classes == [0, 1]
    assert art.input_columns == cancer_art.manifest["input_columns"]
    assert art.digest == cancer_art.result.digest
    assert "cancer" in repr(art) and "classification" in repr(art)
    check = nbprod.verify(cancer_art.path)
    assert check.ok and check.checked == len(ARTIFACT_FILES) and check.extra == []


def test_classification_round_trip_equals_the_live_model(cancer_art):
    art = nbprod.load(cancer_art.path)
    batch = cancer_art.batch
    scored = art.score(batch)
    assert list(scored.columns) == ["patient_id", "prediction", "proba_0", "proba_1"]
    assert len(scored) == len(batch)
    expected = cancer_art.expected(batch)
    assert scored["patient_id"].tolist() == batch["patient_id"].tolist()
    assert scored["prediction"].tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(scored[["proba_0", "proba_1"]], expected[["proba_0", "proba_1"]],
                               rtol=1e-12, atol=0)
    np.testing.assert_allclose(scored[["proba_0", "proba_1"]].sum(axis=1), 1.0)


def test_regression_round_trip_equals_the_live_model(diabetes_art):
    art = nbprod.load(diabetes_art.path)
    assert (art.task, art.id_column, art.classes) == ("regression", None, None)
    scored = art.score(diabetes_art.batch)
    assert list(scored.columns) == ["prediction"]
    expected = diabetes_art.expected(diabetes_art.batch)
    np.testing.assert_allclose(scored["prediction"], expected["prediction"], rtol=1e-12, atol=0)


def test_scoring_keeps_rows_and_order_and_ignores_extra_columns(cancer_art):
    art = nbprod.load(cancer_art.path)
    batch = cancer_art.batch.sample(frac=1.0, random_state=3)  # shuffled, odd index
    batch = batch[list(reversed(batch.columns))].assign(note="x", target_guess=1)
    scored = art.score(batch)
    assert scored["patient_id"].tolist() == batch["patient_id"].tolist()
    expected = cancer_art.expected(batch)
    np.testing.assert_allclose(scored["proba_1"].to_numpy(), expected["proba_1"].to_numpy(),
                               rtol=1e-12, atol=0)


def test_numbers_read_as_text_are_converted(cancer_art):
    art = nbprod.load(cancer_art.path)
    batch = cancer_art.batch.head(5)
    as_text = batch.astype({"mean_area": "str", "mean_radius": "object"})
    as_text["mean_radius"] = as_text["mean_radius"].map(lambda v: f" {v!r} ")
    pd.testing.assert_frame_equal(art.score(as_text), art.score(batch))


def test_a_copied_artifact_loads_and_scores_from_its_new_place(cancer_art, tmp_path):
    moved = copy_artifact(cancer_art, tmp_path / "moved")
    art = nbprod.load(moved)
    assert art.root == moved
    pd.testing.assert_frame_equal(art.score(cancer_art.batch),
                                  nbprod.load(cancer_art.path).score(cancer_art.batch))


# -- integrity ------------------------------------------------------------------------------
def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("rel", ARTIFACT_FILES)
def test_a_changed_byte_in_any_file_is_refused(cancer_art, tmp_path, capsys, rel):
    root = copy_artifact(cancer_art, tmp_path / "art")
    _flip_a_byte(root / rel)
    with pytest.raises(IntegrityError) as err:
        nbprod.load(root)
    assert err.value.path == rel
    assert rel in str(err.value) and "SHA-256" in str(err.value)
    capsys.readouterr()
    assert cli.main(["verify", str(root)]) == cli.EXIT_ERROR
    out, errs = capsys.readouterr()
    assert f"FAIL {rel}: SHA-256" in errs
    assert errs.count("FAIL") == 1
    assert "OK" not in out


@pytest.mark.parametrize("rel", ARTIFACT_FILES)
def test_a_missing_file_is_refused(cancer_art, tmp_path, capsys, rel):
    root = copy_artifact(cancer_art, tmp_path / "art")
    (root / rel).unlink()
    with pytest.raises(IntegrityError, match="missing") as err:
        nbprod.load(root)
    assert err.value.path == rel and rel in str(err.value)
    assert cli.main(["verify", str(root)]) == cli.EXIT_ERROR
    assert f"FAIL {rel}: missing" in capsys.readouterr().err


def test_a_file_of_another_size_is_refused(cancer_art, tmp_path):
    root = copy_artifact(cancer_art, tmp_path / "art")
    with open(root / "features.py", "a") as fh:
        fh.write("\nimport os  # appended after packaging\n")
    with pytest.raises(IntegrityError, match=r"features\.py: size \d+ bytes, manifest says \d+"):
        nbprod.load(root)


def test_every_problem_is_reported_by_verify(cancer_art, tmp_path, capsys):
    root = copy_artifact(cancer_art, tmp_path / "art")
    _flip_a_byte(root / "model.skops")
    (root / "features.py").unlink()
    with pytest.raises(IntegrityError, match=r"\(1 more problem\(s\)\)"):
        nbprod.load(root)
    assert cli.main(["verify", str(root)]) == cli.EXIT_ERROR
    errs = capsys.readouterr().err
    assert "FAIL model.skops" in errs and "FAIL features.py: missing" in errs


def _edit_manifest(root: Path, edit) -> None:
    m = json.loads((root / "nbprod.json").read_text())
    edit(m)
    (root / "nbprod.json").write_text(json.dumps(m))


@pytest.mark.parametrize(
    ("corrupt", "needle"),
    [
        (lambda p: p.write_text(p.read_text()[:-40]), "nbprod.json is not valid JSON"),
        (lambda p: p.write_bytes(b"\xff\xfe garbage"), "nbprod.json is not valid JSON"),
        (lambda p: p.write_text("[1, 2]"), "is not an nbprod manifest"),
        (lambda p: p.unlink(), "has no nbprod.json"),
        (lambda p: _edit_manifest(p.parent, lambda m: m.update(format="other")),
         "is not an nbprod manifest"),
        (lambda p: _edit_manifest(p.parent, lambda m: m.update(format_version=99)),
         "Artifact format 99 is newer than this nbprod reads (1); upgrade nbprod."),
        (lambda p: _edit_manifest(p.parent, lambda m: m.update(format_version="1")),
         "has no valid format_version"),
        (lambda p: _edit_manifest(p.parent, lambda m: m.pop("files")), "lists no files"),
        (lambda p: _edit_manifest(p.parent, lambda m: m["files"].update({"features.py": "?"})),
         "the entry for features.py lacks its sha256 or size"),
        (lambda p: _edit_manifest(p.parent, lambda m: m.pop("model")),
         "has no valid 'model' (dict)"),
        (lambda p: _edit_manifest(p.parent, lambda m: m.update(input_columns="mean_area")),
         "has no valid 'input_columns' (list)"),
        (lambda p: _edit_manifest(p.parent, lambda m: m.pop("reference")),
         "has no valid 'reference' (str)"),
    ],
    ids=["truncated", "binary", "not-an-object", "deleted", "wrong-format", "newer-version",
         "version-as-text", "no-files", "bad-file-entry", "no-model", "bad-input-columns",
         "no-reference"],
)
def test_a_corrupted_manifest_is_refused(cancer_art, tmp_path, capsys, corrupt, needle):
    root = copy_artifact(cancer_art, tmp_path / "art")
    corrupt(root / "nbprod.json")
    with pytest.raises(IntegrityError) as err:
        nbprod.load(root)
    assert needle in str(err.value)
    assert err.value.path == "nbprod.json"
    assert cli.main(["verify", str(root)]) == cli.EXIT_ERROR
    assert "FAIL nbprod.json" in capsys.readouterr().err
    assert cli.main(["inspect", str(root)]) == cli.EXIT_ERROR
    errs = capsys.readouterr().err.strip().splitlines()
    assert len(errs) == 1 and needle in errs[0]


FIXTURE = Path(__file__).parent / "data" / "format1-0.1.0" / "artifact"


def test_the_manifest_schema_is_json_schema_2020_12_and_every_written_manifest_follows_it(
        cancer_art, diabetes_art, kinds_art):
    """docs/manifest.schema.json is a valid draft 2020-12 schema (jsonschema, the reference
    implementation), and the manifests nbprod writes follow it, as does the format-1 fixture
    packaged by nbprod 0.1.0; nbprod's own check (fastjsonschema) agrees."""
    from jsonschema import Draft202012Validator

    from nbprod.core.manifest_schema import problem, schema, schema_path

    shipped = schema_path()  # the package's copy (a wheel has no docs/), kept identical
    assert shipped.parent == Path(nbprod.__file__).parent / "core"
    assert shipped.read_bytes() == (Path(__file__).parents[1] / "docs"
                                    / "manifest.schema.json").read_bytes()
    Draft202012Validator.check_schema(schema())
    for root in (cancer_art.path, diabetes_art.path, kinds_art.path, FIXTURE):
        assert problem(assert_valid_manifest(root)) is None


def _set(path: str | tuple[str, ...], value):
    """An edit setting (or deleting) the field at a dotted path, or at a tuple of keys when a
    key holds a dot (a file name)."""
    def edit(m):
        *parents, last = path.split(".") if isinstance(path, str) else path
        for key in parents:
            m = m[int(key)] if isinstance(m, list) else m[key]
        if value is _DELETE:
            del m[last]
        else:
            m[last] = value
    return edit


_DELETE = object()


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (_set("task", "clustering"), "task 'clustering' is not 'classification' or 'regression'"),
        (_set("artifact_id", "42"), "artifact_id '42' is not 32 hexadecimal digits"),
        (_set("classes", "0,1"), "has no valid 'classes' (list or None)"),
        (_set("snapshots.valid.rows", -3), "snapshots.valid.rows -3 is not a count"),
        (_set("snapshots.train.fingerprint", _DELETE), "snapshots.train.fingerprint is missing"),
        (_set("checks.0.status", "ok"), "checks.0.status 'ok' is not 'pass', 'warn', 'fail' or "
                                         "'skip'"),
        (_set("bounds", {"policy": "ignore"}), "bounds.policy 'ignore' is not 'flag', 'drop' or "
                                                "'fail'"),
        (_set("importance.columns.mean_area.weight", 2.5), "importance.columns.mean_area.weight "
                                                           "2.5 is not a number in [0, 1]"),
        (_set(("files", "features.py", "bytes"), -1), "files.features.py.bytes -1 is not a size in bytes"),
        (_set(("files", "MLmodel", "sha256"), "xyz"), "files.MLmodel.sha256 'xyz' is not 64 hexadecimal "
                                              "digits"),
        (_set("provenance.cells.0.captured", None), "provenance.cells.0.captured None is not an "
                                                    "ISO 8601 time"),
    ],
    ids=["task", "artifact-id", "classes", "snapshot-rows", "no-fingerprint", "check-status",
         "bounds-policy", "importance-weight", "file-size", "file-hash", "cell-time"],
)
def test_the_schema_refuses_a_manifest_naming_the_field(cancer_art, tmp_path, edit, needle):
    """A manifest the schema refuses is refused on load with a message that names the field and
    what was expected; jsonschema, the reference implementation, refuses it too."""
    from jsonschema import Draft202012Validator

    from nbprod.core.manifest_schema import schema

    root = copy_artifact(cancer_art, tmp_path / "art")
    _edit_manifest(root, edit)
    with pytest.raises(IntegrityError) as err:
        nbprod.load(root)
    assert needle in str(err.value) and err.value.path == "nbprod.json"
    assert str(err.value).startswith("nbprod.json")
    m = json.loads((root / "nbprod.json").read_text())
    assert not Draft202012Validator(schema()).is_valid(m)


def test_a_hash_edited_in_the_manifest_is_refused(cancer_art, tmp_path):
    root = copy_artifact(cancer_art, tmp_path / "art")
    _edit_manifest(root, lambda m: m["files"]["features.py"].update(sha256="0" * 64))
    with pytest.raises(IntegrityError, match=r"features\.py: SHA-256") as err:
        nbprod.load(root)
    assert err.value.path == "features.py"


def test_a_manifest_path_outside_the_artifact_is_refused(cancer_art, tmp_path):
    root = copy_artifact(cancer_art, tmp_path / "art")
    (tmp_path / "outside.txt").write_text("x")
    _edit_manifest(root, lambda m: m["files"].update(
        {"../outside.txt": {"sha256": _sha256(tmp_path / "outside.txt"), "bytes": 1}}))
    with pytest.raises(IntegrityError, match="escapes the artifact"):
        nbprod.load(root)


def test_no_artifact_at_all(tmp_path, capsys):
    with pytest.raises(IntegrityError, match="does not exist"):
        nbprod.load(tmp_path / "nowhere")
    assert cli.main(["verify", str(tmp_path / "nowhere")]) == cli.EXIT_ERROR
    assert "does not exist" in capsys.readouterr().err


def test_an_unlisted_file_is_refused(cancer_art, tmp_path, capsys):
    root = copy_artifact(cancer_art, tmp_path / "art")
    (root / "NOTES.md").write_text("reviewed by ops\n")
    (root / "snapshots" / "extra.csv").write_text("a\n1\n")
    result = nbprod.verify(root)
    assert not result.ok and result.extra == ["NOTES.md", "snapshots/extra.csv"]
    assert [f for f, _ in result.problems] == ["NOTES.md", "snapshots/extra.csv"]
    assert cli.main(["verify", str(root)]) == cli.EXIT_ERROR
    out, err = capsys.readouterr()
    assert "FAIL NOTES.md: is not listed in the manifest" in err
    assert "FAIL snapshots/extra.csv: is not listed in the manifest" in err
    assert "OK" not in out
    with pytest.raises(IntegrityError, match="NOTES.md: is not listed in the manifest") as e:
        nbprod.load(root)
    assert e.value.path == "NOTES.md"


# -- scoring input that cannot be scored ----------------------------------------------------
def test_a_missing_column_is_named(cancer_art):
    art = nbprod.load(cancer_art.path)
    with pytest.raises(SchemaError, match="missing column 'mean_area'") as err:
        art.score(cancer_art.batch.drop(columns=["mean_area"]))
    assert err.value.column == "mean_area"


def test_several_missing_columns_name_the_first(cancer_art):
    art = nbprod.load(cancer_art.path)
    with pytest.raises(SchemaError) as err:
        art.score(cancer_art.batch[["patient_id", "mean_radius"]])
    assert err.value.column == "mean_texture"
    assert "and 24 more" in str(err.value)


def test_a_missing_id_column_is_named(cancer_art):
    art = nbprod.load(cancer_art.path)
    with pytest.raises(SchemaError, match="id column 'patient_id'") as err:
        art.score(cancer_art.batch.drop(columns=["patient_id"]))
    assert err.value.column == "patient_id"


def test_a_value_that_does_not_convert_is_named(cancer_art):
    art = nbprod.load(cancer_art.path)
    bad = cancer_art.batch.astype({"mean_texture": "object"})
    bad.loc[7, "mean_texture"] = "abc"
    with pytest.raises(RowError) as err:  # errors="raise" by default: a SchemaError
        art.score(bad)
    assert isinstance(err.value, SchemaError)
    assert (err.value.row, err.value.column, err.value.rule, err.value.value) == (
        7, "mean_texture", "type", "abc")
    assert "'mean_texture'" in str(err.value) and "'abc'" in str(err.value)
    assert "Row 7 (id 'P0457')" in str(err.value)
    # errors="reject": the other rows are scored, exactly as without the bad row
    scored = art.score(bad, errors="reject")
    assert len(scored) == len(bad) - 1 and 7 not in scored.index
    pd.testing.assert_frame_equal(scored, art.score(cancer_art.batch.drop(index=7)))
    issues = art.validate(bad)
    assert issues.rejected.tolist() == [i == 7 for i in range(len(bad))]


def test_a_column_where_no_value_converts_is_the_input_s_error(cancer_art):
    art = nbprod.load(cancer_art.path)
    bad = cancer_art.batch.assign(mean_texture="n/a")
    for errors in ("raise", "reject"):
        with pytest.raises(SchemaError, match="Column 'mean_texture' expected float values "
                           r"\(float64\); none of its 119 non-blank value\(s\) converts") as err:
            art.score(bad, errors=errors)
        assert err.value.column == "mean_texture"


def test_no_rows_is_an_error(cancer_art, diabetes_art):
    for packaged in (cancer_art, diabetes_art):
        with pytest.raises(SchemaError, match="no rows"):
            nbprod.load(packaged.path).score(packaged.batch.iloc[:0])


def test_not_a_frame_is_an_error(diabetes_art):
    with pytest.raises(SchemaError, match="Expected a pandas DataFrame"):
        nbprod.load(diabetes_art.path).score(diabetes_art.batch.to_numpy())


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_execute_refuses_bad_input_and_writes_nothing(cancer_art, tmp_path, case):
    bad = BAD_INPUTS[case]
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    inp = bad.make(tmp_path / "in", cancer_art.batch)
    with pytest.raises(bad.error) as err:
        nbrun.execute(
            input_path=str(inp),
            output_path=str(tmp_path / "out" / "preds.csv"),
            summary_path=str(tmp_path / "out" / "summary.json"),
            artifact_path=str(cancer_art.path),
            log_to_mlflow=False,
        )
    assert bad.needle in str(err.value)
    assert "\n" not in str(err.value)
    assert list((tmp_path / "out").iterdir()) == []  # no output, no summary, no temp file


def test_execute_refuses_a_bad_output_extension_before_any_work(cancer_art, tmp_path):
    inp = write_csv(cancer_art.batch, tmp_path / "in.csv")
    with pytest.raises(InputError, match=r"output_path .*unsupported file type '\.json'"):
        nbrun.execute(input_path=str(inp), output_path=str(tmp_path / "preds.json"),
                      artifact_path=str(cancer_art.path), log_to_mlflow=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_execute_refuses_bad_labels(cancer_art, tmp_path):
    inp = write_csv(cancer_art.batch, tmp_path / "in.csv")
    labels = write_csv(cancer_art.labels.drop(columns=["patient_id"]), tmp_path / "labels.csv")
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match=r"labels file '.*labels\.csv' has no id column 'patient_id'"):
        nbrun.execute(input_path=str(inp), output_path=str(tmp_path / "out" / "p.csv"),
                      labels_path=str(labels), artifact_path=str(cancer_art.path),
                      log_to_mlflow=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_execute_finds_the_artifact_where_it_was_packaged(cancer_art, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inp = write_csv(cancer_art.batch, tmp_path / "in.csv")
    m = cancer_art.manifest
    run = nbrun.execute(input_path=str(inp), output_path=None, packaged_at=m["packaged_at"],
                        artifact_id=m["artifact_id"], log_to_mlflow=False)
    assert run.artifact.root == cancer_art.path
    assert run.output_path is None and len(run.predictions) == len(cancer_art.batch)
    # a different artifact now sits where this one was packaged: refused, with the fix
    with pytest.raises(IntegrityError, match="-p artifact_path PATH"):
        nbrun.execute(input_path=str(inp), output_path=None, packaged_at=m["packaged_at"],
                      artifact_id="0" * 32, log_to_mlflow=False)


def test_execute_scores_into_csv_and_parquet(cancer_art, tmp_path):
    inp = write_csv(cancer_art.batch, tmp_path / "in.csv")
    expected = nbprod.load(cancer_art.path).score(cancer_art.batch)
    for name in ("preds.csv", "preds.parquet", "preds.csv.gz"):
        run = nbrun.execute(input_path=str(inp), output_path=str(tmp_path / name),
                            artifact_path=str(cancer_art.path), log_to_mlflow=False)
        assert run.status in ("ok", "warn")
        got = (pd.read_parquet(tmp_path / name) if name.endswith(".parquet")
               else pd.read_csv(tmp_path / name))
        assert list(got.columns) == list(expected.columns)
        assert got["patient_id"].tolist() == expected["patient_id"].tolist()
        np.testing.assert_allclose(got["proba_1"], expected["proba_1"], rtol=1e-12)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_execute_keeps_text_ids_exactly_as_they_came(cancer_art, tmp_path):
    # ids were text at training; zero-padded numbers must not come back as integers
    batch = cancer_art.batch.assign(patient_id=[f"{i:05d}" for i in range(len(cancer_art.batch))])
    labels = cancer_art.labels.assign(patient_id=batch["patient_id"])
    inp = write_csv(batch, tmp_path / "in.csv")
    lab = write_csv(labels, tmp_path / "labels.csv")
    run = nbrun.execute(input_path=str(inp), output_path=str(tmp_path / "preds.csv"),
                        labels_path=str(lab), artifact_path=str(cancer_art.path),
                        log_to_mlflow=False)
    assert run.predictions["patient_id"].tolist() == batch["patient_id"].tolist()
    written = pd.read_csv(tmp_path / "preds.csv", dtype={"patient_id": "str"})
    assert written["patient_id"].tolist() == batch["patient_id"].tolist()
    assert run.performance["labelled_rows"] == len(batch)  # labels join on the same text ids


def test_execute_refuses_a_summary_path_it_could_not_write(cancer_art, tmp_path):
    inp = write_csv(cancer_art.batch, tmp_path / "in.csv")
    (tmp_path / "out").mkdir()
    with pytest.raises(NbprodUsageError, match=r"summary_path .*directory .*nodir.* does not exist"):
        nbrun.execute(input_path=str(inp), output_path=str(tmp_path / "out" / "preds.csv"),
                      summary_path=str(tmp_path / "nodir" / "summary.json"),
                      artifact_path=str(cancer_art.path), log_to_mlflow=False)
    assert list((tmp_path / "out").iterdir()) == []  # the predictions were not written first


def test_requirements_see_a_distribution_installed_after_the_first_scan(tmp_path, monkeypatch):
    """The module-to-distribution map is scanned once per state of sys.path (the scan costs about
    0.4 s a package), yet a distribution installed between two packagings is pinned by the second."""
    import time

    from nbprod.capture.provenance import module_distributions, requirements

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    source = "import nbprodtestmod\n\ndef features(df):\n    return df\n"
    first = module_distributions()
    assert "nbprodtestmod" not in first
    assert module_distributions() is first  # nothing changed: no second scan
    assert not any(r.startswith("nbprod-test-dist==") for r in requirements(source, object(), "w.whl"))

    time.sleep(0.05)  # past the file system's timestamp granularity, as any real install is
    _installed(site, "nbprodtestmod", "nbprod-test-dist", "1.2.3")
    assert module_distributions()["nbprodtestmod"] == ["nbprod-test-dist"]
    assert "nbprod-test-dist==1.2.3" in requirements(source, object(), "w.whl")


def _installed(site: Path, module: str, dist: str, version: str) -> None:
    """An installed distribution ``dist`` of ``version`` providing ``module``, in ``site``."""
    (site / module).mkdir()
    (site / module / "__init__.py").write_text("")
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{module}\n")


def test_requirements_scan_once_whatever_the_working_directory(tmp_path, monkeypatch):
    """Moving to another directory (every notebook and test does) does not cost a second scan,
    unless "" is on sys.path (``python -c``, a kernel): then the working directory's
    distributions count."""
    import sys

    from nbprod.capture.provenance import module_distributions

    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != ""])
    first = module_distributions()
    monkeypatch.chdir(tmp_path)
    assert module_distributions() is first
    _installed(tmp_path, "nbprodcwdmod", "nbprod-cwd-dist", "0.1")
    monkeypatch.syspath_prepend("")
    assert module_distributions()["nbprodcwdmod"] == ["nbprod-cwd-dist"]

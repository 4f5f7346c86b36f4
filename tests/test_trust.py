"""Artifact trust: complete and confined verification, Ed25519 signatures, the trusted-types
policy and the registry pin, tried the way an adversary would.

The tamper matrix runs in-process on copies of the shared artifacts; only the notebook
injection cases go through the real ``nbprod`` console script. Keys are generated here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

import nbprod
from nbprod import cli
from nbprod.core import signing
from nbprod.exceptions import IntegrityError, NbprodUsageError, PackagingError

from .artifacts import ARTIFACT_FILES, copy_artifact, write_csv
from .conftest import run
from .keys import keypair


# -- keys and helpers -----------------------------------------------------------------------
@dataclass(frozen=True)
class Keys:
    key: Path  # the signer's private key
    pub: Path  # its public half
    other_key: Path  # someone else's key pair
    other_pub: Path


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Keys:
    d = tmp_path_factory.mktemp("keys")
    return Keys(*keypair(d, "ops"), *keypair(d, "other"))


@pytest.fixture(scope="module")
def signed(cancer_art, keys, tmp_path_factory) -> Path:
    """A signed copy of the shared classifier (read-only: tests alter copies of it)."""
    root = copy_artifact(cancer_art, tmp_path_factory.mktemp("signed") / "art")
    signing.sign(root, keys.key)
    return root


def _copy(root: Path, dest: Path) -> Path:
    shutil.copytree(root, dest, symlinks=True)
    return dest


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(root: Path) -> dict:
    return json.loads((root / "nbprod.json").read_text())


def _write_manifest(root: Path, m: dict) -> None:
    (root / "nbprod.json").write_text(json.dumps(m, indent=2))


def _rewrite(root: Path, rel: str, data: bytes) -> None:
    """A consistent rewrite: new contents and its hash and size recomputed in the manifest."""
    (root / rel).write_bytes(data)
    m = _manifest(root)
    m["files"][rel] = {"sha256": _sha256(data), "bytes": len(data)}
    _write_manifest(root, m)


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _refused(root: Path, *, trusted_keys=None) -> IntegrityError:
    """Both nbprod.verify and nbprod.load refuse; returns load's error."""
    assert not nbprod.verify(root, trusted_keys=trusted_keys).ok
    with pytest.raises(IntegrityError) as err:
        nbprod.load(root, trusted_keys=trusted_keys)
    return err.value


def _marker_cell(marker: Path) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": "injected", "metadata": {},
            "outputs": [], "source": f"open({str(marker)!r}, 'w').write('injected code ran')"}


def _inject(root: Path, marker: Path) -> bytes:
    """score.ipynb with a first code cell that creates ``marker``."""
    nb = json.loads((root / "score.ipynb").read_text())
    nb["cells"].insert(1, _marker_cell(marker))
    return json.dumps(nb, indent=1).encode()


def _console(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("nbprod")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "nbprod.cli"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=os.environ.copy())


# -- byte flips under a trusted key ---------------------------------------------------------
@pytest.mark.parametrize("rel", [*ARTIFACT_FILES, "nbprod.json", "nbprod.sig"])
def test_a_flipped_byte_anywhere_in_a_signed_artifact_is_refused(signed, keys, tmp_path, rel):
    root = _copy(signed, tmp_path / "art")
    _flip_a_byte(root / rel)
    err = _refused(root, trusted_keys=[keys.pub])
    if rel in ARTIFACT_FILES:
        assert err.path == rel and rel in str(err)
    else:  # the manifest or the signature: not what was signed (or not readable any more)
        assert err.path in ("nbprod.json", "nbprod.sig")


def test_a_signed_artifact_verifies_and_loads_with_its_key(signed, keys, capsys):
    check = nbprod.verify(signed, trusted_keys=[keys.pub])
    fp = signing.load_public_key(keys.pub).fingerprint
    assert check.ok and check.signed_by == fp and check.authentic == f"signed by trusted key {fp}"
    art = nbprod.load(signed, trusted_keys=[str(keys.pub)])
    assert art.authentic == f"signed by trusted key {fp}"
    assert cli.main(["verify", str(signed), "--trusted-key", str(keys.pub)]) == cli.EXIT_OK
    assert capsys.readouterr().out.strip() == (
        f"OK {signed}: {len(ARTIFACT_FILES)} files match their SHA-256; signed by trusted key {fp}")
    # without a trusted key the signature is reported, not relied on
    assert cli.main(["verify", str(signed)]) == cli.EXIT_OK
    assert "(not checked: no trusted key given)" in capsys.readouterr().out
    assert nbprod.load(signed).authentic is None


# -- manifest edits (unsigned: the checks that need no key) ---------------------------------
def _empty_list(m, root, tmp):
    m["files"] = {}


def _pointer_dotdot(m, root, tmp):
    (tmp / "x.py").write_text("def cancer_features(df):\n    return df\n")
    data = (tmp / "x.py").read_bytes()
    m["files"]["../x.py"] = {"sha256": _sha256(data), "bytes": len(data)}
    m["features"]["file"] = "../x.py"


def _pointer_absolute(m, root, tmp):
    data = Path("/etc/passwd").read_bytes()
    m["files"]["/etc/passwd"] = {"sha256": _sha256(data), "bytes": len(data)}
    m["reference"] = "/etc/passwd"


def _pointer_unlisted(m, root, tmp):
    (root / "evil.py").write_text("def cancer_features(df):\n    return df\n")
    m["features"]["file"] = "evil.py"


def _pointer_not_a_path(m, root, tmp):
    m["model"]["file"] = ["model.skops"]


def _no_train_snapshot(m, root, tmp):
    del m["snapshots"]["train"]


@pytest.mark.parametrize(
    ("edit", "problem", "needle"),
    [
        (_empty_list, "nbprod.json", "features.file names features.py, which the manifest's "
                                     "file list does not cover"),
        (_pointer_dotdot, "nbprod.json", "features.file '../x.py' uses '..'"),
        (_pointer_absolute, "nbprod.json", "reference '/etc/passwd' is an absolute path"),
        (_pointer_unlisted, "nbprod.json", "features.file names evil.py, which the manifest's "
                                           "file list does not cover"),
        (_pointer_not_a_path, "nbprod.json", "model.file ['model.skops'] is not a file path"),
        (_no_train_snapshot, "nbprod.json", "snapshots.train is missing"),
    ],
    ids=["list-emptied", "pointer-dotdot", "pointer-absolute", "pointer-unlisted",
         "pointer-not-a-path", "no-train-snapshot"],
)
def test_manifest_edits_are_refused(cancer_art, tmp_path, capsys, edit, problem, needle):
    root = copy_artifact(cancer_art, tmp_path / "art")
    m = _manifest(root)
    edit(m, root, tmp_path)
    _write_manifest(root, m)
    check = nbprod.verify(root)
    assert any(f == problem and needle in what for f, what in check.problems), check.problems
    with pytest.raises(IntegrityError, match="nbprod.json") as err:
        nbprod.load(root)
    assert err.value.path == "nbprod.json"
    assert cli.main(["verify", str(root)]) == cli.EXIT_ERROR
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize("rel", ARTIFACT_FILES)
def test_a_list_shortened_by_one_is_refused(cancer_art, tmp_path, rel):
    root = copy_artifact(cancer_art, tmp_path / "art")
    m = _manifest(root)
    del m["files"][rel]
    _write_manifest(root, m)
    err = _refused(root)
    problems = nbprod.verify(root).problems
    assert (rel, "is not listed in the manifest; an artifact holds only the files it lists "
                 "(remove it, or re-package)") in problems
    assert rel in str(err)


@pytest.mark.parametrize("rel", ["reference.json", "MLmodel", "snapshots/valid.sample.parquet"])
def test_a_shortened_list_with_the_file_removed_too_is_refused(cancer_art, tmp_path, rel):
    root = copy_artifact(cancer_art, tmp_path / "art")
    m = _manifest(root)
    del m["files"][rel]
    _write_manifest(root, m)
    (root / rel).unlink()
    err = _refused(root)
    assert err.path == "nbprod.json" and f"names {rel}, which the manifest's file list" in str(err)


@pytest.mark.parametrize("types", [["builtins.eval"], ["os.system"], ["subprocess.Popen"],
                                   ["operator.attrgetter"], ["__main__.Model"],
                                   ["sklearn.tree._tree.Tree", "nbprod_evil.Thing"]])
def test_extended_trusted_types_are_refused_unless_authentic(cancer_art, keys, tmp_path, types):
    root = copy_artifact(cancer_art, tmp_path / "art")
    m = _manifest(root)
    m["model"]["trusted_types"] = types
    _write_manifest(root, m)
    err = _refused(root)
    assert err.path == "nbprod.json"
    assert f"model.trusted_types asks to trust {types[-1]}" in str(err)
    assert "nbprod sign ART --key KEY.pem" in str(err)
    # signed by a trusted key, the same list is the signer's decision and is honoured
    signing.sign(root, keys.key)
    assert nbprod.load(root, trusted_keys=[keys.pub]).authentic


def test_allowlisted_types_need_no_signature(cancer_art, tmp_path):
    root = copy_artifact(cancer_art, tmp_path / "art")
    m = _manifest(root)
    m["model"]["trusted_types"] = ["sklearn.tree._tree.Tree", "numpy.dtype", "numpy.float64",
                                   "numpy.log1p", "scipy.sparse._csr.csr_matrix"]
    _write_manifest(root, m)
    assert nbprod.verify(root).ok
    nbprod.load(root)


# -- links, strays, confinement -------------------------------------------------------------
def test_a_file_replaced_by_a_symlink_to_identical_content_is_refused(cancer_art, tmp_path):
    root = copy_artifact(cancer_art, tmp_path / "art")
    shutil.copy(root / "features.py", tmp_path / "features.py")
    (root / "features.py").unlink()
    (root / "features.py").symlink_to(tmp_path / "features.py")
    err = _refused(root)
    assert err.path == "features.py" and "is a symbolic link" in str(err)


def test_a_symlinked_directory_is_refused(cancer_art, tmp_path):
    root = copy_artifact(cancer_art, tmp_path / "art")
    shutil.move(root / "snapshots", tmp_path / "snapshots")
    (root / "snapshots").symlink_to(tmp_path / "snapshots", target_is_directory=True)
    err = _refused(root)
    assert "snapshots: is a symbolic link" in str(err)
    assert not any(what == "missing" for _, what in nbprod.verify(root).problems)


def test_a_symlinked_manifest_is_refused(cancer_art, tmp_path):
    root = copy_artifact(cancer_art, tmp_path / "art")
    shutil.move(root / "nbprod.json", tmp_path / "nbprod.json")
    (root / "nbprod.json").symlink_to(tmp_path / "nbprod.json")
    assert _refused(root).path == "nbprod.json"


def test_a_link_to_the_whole_artifact_is_a_way_to_name_it(cancer_art, tmp_path):
    """Deployments point a stable name at the current version: the root may be a link."""
    (tmp_path / "current").symlink_to(cancer_art.path, target_is_directory=True)
    assert nbprod.verify(tmp_path / "current").ok
    nbprod.load(tmp_path / "current")


def test_a_pycache_directory_is_refused(cancer_art, tmp_path):
    root = copy_artifact(cancer_art, tmp_path / "art")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "features.cpython-311.pyc").write_bytes(b"\x00" * 16)
    err = _refused(root)
    assert err.path == "__pycache__/features.cpython-311.pyc"
    assert "is not listed in the manifest" in str(err)


def test_load_uses_the_bytes_it_verified(cancer_art, tmp_path):
    root = copy_artifact(cancer_art, tmp_path / "art")
    art = nbprod.load(root)
    verified = art.feature_source
    (root / "features.py").write_text("raise SystemExit('swapped after verification')\n")
    assert art.feature_source == verified
    assert art.reference == json.loads((cancer_art.path / "reference.json").read_text())


# -- consistent rewrites and injected code --------------------------------------------------
def test_a_consistent_rewrite_passes_unsigned_and_is_refused_under_a_trusted_key(
        signed, keys, tmp_path):
    root = _copy(signed, tmp_path / "art")
    marker = tmp_path / "features-ran"
    source = (root / "features.py").read_text()
    _rewrite(root, "features.py",
             (source + f"\nopen({str(marker)!r}, 'w').write('injected code ran')\n").encode())
    # unsigned checks cannot tell a consistent rewrite (docs/security.md says so)
    assert nbprod.verify(root).ok
    with pytest.raises(IntegrityError) as err:
        nbprod.load(root, trusted_keys=[keys.pub])
    assert err.value.path == "features.py"
    assert "the manifest changed after it was signed by key ed25519:" in str(err.value)
    assert "the entries of features.py differ from the signed ones" in str(err.value)
    assert not marker.exists()


def test_injected_notebook_code_never_runs(cancer_art, tmp_path):
    """(a) score.ipynb edited, manifest untouched: `nbprod score` refuses before any kernel."""
    root = copy_artifact(cancer_art, tmp_path / "art")
    marker = tmp_path / "notebook-ran"
    (root / "score.ipynb").write_bytes(_inject(root, marker))
    write_csv(cancer_art.batch.head(20), tmp_path / "in.csv")
    proc = _console("score", str(root), "in.csv", "-o", "out.csv", "--no-mlflow", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "score.ipynb: size" in proc.stderr and proc.stderr.count("\n") == 1
    assert not marker.exists() and not (tmp_path / "out.csv").exists()


def test_injected_notebook_code_never_runs_under_a_trusted_key(signed, keys, tmp_path):
    """(b) score.ipynb edited and its hash recomputed: refused by the signature."""
    root = _copy(signed, tmp_path / "art")
    marker = tmp_path / "notebook-ran"
    _rewrite(root, "score.ipynb", _inject(root, marker))
    assert nbprod.verify(root).ok  # consistent: only the signature can tell
    write_csv(pd.DataFrame({"x": [1]}), tmp_path / "in.csv")
    proc = _console("score", str(root), "in.csv", "-o", "out.csv", "--no-mlflow",
                    "--trusted-key", str(keys.pub), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "score.ipynb: the manifest changed after it was signed" in proc.stderr
    assert not marker.exists() and not (tmp_path / "out.csv").exists()


# -- keys and signatures --------------------------------------------------------------------
def test_wrong_key_unsigned_and_damaged_signatures_are_refused(signed, keys, cancer_art,
                                                               tmp_path, monkeypatch, capsys):
    other = signing.load_public_key(keys.other_pub).fingerprint
    mine = signing.load_public_key(keys.pub).fingerprint
    assert cli.main(["verify", str(signed), "--trusted-key", str(keys.other_pub)]) == 1
    err = capsys.readouterr().err
    assert f"FAIL nbprod.sig: signed by key {mine}, which is not trusted (trusted: {other}" in err

    monkeypatch.setenv(signing.ENV, os.pathsep.join(["", str(keys.pub)]))
    with pytest.raises(IntegrityError, match="the artifact is unsigned") as e:
        nbprod.load(cancer_art.path)
    assert e.value.path == "nbprod.sig" and mine in str(e.value)
    nbprod.load(signed)  # NBPROD_TRUSTED_KEYS alone is enough
    assert cli.main(["verify", str(cancer_art.path)]) == 1
    assert "FAIL nbprod.sig: the artifact is unsigned" in capsys.readouterr().err

    root = _copy(signed, tmp_path / "art")
    record = json.loads((root / "nbprod.sig").read_text())
    forged = signing.sign(copy_artifact(cancer_art, tmp_path / "other"), keys.other_key)
    record["signature"] = forged["signature"]  # a real signature, by another key
    (root / "nbprod.sig").write_text(json.dumps(record))
    with pytest.raises(IntegrityError, match=f"does not verify with trusted key {mine}"):
        nbprod.load(root)
    (root / "nbprod.sig").write_text("{not json")
    with pytest.raises(IntegrityError, match="nbprod.sig is damaged"):
        nbprod.load(root)
    monkeypatch.delenv(signing.ENV)  # without trusted keys a signature is reported, not relied on
    capsys.readouterr()
    assert cli.main(["verify", str(root)]) == cli.EXIT_OK
    assert "; nbprod.sig is damaged (not JSON" in capsys.readouterr().out


def test_sign_refuses_an_artifact_that_does_not_verify_and_bad_keys(cancer_art, keys, tmp_path,
                                                                    capsys):
    root = copy_artifact(cancer_art, tmp_path / "art")
    (root / "stray.txt").write_text("x")
    assert cli.main(["sign", str(root), "--key", str(keys.key)]) == cli.EXIT_ERROR
    assert "Refusing to sign" in capsys.readouterr().err and not (root / "nbprod.sig").exists()
    (root / "stray.txt").unlink()
    for key, needle in ((keys.pub, "is a public key"), (tmp_path / "none.pem", "does not exist"),
                        (root / "MLmodel", "is not a PEM key")):
        assert cli.main(["sign", str(root), "--key", str(key)]) == cli.EXIT_USAGE
        assert needle in capsys.readouterr().err
    assert cli.main(["verify", str(root), "--trusted-key", str(keys.key)]) == cli.EXIT_USAGE
    assert "is a private key; trust the public key instead" in capsys.readouterr().err
    assert cli.main(["sign", str(root), "--key", str(keys.key)]) == cli.EXIT_OK
    assert "with key ed25519:" in capsys.readouterr().out
    assert nbprod.verify(root, trusted_keys=[keys.pub]).ok
    # re-signing with another key replaces the signature (key rotation)
    signing.sign(root, keys.other_key)
    assert nbprod.verify(root, trusted_keys=[keys.other_pub]).ok
    assert not nbprod.verify(root, trusted_keys=[keys.pub]).ok
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []


def test_openssl_keys_work(cancer_art, tmp_path):
    if not shutil.which("openssl"):
        pytest.fail("openssl is not installed")
    key, pub = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    root = copy_artifact(cancer_art, tmp_path / "art")
    signing.sign(root, key)
    assert nbprod.verify(root, trusted_keys=[pub]).ok
    rsa = tmp_path / "rsa.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "rsa", "-out", str(tmp_path / "r")],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(tmp_path / "r"), "-pubout", "-out", str(rsa)],
                   check=True)
    with pytest.raises(NbprodUsageError, match="not an Ed25519 public key"):
        nbprod.verify(root, trusted_keys=[rsa])


def test_package_sign_with_a_bad_key_is_a_usage_error(shell, keys, in_tmp):
    """Signing at packaging works in test_magics (the full capture); a bad key fails first."""
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="is a public key"):
        run(shell, f"%nbprod package art --no-mlflow --sign {keys.pub}")
    with pytest.raises(UsageError, match="does not exist"):
        run(shell, "%nbprod package art --no-mlflow --sign missing.pem")
    assert list(in_tmp.iterdir()) == []


# -- a model whose types are outside the unsigned allowlist ---------------------------------
def _spline_session(diabetes, name: str):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer

    s = nbprod.Session(name)
    s.snapshot(diabetes.iloc[:300], role="train", target="target", sample_size=50)
    s.snapshot(diabetes.iloc[300:380], role="valid", target="target", sample_size=50)

    def features(df):
        return df

    s.features(features)
    train = diabetes.iloc[:300]
    s.model(make_pipeline(SplineTransformer(n_knots=4), Ridge()).fit(
        train.drop(columns=["target"]), train["target"]))
    return s


@pytest.fixture(scope="module")
def spline(diabetes, keys, tmp_path_factory, mlflow_store):
    """A signed artifact whose model needs scipy's BSpline (not allowlisted), registered."""
    from nbprod.tracking import registry

    s = _spline_session(diabetes, "trust-spline")
    path = tmp_path_factory.mktemp("spline") / "art"
    result = s.package(path, log_to_mlflow=False, sign=keys.key)
    return path, result, registry.register(path)


def test_unsigned_packaging_of_such_a_model_is_refused(diabetes, tmp_path):
    s = _spline_session(diabetes, "trust-spline-unsigned")
    with pytest.raises(PackagingError, match=r"needs skops to trust scipy\._lib") as err:
        s.package(tmp_path / "art", log_to_mlflow=False)
    assert "--sign KEY.pem" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_its_types_count_only_when_the_manifest_is_authentic(spline, keys, diabetes):
    path, result, reg = spline
    assert result.signed_by == signing.load_public_key(keys.pub).fingerprint
    with pytest.raises(IntegrityError, match="scipy.interpolate._bsplines.BSpline") as err:
        nbprod.load(path)
    assert "nbprod sign ART --key KEY.pem" in str(err.value)
    batch = diabetes.iloc[380:].drop(columns=["target"])
    by_key = nbprod.load(path, trusted_keys=[keys.pub])
    by_pin = nbprod.load(reg["uri"])  # registered: the pin authenticates it
    assert by_pin.authentic == f"pinned by the registry ({reg['uri']})"
    pd.testing.assert_frame_equal(by_pin.score(batch), by_key.score(batch))


@pytest.mark.slow
def test_score_hands_the_trusted_key_to_its_kernel(spline, keys, diabetes, tmp_path, capsys):
    """The kernel loads the model too: without the key it would refuse the BSpline type."""
    path, _, _ = spline
    write_csv(diabetes.iloc[380:].drop(columns=["target"]), tmp_path / "in.csv")
    rc = cli.main(["score", str(path), str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"),
                   "--no-mlflow", "--trusted-key", str(keys.pub)])
    assert rc in (cli.EXIT_OK, cli.EXIT_ALERT), capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "out.csv")) == len(diabetes) - 380
    assert signing.ENV not in os.environ  # handed to the kernel, then taken back


@pytest.mark.slow
def test_score_a_registry_uri_hands_the_pin_to_its_kernel(spline, diabetes, tmp_path, capsys):
    write_csv(diabetes.iloc[380:].drop(columns=["target"]), tmp_path / "in.csv")
    rc = cli.main(["score", "models:/trust-spline@champion", str(tmp_path / "in.csv"), "-o",
                   str(tmp_path / "out.csv"), "--no-mlflow"])
    assert rc in (cli.EXIT_OK, cli.EXIT_ALERT), capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "out.csv")) == len(diabetes) - 380


# -- the registry pin -----------------------------------------------------------------------
def _registered_copy(uri: str) -> Path:
    import mlflow

    from nbprod.tracking.registry import ARTIFACT_DIR, version_of

    _, _, v = version_of(uri)
    client = mlflow.MlflowClient()
    if v.source.startswith("models:/m-"):  # the packaging run's logged model
        source = client.get_logged_model(v.source[len("models:/"):]).artifact_location
        sub = ""
    else:  # packaged before logged models: the run's copy
        source, sub = client.get_run(v.run_id).info.artifact_uri, ARTIFACT_DIR
    parsed = urlparse(source)
    assert parsed.scheme in ("", "file"), f"the test store keeps artifacts locally: {source}"
    return Path(unquote(parsed.path)) / sub


def test_a_registered_copy_changed_after_registration_is_refused(spline, diabetes, tmp_path,
                                                                capsys):
    _, _, reg = spline
    copy = _registered_copy(reg["uri"])
    saved = {rel: (copy / rel).read_bytes() for rel in ("features.py", "nbprod.json")}
    marker = tmp_path / "features-ran"
    try:
        source = saved["features.py"].decode()
        _rewrite(copy, "features.py",
                 (source + f"\nopen({str(marker)!r}, 'w').write('injected code ran')\n").encode())
        for uri in (reg["uri"], "models:/trust-spline@champion"):
            with pytest.raises(IntegrityError, match="differs from the digest `nbprod register` "
                                                     "recorded for models:/trust-spline/") as err:
                nbprod.load(uri)
            assert err.value.path == "nbprod.json"
        write_csv(diabetes.iloc[380:].drop(columns=["target"]), tmp_path / "in.csv")
        assert cli.main(["score", "models:/trust-spline@champion", str(tmp_path / "in.csv"),
                         "-o", str(tmp_path / "out.csv"), "--no-mlflow"]) == cli.EXIT_ERROR
        err = capsys.readouterr().err
        assert "was changed after it was registered" in err and err.count("\n") == 1
        assert not marker.exists() and not (tmp_path / "out.csv").exists()
    finally:
        for rel, data in saved.items():
            (copy / rel).write_bytes(data)
    assert nbprod.load(reg["uri"]).authentic


def test_a_signature_renewed_after_registration_joins_the_registered_copy(spline, keys):
    """Key rotation: re-sign with the new key, register again (same version), load with it."""
    from nbprod.tracking import registry

    path, _, reg = spline
    try:
        signing.sign(path, keys.other_key)
        again = registry.register(path)
        assert again["created"] is False and again["uri"] == reg["uri"]
        art = nbprod.load(reg["uri"], trusted_keys=[keys.other_pub])
        assert art.authentic == f"signed by trusted key {signing.load_public_key(keys.other_pub).fingerprint}"
        with pytest.raises(IntegrityError, match="which is not trusted"):
            nbprod.load(reg["uri"], trusted_keys=[keys.pub])
    finally:
        signing.sign(path, keys.key)
        registry.register(path)


def test_register_refuses_an_artifact_changed_since_it_was_logged(cancer_art, tmp_path):
    from nbprod.exceptions import RegistryError
    from nbprod.tracking import registry

    root = copy_artifact(cancer_art, tmp_path / "art")  # its packaging run is in MLflow
    m = _manifest(root)
    m["checks"][0]["message"] = "made up after packaging"
    _write_manifest(root, m)
    assert nbprod.verify(root).ok
    with pytest.raises(RegistryError, match="differs from the copy logged to MLflow"):
        registry.register(root)
    assert registry.find_version("cancer", m["artifact_id"]) is None

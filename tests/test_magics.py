"""Every magic through a real IPython shell: happy paths and mistakes."""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError

from nbprod.jupyter.status import Status

from .conftest import run
from .keys import keypair

FEATURES_CELL = '''%%nbprod features
import numpy as np
SCALE = 2.0

def _ratio(a, b):
    return a / (b + 1.0)

def features(df):
    out = df.copy()
    out["area_ratio"] = _ratio(df["mean_area"], df["worst_area"]) * SCALE
    out["log_area"] = np.log1p(df["mean_area"])
    return out

X_train = features(train.drop(columns=["target", "patient_id"]))
'''

MODEL_CELL = '''%%nbprod model
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, train["target"])
'''


def _prepare(shell, cancer):
    shell.user_ns["train"] = cancer.iloc[:400].copy()
    shell.user_ns["valid"] = cancer.iloc[400:].copy()
    run(shell, "%nbprod init cancer")
    run(shell, "%nbprod snapshot train --role train --target target --id patient_id")
    run(shell, "%nbprod snapshot valid --role valid --target target --id patient_id")
    run(shell, FEATURES_CELL)
    run(shell, MODEL_CELL)


def session(shell):
    return shell.magics_manager.registry["NbprodMagics"].session


def test_full_capture_and_package(shell, cancer, in_tmp, capsys):
    _prepare(shell, cancer)
    s = session(shell)
    assert s.name == "cancer"
    assert set(s.snapshots) == {"train", "valid"}
    src = s.feature_capture.code.source
    # imports, constants and the helper from the same cell are carried; data lines are not
    assert "import numpy as np" in src
    assert "SCALE = 2.0" in src
    assert "def _ratio(a, b):" in src
    assert "X_train" not in src
    assert s.model_capture.task == "classification"

    key, pub = keypair(in_tmp, "signer")
    run(shell, f"%nbprod package art --sign {key}")
    art_dir = in_tmp / "art"
    manifest = json.loads((art_dir / "nbprod.json").read_text())
    assert (art_dir / "nbprod.sig").is_file() and "nbprod.sig" not in manifest["files"]
    assert manifest["name"] == "cancer"
    assert manifest["id_column"] == "patient_id"
    assert manifest["provenance"]["cells"][0]["kind"] == "snapshot train"
    assert any(c["kind"] == "features" and "def features" in c["source"]
               for c in manifest["provenance"]["cells"])
    out = capsys.readouterr().out
    assert "captured features() as source" in out
    assert "signed by ed25519:" in out

    import nbprod

    art = nbprod.load(art_dir, trusted_keys=[pub])
    assert art.authentic.startswith("signed by trusted key ed25519:")
    scored = art.score(cancer.iloc[400:])
    assert list(scored.columns) == ["patient_id", "prediction", "proba_0", "proba_1"]
    assert scored["patient_id"].tolist() == cancer["patient_id"].iloc[400:].tolist()


def test_status_lists_captures(shell, cancer, capsys):
    _prepare(shell, cancer)
    text = repr(Status(session(shell)))
    assert "train snapshot: 400 rows x 30 input columns" in text
    assert "features() captured as source" in text
    html = Status(session(shell))._repr_html_()
    assert "<table>" in html and "cancer" in html
    run(shell, "%nbprod status")  # displays without error


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("%nbprod snapshot trian --role train --target target", "Did you mean 'train'"),
        ("%nbprod snapshot train --role train --tagret target", "did you mean '--target'"),
        ("%nbprod snapshot train --role test --target target", "invalid choice: 'test'"),
        ("%nbprod snapshot train --role train --target targt", "Did you mean 'target'"),
        ("%nbprod snapshot train --role train --target target --id nope", "--id names column 'nope'"),
        ("%nbprod snapshot train --role train --target target --pii mail", "--pii names column 'mail'"),
        ("%nbprod snapshot train --role train --target target --target target", "given twice"),
        ("%nbprod snapshot number --role train --target target", "must be a pandas DataFrame"),
        ("%nbprod snapshot train --role train", "required: --target"),
        ("%nbprod snapshto train", "did you mean 'snapshot'"),
        ("%nbprod", "needs a subcommand"),
        ("%nbprod features", "is a cell magic"),
        ("%nbprod package", "required: PATH"),
        ("%nbprod package out", "No training snapshot yet"),
        ("%nbprod init 'bad name!'", "Model names may use"),
    ],
)
def test_mistakes_are_one_line_usage_errors(shell, cancer, line, needle):
    shell.user_ns["train"] = cancer
    shell.user_ns["number"] = 3
    with pytest.raises(UsageError) as err:
        run(shell, line)
    assert needle in str(err.value)
    assert "\n" not in str(err.value).strip()


def test_snapshots_must_agree_on_the_id_column(shell, cancer):
    shell.user_ns["train"] = cancer.iloc[:400]
    shell.user_ns["valid"] = cancer.iloc[400:]
    run(shell, "%nbprod snapshot train --role train --target target --id patient_id")
    with pytest.raises(UsageError) as err:
        run(shell, "%nbprod snapshot valid --role valid --target target")
    assert str(err.value) == ("The valid snapshot has no --id but the train snapshot has --id "
                              "'patient_id'; give both the same id column (or neither).")


def test_line_command_as_cell_is_refused(shell):
    with pytest.raises(UsageError, match="is a line magic"):
        shell.run_cell_magic("nbprod", "status", "x = 1")


def test_help_is_printed_not_raised(shell, capsys):
    run(shell, "%nbprod --help")
    assert "snapshot" in capsys.readouterr().out
    run(shell, "%nbprod snapshot --help")
    out = capsys.readouterr().out
    assert "--target COL" in out and "--pii COL,..." in out


def test_the_magics_docstring_is_the_whole_reference(shell, capsys):
    run(shell, "%nbprod?")
    out = capsys.readouterr().out
    # every subcommand's and every check kind's flags, not one line
    for text in ("usage: %nbprod snapshot", "--not-pii COL,...", "usage: %nbprod check cv",
                 "--max-std S", "usage: %nbprod package", "--notebook NB",
                 "usage: %nbprod check bounds", "{flag,drop,fail}"):
        assert text in out, text
    run(shell, "%nbprod check bounds --help")
    assert "--policy {flag,drop,fail}" in capsys.readouterr().out


def _completions(shell, line: str) -> list[str]:
    from IPython.core.completer import provisionalcompleter

    with provisionalcompleter():  # the API ipykernel answers JupyterLab and VS Code with
        return [c.text for c in shell.Completer.completions(line, len(line))]


def test_tab_completion_of_nbprod_lines(shell, cancer):
    shell.user_ns.update(train=cancer.iloc[:300], valid=cancer.iloc[300:], n_rows=3)
    run(shell, "from sklearn.linear_model import LogisticRegression\nclf = LogisticRegression()")
    for line, expected in [
        ("%nbprod ", ["check", "features", "init", "model", "package", "snapshot", "status"]),
        ("%nbprod sn", ["snapshot"]),
        ("%nbprod snapshot ", ["train", "valid"]),  # DataFrames only
        ("%nbprod snapshot train --r", ["--role"]),
        ("%nbprod snapshot train --role ", ["train", "valid"]),
        ("%nbprod snapshot train --role train --target tar", ["target"]),
        ("%nbprod snapshot train --role train --target target --id pat", ["patient_id"]),
        ("%nbprod check ", ["baseline", "bounds", "cv", "data", "metric", "overfit"]),
        ("%nbprod check cv --", ["--folds", "--help", "--max-std", "--metric"]),
        ("%nbprod check cv --metric roc_auc_ovr_", ["roc_auc_ovr_weighted"]),
        ("%nbprod check metric matt", ["matthews_corrcoef"]),
        ("%nbprod check bounds --policy ", ["drop", "fail", "flag"]),
        ("%nbprod model --var ", ["clf"]),
        ("%%nbprod mo", ["model"]),
        ("%nbprod package art --ov", ["--overwrite"]),
        ("%nbprod snapshot 'tra", []),  # an open quote: nothing, no error
    ]:
        assert _completions(shell, line) == expected, line
    assert "train" in _completions(shell, "x = tra")  # other lines are IPython's
    # %reload_ext does not register the matcher twice
    run(shell, "%reload_ext nbprod")
    ids = [getattr(m, "matcher_identifier", None) for m in shell.Completer.custom_matchers]
    assert ids.count("nbprod.magic_matcher") == 1


def test_model_cell_mistakes(shell):
    with pytest.raises(UsageError, match="did not define 'model'"):
        shell.run_cell_magic("nbprod", "model", "x = 1")
    with pytest.raises(UsageError, match="is not fitted"):
        shell.run_cell_magic(
            "nbprod", "model", "from sklearn.linear_model import LinearRegression\nmodel = LinearRegression()"
        )
    with pytest.raises(UsageError, match="has no predict"):
        shell.run_cell_magic("nbprod", "model", "model = {'a': 1}")
    with pytest.raises(UsageError, match="not a fitted estimator"):
        shell.run_cell_magic("nbprod", "model", "from sklearn.linear_model import Ridge\nmodel = Ridge")


def test_model_var_flag(shell, diabetes):
    shell.user_ns["d"] = diabetes
    shell.run_cell_magic(
        "nbprod", "model --var reg",
        "from sklearn.linear_model import Ridge\nreg = Ridge().fit(d.drop(columns=['target']), d['target'])",
    )
    assert session(shell).model_capture.task == "regression"
    assert session(shell).model_capture.var == "reg"


def test_failing_cell_captures_nothing(shell):
    result = shell.run_cell("%%nbprod features\ndef features(df):\n    return df\nraise RuntimeError('boom')")
    assert session(shell).feature_capture is None
    assert not result.success

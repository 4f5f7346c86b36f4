"""Registry rules on a real MLflow store: roles, comparison-gated promotion, approval, force."""

from __future__ import annotations

import pandas as pd
import pytest

import nbprod
from nbprod.exceptions import RegistryError
from nbprod.lifecycle.compare import compare
from nbprod.tracking import registry

NAME = "registry-rules"


def _package(diabetes: pd.DataFrame, path, model, *, fail_check: bool = False, name: str = NAME):
    s = nbprod.Session(name)
    s.snapshot(diabetes.iloc[:300], role="train", target="target", sample_size=50)
    s.snapshot(diabetes.iloc[300:], role="valid", target="target", sample_size=50)

    def features(df):
        return df

    s.features(features)
    s.model(model.fit(diabetes.iloc[:300].drop(columns=["target"]), diabetes["target"].iloc[:300]))
    if fail_check:
        s.check("metric", metric="r2", min=0.99)
    s.package(path, log_to_mlflow=False, force=fail_check)
    return path


def test_roles_comparison_approval_and_force(diabetes, tmp_path, mlflow_store):
    from sklearn.dummy import DummyRegressor
    from sklearn.linear_model import Ridge

    a = _package(diabetes, tmp_path / "a", DummyRegressor())
    b = _package(diabetes, tmp_path / "b", Ridge(alpha=0.1))
    ra = registry.register(a)
    rb = registry.register(b, require_approval=True)
    assert ra["aliases"] == ["champion"] and rb["aliases"] == ["challenger"]
    assert registry.register(b)["created"] is False  # idempotent
    assert registry.champion_version(NAME) == ra["version"]

    with pytest.raises(RegistryError, match="no comparison is recorded"):
        registry.promote(b, by="dan")

    data = diabetes.iloc[300:]
    data.drop(columns=["target"]).to_csv(tmp_path / "data.csv", index=False)
    data[["target"]].to_csv(tmp_path / "labels.csv", index=False)  # no id: joined by row order
    c = compare(a, b, tmp_path / "data.csv", labels=tmp_path / "labels.csv", margin=0.1,
                report=tmp_path / "cmp.ipynb")
    assert c.verdict == "win" and c.metric == "r2" and c.gain > 0.1
    assert c.recorded["version"] == rb["version"] and c.recorded["champion_is_current"]
    assert 0 <= c.agreement <= 1 and len(c.disagreements) == 20

    with pytest.raises(RegistryError, match="requires approval"):
        registry.promote(b, by="dan")
    registry.approve(b, by="carol", note="looked at the report")
    done = registry.promote(b, by="dan", reason="beats the dummy")
    assert done["previous"] == ra["version"] and not done["forced"]
    assert registry.champion_version(NAME) == rb["version"]
    assert nbprod.load(f"models:/{NAME}@champion").manifest["artifact_id"] == \
        nbprod.load(b).manifest["artifact_id"]

    # a challenger packaged past a failed check: refused, then forced (recorded) once approved
    f = _package(diabetes, tmp_path / "f", Ridge(alpha=1.0), fail_check=True)
    registry.register(f)
    with pytest.raises(RegistryError, match="failed checks at packaging"):
        registry.promote(f, by="dan")
    registry.approve(f, by="carol")
    forced = registry.promote(f, by="dan", reason="emergency", force=True)
    assert forced["forced"] and any("failed checks" in o for o in forced["overridden"])
    history = registry.promotions(NAME)
    last = history[-1]
    assert last["by"] == "dan" and last["reason"] == "emergency" and last["forced"] is True
    # one shape for every record: versions as the registry's strings
    assert [h["version"] for h in history] == [ra["version"], rb["version"], last["version"]]
    assert all(isinstance(h["version"], str) for h in history)
    assert [h["previous"] for h in history] == [None, ra["version"], rb["version"]]


def test_a_forced_first_version_is_not_made_champion(diabetes, tmp_path, mlflow_store):
    from sklearn.linear_model import Ridge

    f = _package(diabetes, tmp_path / "f", Ridge(alpha=1.0), fail_check=True,
                 name="registry-forced-first")
    r = registry.register(f)
    assert r["aliases"] == ["challenger"] and "not made champion" in r["note"]
    assert registry.champion_version("registry-forced-first") is None
    with pytest.raises(RegistryError, match="failed checks at packaging"):
        registry.promote(f, by="dan")
    registry.promote(f, by="dan", reason="nothing better yet", force=True)
    assert registry.champion_version("registry-forced-first") == r["version"]

"""Snapshots: schema, mergeable profile, fingerprint, bounded sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbprod.core.profile import bin_counts, numeric_profile
from nbprod.core.snapshot import Snapshot, fingerprint
from nbprod.exceptions import CaptureError


def test_schema_records_pandas3_strings_nulls_and_categories(mixed):
    df = mixed.assign(tier=pd.Categorical(["a", "b", "c"] * 300, categories=["a", "b", "c"], ordered=True))
    snap = Snapshot(role="train", data=df, target="label", id="account", pii=("email",))
    spec = {c.name: c for c in snap.schema.columns}
    assert spec["region"].dtype == "str" and spec["region"].kind == "string" and spec["region"].nullable
    assert spec["plan"].nullable is False
    assert spec["usage"].kind == "float" and spec["usage"].nullable
    assert spec["tenure"].kind == "integer"
    assert spec["tier"].categories == ["a", "b", "c"] and spec["tier"].ordered
    assert snap.feature_columns == ["region", "plan", "usage", "tenure", "email", "tier"]


def test_profile_is_binned_and_mergeable():
    rng = np.random.default_rng(0)
    values = pd.Series(rng.normal(size=10_000))
    prof = numeric_profile(values)
    assert sum(prof["counts"]) == 10_000
    assert len(prof["counts"]) == len(prof["cuts"]) + 1 == 100
    # counts of two halves against the reference cut points add up to the whole
    cuts = np.array(prof["cuts"])
    halves = bin_counts(values[:4000].to_numpy(), cuts) + bin_counts(values[4000:].to_numpy(), cuts)
    assert halves.tolist() == prof["counts"]
    assert len(prof["quantiles"]) == 101 and prof["quantiles"][0] == prof["min"]


def test_discrete_columns_get_one_bin_per_value():
    prof = numeric_profile(pd.Series([1, 2, 2, 3, 3, 3, None], dtype="Int64"))
    assert prof["counts"] == [1, 2, 3] and prof["null_count"] == 1


def test_categorical_profile_frequencies(mixed):
    snap = Snapshot(role="train", data=mixed, target="label")
    prof = snap.metadata()["profile"]["plan"]
    assert prof["type"] == "categorical"
    assert sum(prof["frequencies"].values()) == len(mixed)
    assert snap.metadata()["profile"]["region"]["null_count"] == int(mixed["region"].isna().sum())


def test_fingerprint_is_stable_and_content_sensitive(cancer):
    a = fingerprint(cancer)
    assert a == fingerprint(cancer.copy())
    changed = cancer.copy()
    changed.loc[changed.index[3], "mean_radius"] += 1e-9
    assert fingerprint(changed) != a
    assert fingerprint(cancer.iloc[::-1]) != a  # order is part of the content


def test_sample_is_bounded_and_reproducible(cancer):
    snap = Snapshot(role="train", data=cancer, target="target", sample_size=100)
    assert len(snap.raw_sample()) == 100
    assert snap.sample_positions().tolist() == Snapshot(
        role="train", data=cancer, target="target", sample_size=100
    ).sample_positions().tolist()
    assert len(Snapshot(role="train", data=cancer, target="target").raw_sample()) == len(cancer)


def test_snapshot_is_isolated_from_later_edits(cancer):
    df = cancer.copy()
    snap = Snapshot(role="train", data=df, target="target")
    df.loc[df.index[0], "mean_radius"] = -1.0
    assert snap.data["mean_radius"].iloc[0] == cancer["mean_radius"].iloc[0]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"target": "nope"}, "--target names column 'nope'"),
        ({"target": "target", "id": "target"}, "--id and --target must name different columns"),
        ({"target": "target", "sample_size": 0}, "--sample must be a positive integer"),
        ({"target": "target", "role": "test"}, "--role must be one of train, valid"),
    ],
)
def test_bad_arguments(cancer, kwargs, needle):
    kwargs = {"role": "train", **kwargs}
    with pytest.raises(CaptureError, match=needle):
        Snapshot(data=cancer, **kwargs)


def test_bad_frames():
    with pytest.raises(CaptureError, match="is empty"):
        Snapshot(role="train", data=pd.DataFrame({"y": []}), target="y")
    with pytest.raises(CaptureError, match="Column names must be strings"):
        Snapshot(role="train", data=pd.DataFrame({0: [1], "y": [1]}), target="y")
    with pytest.raises(CaptureError, match="missing value"):
        Snapshot(role="train", data=pd.DataFrame({"x": [1, 2], "y": [1, None]}), target="y")


def test_valid_snapshot_must_match_train(cancer):
    import nbprod

    s = nbprod.Session()
    s.snapshot(cancer, role="train", target="target")
    with pytest.raises(CaptureError, match="lacks column 'mean_area'"):
        s.snapshot(cancer.drop(columns=["mean_area"]), role="valid", target="target")

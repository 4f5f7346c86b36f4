"""Conforming scoring input to the training schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbprod.core.schema import Schema, conform
from nbprod.exceptions import SchemaError

TRAIN = pd.DataFrame(
    {
        "n": np.array([1, 2, 3], dtype="int64"),
        "x": [0.5, 1.5, np.nan],
        "flag": [True, False, True],
        "zip": pd.array(["01234", "98765", None], dtype="str"),
        "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        "tier": pd.Categorical(["a", "b", "a"]),
    }
)
SCHEMA = Schema.infer(TRAIN)


def test_matching_frame_passes_through_untouched():
    out = conform(TRAIN, SCHEMA)
    for c in TRAIN.columns:
        assert out[c].dtype == TRAIN[c].dtype
    assert out["n"].tolist() == [1, 2, 3]


def test_text_input_converts_to_trained_types():
    raw = pd.DataFrame(
        {
            "n": ["4", "5", "6"],
            "x": ["1.25", "", "3"],
            "flag": ["true", "False", "1"],
            "zip": [1234, 5678, 91011],
            "when": ["2024-05-01", "2024-06-01", None],
            "tier": ["b", "c", None],
            "extra": [1, 2, 3],
        }
    )
    out = conform(raw, SCHEMA)
    assert list(out.columns) == SCHEMA.names  # extra column dropped, trained order
    assert out["n"].dtype == "int64" and out["n"].tolist() == [4, 5, 6]
    assert out["x"].iloc[0] == 1.25 and np.isnan(out["x"].iloc[1])
    assert out["flag"].tolist() == [True, False, True]
    assert out["zip"].tolist() == ["1234", "5678", "91011"]
    assert out["when"].iloc[0] == pd.Timestamp("2024-05-01")
    assert out["tier"].iloc[1] == "c"  # an unseen category is kept, not silently nulled


@pytest.mark.parametrize(
    ("column", "values", "needle"),
    [
        ("n", ["1", "two", "3"], "Column 'n' expected integer values (int64); 1 value(s) do not convert, e.g. 'two' at row 1"),
        ("x", ["0.1", "0.2", "abc"], "Column 'x' expected float"),
        ("flag", ["yes", "maybe", "no"], "Column 'flag' expected bool"),
        ("when", ["2024-01-01", "not a date", None], "Column 'when' expected datetime"),
    ],
)
def test_values_that_do_not_convert_name_the_column(column, values, needle):
    raw = TRAIN.copy()
    raw[column] = pd.Series(values, dtype="object")
    with pytest.raises(SchemaError) as err:
        conform(raw, SCHEMA)
    assert needle in str(err.value)
    assert err.value.column == column


def test_missing_column_is_named():
    with pytest.raises(SchemaError, match="missing column 'zip'") as err:
        conform(TRAIN.drop(columns=["zip"]), SCHEMA)
    assert err.value.column == "zip"


def test_integer_column_with_nulls_becomes_float_not_wrong():
    raw = TRAIN.assign(n=["1", None, "3"])
    out = conform(raw, SCHEMA)
    assert out["n"].dtype == "float64" and np.isnan(out["n"].iloc[1])


def test_schema_round_trips_through_json():
    assert Schema.from_list(SCHEMA.to_list()) == SCHEMA


def test_numeric_categories_from_text():
    train = pd.DataFrame({"grade": pd.Categorical([1, 2, 3, 2])})
    schema = Schema.infer(train)
    out = conform(pd.DataFrame({"grade": ["2", "3", None, "4"]}), schema)
    assert out["grade"].tolist()[:2] == [2, 3] and pd.isna(out["grade"].iloc[2])
    assert out["grade"].iloc[3] == 4  # an unseen grade is kept as itself, not nulled
    with pytest.raises(SchemaError, match="Column 'grade' expected category"):
        conform(pd.DataFrame({"grade": ["2", "high"]}), schema)


def test_csv_text_columns_keep_their_values_and_numbers_their_nulls(tmp_path):
    from nbprod.core.dataio import read_frame

    path = tmp_path / "in.csv"
    path.write_text("zip,country,x\n01234,NA,1.5\n,null,NA\n98765,US,\n")
    schema = Schema.infer(pd.DataFrame({
        "zip": pd.array(["01234"], dtype="str"), "country": pd.array(["NA"], dtype="str"),
        "x": [0.5]}))
    df = read_frame(path, schema)
    assert df["zip"].tolist()[0] == "01234" and pd.isna(df["zip"].iloc[1])  # empty field: missing
    assert df["country"].tolist() == ["NA", "null", "US"]  # Namibia is not a missing value
    assert df["x"].iloc[0] == 1.5 and df["x"].isna().tolist() == [False, True, True]
    out = conform(df, schema)
    assert out["country"].tolist() == ["NA", "null", "US"] and str(out["country"].dtype) == "str"


def test_csv_missing_markers_are_exactly_those_read_csv_treats_as_missing(tmp_path):
    """nbprod's copy of read_csv's default missing markers (core.markers) against pandas itself:
    every marker reads as missing, and none of its near relatives does. A pandas release that
    adds or drops a marker fails here."""
    import csv

    from nbprod.core.markers import CSV_NA_MARKERS

    near = {"none", "NONE", "Null", "NAN", "na", "n/A", "#n/a", "<na>", "NaT", "nat", "missing",
            "?", "-", ".", "undefined", "inf", "-inf", "1.#INF", " NA", "NA ", "N.A.", "nil"}
    try:  # pandas' own list, where this pandas still keeps it (a private name, so only here)
        from pandas._libs.parsers import STR_NA_VALUES as theirs
    except ImportError:
        theirs = set()
    tokens = sorted(CSV_NA_MARKERS | near | set(theirs))
    path = tmp_path / "markers.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["k", "v"])
        writer.writerows([i, t] for i, t in enumerate(tokens))
    df = pd.read_csv(path, dtype={"v": "object"})
    assert len(df) == len(tokens)
    missing = {tokens[k] for k in df.loc[df["v"].isna(), "k"]}
    assert missing == set(CSV_NA_MARKERS), (
        f"pandas now reads {sorted(missing - CSV_NA_MARKERS)} as missing too and no longer "
        f"{sorted(CSV_NA_MARKERS - missing)}: update nbprod.core.markers.CSV_NA_MARKERS")

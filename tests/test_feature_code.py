"""Capture of feature functions as source: what is carried, what is refused."""

from __future__ import annotations

import contextlib

import pandas as pd
import pytest
from IPython.core.error import UsageError

from nbprod.core.feature_code import capture
from nbprod.exceptions import CaptureError

from .conftest import run


def _cap(source: str, ns: dict | None = None, fn: str | None = None):
    """Run ``source`` as a cell would, then capture (a cell that fails to run is still analysed)."""
    ns = {"__name__": "__main__"} if ns is None else {"__name__": "__main__", **ns}
    with contextlib.suppress(ImportError):
        exec(compile(source, "<cell>", "exec"), ns)
    return capture(source, ns, fn=fn)


def test_carries_imports_constants_and_helpers_but_not_data_lines():
    code = _cap(
        "import math\n"
        "from collections import OrderedDict as OD\n"
        "import numpy as np\n"
        "CUTS = [0, 10, 20]\n"
        "NAMES = {'a': 1}\n"
        "unused = 5\n"
        "def _bucket(x):\n"
        "    return sum(x > c for c in CUTS)\n"
        "class Scaler:\n"
        "    factor = 3\n"
        "def features(df):\n"
        "    out = df.copy()\n"
        "    out['b'] = df['x'].map(_bucket) * Scaler.factor + math.pi\n"
        "    return out\n"
        "result = features(pd_frame) if False else None\n"
    )
    src = code.source
    assert "import math" in src and "import numpy" not in src  # only what is used
    assert "OrderedDict" not in src
    assert "CUTS = [0, 10, 20]" in src
    assert "unused" not in src and "NAMES" not in src
    assert "def _bucket(x):" in src and "class Scaler:" in src
    assert "result =" not in src
    fn = code.load()
    out = fn(pd.DataFrame({"x": [5, 15, 25]}))
    assert out["b"].round(6).tolist() == [round(v * 3 + 3.141593, 6) for v in (1, 2, 3)]


def test_constants_and_imports_from_other_cells_are_carried():
    import numpy

    ns = {"THRESHOLD": 0.5, "LABELS": ("lo", "hi"), "numpy": numpy, "np": numpy}
    code = _cap("def features(df):\n    return df.assign(hi=np.where(df.x > THRESHOLD, *LABELS))\n", ns)
    assert "THRESHOLD = 0.5" in code.source
    assert "LABELS = ('lo', 'hi')" in code.source
    assert "import numpy as np" in code.source
    assert code.load()(pd.DataFrame({"x": [0.1, 0.9]}))["hi"].tolist() == ["hi", "lo"]


def test_function_imported_from_a_package_in_another_cell():
    from numpy import log1p

    code = _cap("def features(df):\n    return df.assign(l=log1p(df.x))\n", {"log1p": log1p})
    assert "from numpy import log1p" in code.source


@pytest.mark.parametrize(
    ("ns", "source", "needle"),
    [
        ({"means": pd.Series([1.0])}, "def features(df):\n    return df - means\n",
         "'means', a Series defined in another cell, which is not a constant"),
        ({"helper": None}, "def features(df):\n    return undefined_thing(df)\n",
         "'undefined_thing', which is not defined"),
        ({}, "from math import *\ndef features(df):\n    return df\n", "`from math import *`"),
        ({}, "from .local import x\ndef features(df):\n    return x(df)\n", "Relative import"),
        ({}, "x = 1\n", "defines no function"),
        ({}, "def a(df):\n    return df\ndef b(df):\n    return df\n", "name the feature function with --fn"),
        ({"scale": pd.Series([1.0])}, "def features(df, s=scale):\n    return df * s\n",
         "'scale', a Series"),
    ],
)
def test_refusals_name_the_problem(ns, source, needle):
    with pytest.raises(CaptureError) as err:
        _cap(source, ns)
    assert needle in str(err.value)


def test_lambda_from_elsewhere_is_refused():
    ns = {"clean": lambda s: s.str.strip()}
    with pytest.raises(CaptureError, match="'clean', a lambda defined in another cell"):
        _cap("def features(df):\n    return clean(df)\n", ns)


def test_function_from_another_cell_is_refused(shell):
    run(shell, "def helper(df):\n    return df * 2\n")
    with pytest.raises(UsageError, match="'helper', defined in another cell.*move its definition"):
        shell.run_cell_magic("nbprod", "features", "def features(df):\n    return helper(df)\n")


def test_fn_flag_selects_and_suggests(shell):
    body = "def prep(df):\n    return df\ndef make_features(df):\n    return prep(df)\n"
    shell.run_cell_magic("nbprod", "features --fn make_features", body)
    cap = shell.magics_manager.registry["NbprodMagics"].session.feature_capture
    assert cap.fn_name == "make_features" and "def prep" in cap.code.source
    with pytest.raises(UsageError, match="Did you mean 'make_features'"):
        shell.run_cell_magic("nbprod", "features --fn make_feature", body)


def test_ipython_syntax_in_the_cell_is_understood(shell):
    body = "%time x = 1\ndef features(df):\n    return df\n"
    shell.run_cell_magic("nbprod", "features", body)
    cap = shell.magics_manager.registry["NbprodMagics"].session.feature_capture
    assert "%time" not in cap.code.source


def test_non_literal_constant_is_refused():
    ns = {"BAD": float("nan")}
    with pytest.raises(CaptureError, match="'BAD', a float"):
        _cap("def features(df):\n    return df.fillna(BAD)\n", ns)

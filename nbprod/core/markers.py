"""The CSV cells that mean "missing".

``pandas.read_csv`` reads these fields as missing by default (its documented ``na_values``
list). nbprod keeps that default for numeric, boolean and date columns, and turns it off in
text columns, where only an empty field is missing: ``NA`` (Namibia), ``null`` or ``None`` are
values there, as they were in the training frame (:mod:`nbprod.core.dataio`).

pandas holds the list under a private name; nbprod keeps its own copy so that it names nothing
private, and ``tests/test_schema.py`` checks that ``read_csv`` treats exactly these fields as
missing, so a pandas release that changes its list is caught.
"""

from __future__ import annotations

CSV_NA_MARKERS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})

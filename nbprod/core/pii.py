"""Personal data: which columns look personal, and hiding their values.

At snapshot time every column but the target is examined by its name and by its content: a
seeded sample of up to :data:`SAMPLE_SIZE` non-null values is matched against the rules of each
kind below, and a column is personal when the share of matching values reaches
:data:`MATCH_SHARE` (:data:`HINTED_SHARE` when the column's name also says so, e.g.
``customer_email``). Kinds, and what a value must be to match:

- ``email``: a whole email address (``local@domain.tld``);
- ``phone``: an international number (``+44 20 7946 0958``, ``0044 ...``) that libphonenumber
  (``phonenumbers``) finds valid, or a national number written in three or more groups
  (``(415) 555-2671``, ``020 7946 0958``) that is valid in one of :data:`PHONE_REGIONS`; bare
  digits or two groups only when the column's name says phone;
- ``person_name``: 2 to 4 capitalised words (``Jane Smith``, ``José de la Cruz``) in a column
  where at least 30% of the sampled values differ; single words (``Jane``) when the column's name
  says name (``first_name``, ``surname``, ``customer_name``, ...);
- ``national_id``: a national identity number in its usual written form, validated with its
  check digits by ``python-stdnum`` where it has them (see :data:`NATIONAL_IDS`); a form of
  bare digits with at most one check digit only when the column's name says so;
- ``ip_address``: an IPv4 or IPv6 address (Python's ``ipaddress``);
- ``card_number``: 13 to 19 digits (spaces or dashes allowed) with a card issuer's prefix that
  pass the Luhn check;
- ``iban``: an IBAN whose country, length and mod-97 checksum are right.

Checksums make chance matches rare: one random number in ten passes a Luhn check, so a column
of plain numbers never reaches a share of 80%. Floats that are not whole numbers, booleans and
dates are never examined. What the detector cannot see is written in ``docs/privacy.md``:
personal data inside free text, postal addresses, dates of birth, names in lower case or
written as one word, and formats it does not know.

Columns found personal, like those declared with ``--pii``, are pseudonymised in the stored
sample with a random key that is then discarded (:func:`pseudonymise`) and keep only counts in
profiles and schema. :func:`columns_of` tells scoring which columns of an artifact are hidden;
:func:`shown` is what messages and files print instead of such a value.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

SAMPLE_SIZE = 500
SEED = 0
MATCH_SHARE = 0.8  # share of sampled values that must match a kind
HINTED_SHARE = 0.5  # ... when the column's name says the same
MIN_DISTINCT_NAMES = 0.3  # person names without a hint: share of distinct sampled values
DETECTOR_VERSION = 1
HIDDEN = "[personal data]"  # printed instead of a hidden value
PHONE_REGIONS = ("US", "GB", "FR", "IN", "AU", "ES", "BR", "NL")

LABELS = {
    "email": "email addresses",
    "phone": "phone numbers",
    "person_name": "person names",
    "national_id": "national identity numbers",
    "ip_address": "IP addresses",
    "card_number": "payment card numbers",
    "iban": "IBANs (bank account numbers)",
}

# words of a column's name that say what it holds (names are split on _ - . space and camelCase)
_HINTS: dict[str, set[str]] = {
    "email": {"email", "mail", "emailaddress"},
    "phone": {"phone", "telephone", "tel", "mobile", "cell", "cellphone", "fax", "msisdn",
              "phonenumber"},
    "person_name": {"firstname", "lastname", "surname", "forename", "givenname", "familyname",
                    "fullname", "middlename", "maidenname", "personname", "customername",
                    "clientname", "patientname", "contactname", "employeename", "ownername",
                    "holdername", "cardholder", "accountholder", "membername"},
    "national_id": {"ssn", "socialsecurity", "sin", "nino", "nationalid", "nin", "nir", "bsn",
                    "dni", "nie", "cpf", "aadhaar", "personnummer", "taxid", "tin", "idnr",
                    "nhs", "codicefiscale", "passport"},
    "ip_address": {"ip", "ipaddress", "ipv4", "ipv6", "remoteaddr", "clientip"},
    "card_number": {"card", "cardnumber", "cc", "ccnumber", "creditcard", "pan"},
    "iban": {"iban"},
}
_NAME_WORDS = {"name"}  # `name` alone, or after a word for a person (customer_name)
_PERSON_WORDS = {"customer", "client", "patient", "person", "contact", "employee", "owner",
                 "holder", "member", "first", "last", "given", "family", "full",
                 "middle", "maiden", "sur", "fore"}

_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_SEPARATORS = re.compile(r"[\s.\-/()]")
_PHONE_CHARS = re.compile(r"\+?[\d\s.\-()/]{7,24}")
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_CARD = re.compile(r"\d{4}(?:[ -]?\d{1,4}){2,4}|\d{13,19}")
_NINO = re.compile(r"(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
                   r" ?\d{2} ?\d{2} ?\d{2} ?[A-D]")
_PARTICLES = {"van", "von", "de", "der", "den", "da", "di", "del", "della", "dos", "das", "du",
              "la", "le", "bin", "ibn", "al", "y", "e", "ter", "ten", "st"}


@dataclass(frozen=True)
class Finding:
    """Why a column looks personal: the kind, the share of sampled values that matched."""

    column: str
    kind: str
    share: float
    sampled: int
    by_name: bool = False  # the column's name says the same
    detail: str | None = None  # e.g. "US social security numbers"

    @property
    def label(self) -> str:
        return self.detail or LABELS[self.kind]

    @property
    def evidence(self) -> str:
        """E.g. ``looks like email addresses: 98% of 500 sampled values``."""
        name = " (and its name says so)" if self.by_name else ""
        return (f"looks like {self.label}: {_percent(self.share)} of {self.sampled:,} sampled "
                f"value{'s' if self.sampled != 1 else ''}{name}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "evidence": self.evidence}


def _percent(share: float) -> str:
    """Whole percent, rounded down: 100% only when every value matched."""
    return f"{int(share * 100 + 1e-9)}%"


# -- the detector ------------------------------------------------------------------------------
def detect(df: pd.DataFrame, *, skip: Iterable[str] = (), sample_size: int = SAMPLE_SIZE,
           seed: int = SEED) -> dict[str, Finding]:
    """The columns of ``df`` (but ``skip``) that look personal, with the evidence."""
    skipped = set(skip)
    out = {}
    for name in df.columns:
        if name in skipped:
            continue
        found = detect_column(df[name], str(name), sample_size=sample_size, seed=seed)
        if found is not None:
            out[str(name)] = found
    return out


def detect_column(s: pd.Series, name: str, *, sample_size: int = SAMPLE_SIZE,
                  seed: int = SEED) -> Finding | None:
    """A :class:`Finding` when the column ``name`` looks personal, else None."""
    values = sample_text(s, sample_size, seed)
    if not values:
        return None
    hints = name_hints(name)
    best: Finding | None = None
    for kind, rule in _RULES.items():
        hinted = kind in hints
        needed = HINTED_SHARE if hinted else MATCH_SHARE
        share, detail = rule(values, hinted, needed)
        if share >= needed and (best is None or share > best.share):
            best = Finding(column=name, kind=kind, share=round(share, 4), sampled=len(values),
                           by_name=hinted, detail=detail)
    return best


def sample_text(s: pd.Series, size: int = SAMPLE_SIZE, seed: int = SEED) -> list[str]:
    """A reproducible sample of the column's non-null values as text ([] when the column's
    kind cannot hold personal data: booleans, dates, floats that are not whole numbers)."""
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return []
    if pd.api.types.is_timedelta64_dtype(dtype):
        return []
    mask = s.notna().to_numpy()
    positions = np.flatnonzero(mask)
    if positions.size == 0:
        return []
    if positions.size > size:
        positions = np.sort(np.random.default_rng(seed).choice(positions, size=size, replace=False))
    picked = s.iloc[positions]
    if pd.api.types.is_float_dtype(dtype):
        floats = picked.to_numpy(dtype="float64")
        if not np.all(np.isfinite(floats)) or not np.all(np.mod(floats, 1) == 0):
            return []  # measurements, not numbers written as floats
        return [str(int(v)) for v in floats]
    if pd.api.types.is_integer_dtype(dtype):
        return [str(int(v)) for v in picked.to_numpy(dtype="object")]
    out = []
    for v in picked.to_numpy(dtype="object"):
        if isinstance(v, bool | np.bool_):
            continue
        if isinstance(v, float | np.floating):
            if not np.isfinite(v) or v != int(v):
                continue
            v = int(v)
        out.append(str(v).strip())
    return [v for v in out if v]


def name_hints(name: str) -> set[str]:
    """The kinds of personal data that the column's name speaks of."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    words = [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]
    joined = "".join(words)
    pairs = {a + b for a, b in zip(words, words[1:], strict=False)}
    tokens = set(words) | pairs | {joined}
    kinds = {kind for kind, hints in _HINTS.items() if tokens & hints}
    if words and words[-1] in _NAME_WORDS and (len(words) == 1 or words[-2] in _PERSON_WORDS):
        kinds.add("person_name")
    return kinds


# -- one rule per kind: (values, hinted, needed share) -> (share of matches, detail) ------------
def _share(values: list[str], match: Callable[[str], bool], needed: float) -> float:
    """The share of values that match; stops early (with a smaller share) once ``needed`` is
    out of reach."""
    allowed = int((1 - needed) * len(values)) + 1  # misses that still leave ``needed`` possible
    hits = misses = 0
    for v in values:
        if match(v):
            hits += 1
        else:
            misses += 1
            if misses > allowed:
                break
    return hits / len(values)


def _email(values: list[str], hinted: bool, needed: float) -> tuple[float, str | None]:
    return _share(values, lambda v: _EMAIL.fullmatch(v) is not None, needed), None


def _ip(values: list[str], hinted: bool, needed: float) -> tuple[float, str | None]:
    def match(v: str) -> bool:
        if not (":" in v or v.count(".") == 3):
            return False
        try:
            ipaddress.ip_address(v)
        except ValueError:
            return False
        return True

    return _share(values, match, needed), None


def _luhn(digits: str) -> bool:
    from stdnum import luhn

    return luhn.is_valid(digits)


def _card_issuer(digits: str) -> bool:
    n = len(digits)
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16  # Mastercard
    if two in (34, 37):
        return n == 15  # American Express
    if four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649 or 622126 <= six <= 622925:
        return 16 <= n <= 19  # Discover
    if 3528 <= four <= 3589:
        return 16 <= n <= 19  # JCB
    if two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19  # Diners Club
    if two == 62:
        return 16 <= n <= 19  # UnionPay
    if four in (5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763):
        return 12 <= n <= 19  # Maestro
    return False


def _card(values: list[str], hinted: bool, needed: float) -> tuple[float, str | None]:
    def match(v: str) -> bool:
        if not _CARD.fullmatch(v):
            return False
        digits = v.replace(" ", "").replace("-", "")
        return 13 <= len(digits) <= 19 and _card_issuer(digits) and _luhn(digits)

    return _share(values, match, needed), None


def _iban(values: list[str], hinted: bool, needed: float) -> tuple[float, str | None]:
    from stdnum import iban

    def match(v: str) -> bool:
        return len(v) >= 15 and v[:2].isalpha() and iban.is_valid(v)

    return _share(values, match, needed), None


def _phone(values: list[str], hinted: bool, needed: float) -> tuple[float, str | None]:
    import phonenumbers

    def valid(v: str, region: str | None) -> bool:
        try:
            return phonenumbers.is_valid_number(phonenumbers.parse(v, region))
        except phonenumbers.NumberParseException:
            return False

    def match(v: str) -> bool:
        if not _PHONE_CHARS.fullmatch(v) or _DATE_LIKE.fullmatch(v) or _IPV4.fullmatch(v):
            return False
        digits = re.sub(r"\D", "", v)
        if not 7 <= len(digits) <= 15:
            return False
        if v.startswith("+"):
            return valid(v, None)
        if v.startswith("00"):
            return valid("+" + v[2:], None)
        if not hinted and len(re.findall(r"\d+", v)) < 3:
            return False  # bare digits, 12345-6789: an id or a postcode as much as a phone
        return any(valid(v, region) for region in PHONE_REGIONS)

    return _share(values, match, needed), None


def _name_token(token: str) -> bool:
    word = token.rstrip(",")
    if word.lower() in _PARTICLES:
        return True
    if len(word) == 2 and word[0].isupper() and word[1] == ".":
        return True  # an initial: J.
    letters = word.replace("-", "").replace("'", "").replace("\u2019", "")
    if not letters.isalpha() or not word[0].isupper():
        return False
    return len(letters) >= 2 and (not letters.isupper() or len(letters) <= 12)


def _names(values: list[str], hinted: bool, needed: float) -> tuple[float, str | None]:
    if not hinted and len(set(values)) < MIN_DISTINCT_NAMES * len(values):
        return 0.0, None  # few distinct values: categories (cities, products), not people

    def match(v: str) -> bool:
        tokens = v.split()
        if not 1 <= len(tokens) <= 4 or (len(tokens) == 1 and not hinted):
            return False
        if not all(_name_token(t) for t in tokens):
            return False
        capitals = [t for t in tokens if t.rstrip(",").lower() not in _PARTICLES]
        return len(capitals) >= (1 if hinted else 2)

    return _share(values, match, needed), None


@dataclass(frozen=True)
class NationalId:
    label: str
    module: str  # the python-stdnum module that validates it ("" for format rules only)
    written: re.Pattern[str]  # its usual written form (separators, letters)
    digits: tuple[int, ...] = ()  # lengths of its bare-digit form, if it has one
    strong: bool = False  # more than one check digit: bare digits need no name hint


NATIONAL_IDS = (
    NationalId("US social security numbers", "stdnum.us.ssn", re.compile(r"\d{3}-\d{2}-\d{4}"), (9,)),
    NationalId("Canadian social insurance numbers", "stdnum.ca.sin",
               re.compile(r"\d{3}[ -]\d{3}[ -]\d{3}"), (9,)),
    NationalId("UK NHS numbers", "stdnum.gb.nhs", re.compile(r"\d{3}[ -]\d{3}[ -]\d{4}"), (10,)),
    NationalId("UK national insurance numbers", "", _NINO),
    NationalId("French NIR numbers", "stdnum.fr.nir",
               re.compile(r"[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}"), (15,), True),
    NationalId("German tax identification numbers", "stdnum.de.idnr",
               re.compile(r"\d{2} \d{3} \d{3} \d{3}"), (11,)),
    NationalId("Dutch BSN numbers", "stdnum.nl.bsn", re.compile(r"\d{4}\.\d{2}\.\d{3}"), (9,)),
    NationalId("Spanish DNI numbers", "stdnum.es.dni", re.compile(r"\d{8}-?[A-Z]")),
    NationalId("Spanish NIE numbers", "stdnum.es.nie", re.compile(r"[XYZ]-?\d{7}-?[A-Z]")),
    NationalId("Italian fiscal codes", "stdnum.it.codicefiscale",
               re.compile(r"[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]")),
    NationalId("Brazilian CPF numbers", "stdnum.br.cpf", re.compile(r"\d{3}\.\d{3}\.\d{3}-\d{2}"),
               (11,), True),
    NationalId("Indian Aadhaar numbers", "stdnum.in_.aadhaar", re.compile(r"\d{4} \d{4} \d{4}"), (12,)),
    NationalId("Swedish personal identity numbers", "stdnum.se.personnummer",
               re.compile(r"(?:\d{2})?\d{6}[-+]\d{4}"), (10, 12)),
)


def _validator(nid: NationalId) -> Callable[[str], bool]:
    if not nid.module:
        return lambda v: True
    import importlib

    return importlib.import_module(nid.module).is_valid


def _national(values: list[str], hinted: bool, needed: float) -> tuple[float, str | None]:
    best, label = 0.0, None
    for nid in NATIONAL_IDS:
        check = _validator(nid)
        bare_ok = nid.strong or hinted  # bare digits with one check digit: an id as much

        def match(v: str, nid: NationalId = nid, check: Callable[[str], bool] = check,
                  bare_ok: bool = bare_ok) -> bool:
            v = v.upper()
            if nid.written.fullmatch(v):
                return check(v)
            return bare_ok and v.isdigit() and len(v) in nid.digits and check(v)

        share = _share(values, match, needed)
        if share > best:
            best, label = share, nid.label
    return best, label


_RULES: dict[str, Callable[[list[str], bool, float], tuple[float, str | None]]] = {
    "email": _email,
    "iban": _iban,
    "card_number": _card,
    "national_id": _national,
    "ip_address": _ip,
    "phone": _phone,
    "person_name": _names,
}


# -- hiding values -----------------------------------------------------------------------------
def pseudonymise(s: pd.Series, key: bytes) -> pd.Series:
    """Replace values by keyed BLAKE2 digests (16 hex chars); nulls stay null.

    With a random key that is then discarded, equal values stay equal inside one artifact and
    nothing can be looked up."""

    def one(v: Any) -> str:
        return hashlib.blake2b(str(v).encode(), key=key, digest_size=8).hexdigest()

    out = s.astype("object").map(one, na_action="ignore")
    return out.astype("str")


def columns_of(art: Any) -> set[str]:
    """The columns an artifact hides as personal data (declared or found), in any snapshot."""
    out: set[str] = set()
    for entry in art.manifest.get("snapshots", {}).values():
        out.update(entry.get("pii") or [])
    return out


def shown(value: Any, column: str | None, hidden: Iterable[str]) -> Any:
    """``value`` as a message or file may show it: :data:`HIDDEN` for a hidden column."""
    return HIDDEN if column is not None and column in set(hidden) else value


# -- personal values carried into the model's features ---------------------------------------
CARRY_SHARE = 0.05  # a feature column whose sampled values are this often hidden raw values


def raw_values(df: pd.DataFrame, columns: Iterable[str]) -> pd.Index:
    """The distinct values of ``df``'s hidden ``columns``, as text."""
    parts = [df[c].dropna().astype("str") for c in columns if c in df.columns]
    if not parts:
        return pd.Index([], dtype="str")
    return pd.Index(pd.concat(parts, ignore_index=True).unique())


def carried_columns(features: pd.DataFrame, raw: pd.DataFrame,
                    hidden: Iterable[str]) -> dict[str, str]:
    """The feature columns that carry personal data, with the reason: a hidden column passed
    through (same name), values that look personal, or values found in a hidden column."""
    hidden = [c for c in hidden if c in raw.columns]
    if not hidden:
        return {}
    pool = raw_values(raw, hidden)
    out: dict[str, str] = {}
    for name in features.columns:
        col = features[name]
        if name in hidden:
            out[name] = f"the personal column {name!r} passed through"
            continue
        found = detect_column(col, str(name))
        if found is not None:
            out[name] = found.evidence
            continue
        values = sample_text(col)
        if values and pd.Index(values).isin(pool).mean() >= CARRY_SHARE:
            out[name] = "holds values of a personal column"
    return out


def names_carrying(names: Iterable[Any], raw: pd.DataFrame,
                   hidden: Iterable[str]) -> dict[str, list[str]]:
    """Hidden column -> the feature names made of its values (one-hot encoding)."""
    names = list(map(str, names))
    out: dict[str, list[str]] = {}
    for col in hidden:
        pool = set(raw_values(raw, [col]))
        for name in names:
            tails = [name] + [name[i + 1:] for i, ch in enumerate(name) if ch in "_=:| "]
            if any(t in pool for t in tails if t):
                out.setdefault(col, []).append(name)
    return out


def file_carries(path: Any, probes: Iterable[str]) -> bool:
    """Whether the file (the members of a zip, such as a skops model) holds any probe as text."""
    import zipfile
    from pathlib import Path

    p = Path(path)
    blobs: list[bytes] = []
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as zf:
            blobs = [zf.read(n) for n in zf.namelist()]
    else:
        blobs = [p.read_bytes()]
    needles = [s.encode() for s in probes if len(s) >= 4]
    return any(n in blob for blob in blobs for n in needles)

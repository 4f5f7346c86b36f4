"""What the kernel tells nbprod's JupyterLab extension about ``%nbprod package``, as JSON.

The extension never reads nbprod's English. Once its line is parsed, whatever ``%nbprod
package`` ends with, it displays one bundle under :data:`PACKAGE_MIME` whose ``outcome`` says
what happened:

- ``"packaged"``: :meth:`nbprod.capture.package.PackageResult.to_json` (the artifact written);
- ``"refused"``: nbprod would not package (a failed check without ``--force``, an existing PATH
  without ``--overwrite``, a missing capture, ``--register`` with ``--no-mlflow``); the magic
  then raises ``UsageError``;
- ``"error"``: something unexpected broke packaging; the exception then propagates (traceback).

Before it runs the magic, the extension asks the kernel for ``PACKAGE_VERSION`` (an IPython
user expression on ``nbprod.frontend``, which hands on :mod:`nbprod.capture.contract`), so a
kernel whose nbprod speaks another version is named as such before anything is written. This
module imports nothing heavy.
"""

from __future__ import annotations

import html
import json
from typing import Any

from ..capture.contract import PACKAGE_MIME, PACKAGE_VERSION
from ..core.files import as_text, dumps

REASON_MAX_CHARS = 4000
_CHECK_FIELDS = ("name", "kind", "status", "message", "value", "threshold")


class PackageRefusal:
    """``%nbprod package`` wrote nothing: why, for the extension and for other frontends.

    ``outcome`` is ``"refused"`` (nbprod said no; the user can fix it) or ``"error"`` (an
    unexpected exception). ``failed_checks`` are the check results whose failure was the reason
    (empty for any other reason).
    """

    def __init__(self, exc: BaseException, *, path: str, outcome: str = "refused",
                 failed_checks: list[Any] | None = None) -> None:
        if outcome not in ("refused", "error"):
            raise ValueError(f"outcome must be 'refused' or 'error'. Got {outcome!r}.")
        self.outcome = outcome
        self.path = path
        self.error = type(exc).__name__
        self.reason = _cut(str(exc).strip() or self.error)
        self.failed_checks = [_check_json(c) for c in failed_checks or []]

    @classmethod
    def of(cls, exc: BaseException, *, path: str, checks: dict[str, Any],
           outcome: str = "refused") -> PackageRefusal:
        """The refusal for ``exc`` raised while packaging to ``path``; ``checks`` are the
        session's check results by name (a :class:`~nbprod.exceptions.ChecksFailedError`
        names the failed ones)."""
        from ..exceptions import ChecksFailedError

        failed = exc.failed if isinstance(exc, ChecksFailedError) else []
        return cls(exc, path=path, outcome=outcome,
                   failed_checks=[checks[n] for n in failed if n in checks])

    def to_json(self) -> dict[str, Any]:
        """The bundle the extension reads (under :data:`PACKAGE_MIME`)."""
        return {
            "version": PACKAGE_VERSION,
            "outcome": self.outcome,
            "status": "fail",
            "path": self.path,
            "error": self.error,
            "reason": self.reason,
            "failed_checks": self.failed_checks,
        }

    def _repr_html_(self) -> str:
        # the UsageError line (or the traceback) right below says why in words; this adds the
        # failed checks, for frontends without the extension
        from ..core.tables import badge, table

        head = f"<b>nbprod: {self._what}</b> ({html.escape(self.error)})"
        rows = [{"status": badge(c["status"]), "check": c["name"], "result": c["message"]}
                for c in self.failed_checks]
        checks = table(rows, ["status", "check", "result"]) if rows else ""
        return f'<div class="nbprod-refusal">{head}{checks}</div>'

    def __repr__(self) -> str:
        checks = "".join(f"\n  {c['status'].upper()} {c['name']}: {c['message']}"
                         for c in self.failed_checks)
        return f"nbprod: {self._what} ({self.error}){checks}"

    @property
    def _what(self) -> str:
        return "not packaged" if self.outcome == "refused" else "packaging failed"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {PACKAGE_MIME: self.to_json(), "text/html": self._repr_html_(),
                "text/plain": repr(self)}


def _check_json(result: Any) -> dict[str, Any]:
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    # strict JSON (what the browser's JSON.parse takes): no NaN, no numpy scalars
    return json.loads(dumps({k: data.get(k) for k in _CHECK_FIELDS}, default=as_text))


def _cut(text: str) -> str:
    if len(text) <= REASON_MAX_CHARS:
        return text
    return text[: REASON_MAX_CHARS - 1] + "…"

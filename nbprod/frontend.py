"""Compatibility module: the name nbprod's JupyterLab extension asks the kernel about.

Before it runs ``%nbprod package``, the extension evaluates the user expression
``__import__('nbprod.frontend', fromlist=['PACKAGE_VERSION']).PACKAGE_VERSION`` in the kernel
(``extension/src/kernel.ts``, ``PROBE``), and extensions already installed keep asking it. The
package bundle lives in :mod:`nbprod.capture.contract` and :mod:`nbprod.jupyter.frontend`.
``docs/artifact-format.md`` (compatibility) lists the compatibility modules and when one may
go.
"""

from __future__ import annotations

from .capture.contract import PACKAGE_MIME, PACKAGE_VERSION

__all__ = ["PACKAGE_MIME", "PACKAGE_VERSION"]

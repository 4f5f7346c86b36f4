"""The JSON bundle ``%nbprod package`` displays for nbprod's JupyterLab extension: its MIME type
and its version.

Whatever ``%nbprod package`` ends with, it displays one bundle under :data:`PACKAGE_MIME` whose
``outcome`` says what happened: ``"packaged"`` is :meth:`nbprod.capture.package.PackageResult.to_json`;
``"refused"`` and ``"error"`` are :class:`nbprod.jupyter.frontend.PackageRefusal`. The extension
asks the kernel for :data:`PACKAGE_VERSION` before it runs the magic, so this module imports
nothing: that question must stay cheap.
"""

PACKAGE_MIME = "application/vnd.nbprod.package+json"
# The shape of the PACKAGE_MIME bundle. Version 1 knew only the packaged outcome (no "outcome"
# field). To change the shape: add fields freely (readers ignore what they do not know); for
# anything else (a field removed, renamed or meaning something new) raise this number, raise
# PACKAGE_VERSION in extension/src/contract.ts with it, keep the extension's reader of the
# older versions for notebooks saved before, and say so in docs/jupyterlab.md.
PACKAGE_VERSION = 2

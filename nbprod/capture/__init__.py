"""Capturing a notebook model and packaging it: the session the magics drive, and the artifact.

:class:`nbprod.capture.session.Session` records snapshots, the feature code, the fitted model and
check results; :func:`nbprod.capture.package.package` writes the self-verifying artifact (with
its monitoring reference, permutation importance, row rules, provenance and training notebook)
and proves it by a parity replay in a fresh process.
"""

"""The notebook faces: the ``%nbprod`` magics, the panels and views a notebook displays, the
scoring notebook's entry point, and the bundles nbprod's JupyterLab extension reads.

Public entry points are handed on by the package: ``nbprod.explore``, ``nbprod.review`` and
``nbprod.scoring_job`` (the one call a scoring notebook makes), and ``%load_ext nbprod``.
"""

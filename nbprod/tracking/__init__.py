"""Everything MLflow: the store, the scoring runs' history, the registry and the pyfunc flavour.

MLflow is imported only inside these modules' functions, and only when used: a scoring run that
does not log, or a capture session that does not package to MLflow, never imports it.

:class:`RunLogger` is named here too because every scoring notebook packaged before the layered
layout runs ``from nbprod.tracking import RunLogger`` (see ``docs/artifact-format.md``,
compatibility).
"""

from .runs import RunLogger

__all__ = ["RunLogger"]

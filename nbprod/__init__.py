"""nbprod: from a Jupyter notebook model to a scheduled, monitored production job.

In a notebook::

    %load_ext nbprod
    %nbprod snapshot train --role train --target y

In Python::

    art = nbprod.load("artifacts/churn")
    predictions = art.score(df)

The names below are nbprod's public entry points; they do not move when the modules behind them
do (``docs/architecture.md``). Importing nbprod is cheap: pandas, scikit-learn, MLflow and
papermill load when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .capture.session import Session
    from .core.artifact import Artifact, verify
    from .jupyter.explore import explore
    from .jupyter.review import review
    from .jupyter.scoring_job import scoring_job
    from .lifecycle.feedback import apply as apply_feedback
    from .tracking.resolve import load
    from .tracking.runs import history_of as history

__all__ = [
    "Artifact",
    "apply_feedback",
    "explore",
    "history",
    "load",
    "load_ipython_extension",
    "review",
    "scoring_job",
    "Session",
    "verify",
    "__version__",
]

# public name -> (module under nbprod, attribute), imported on first use
_LAZY = {
    "Artifact": ("core.artifact", "Artifact"),
    "load": ("tracking.resolve", "load"),
    "verify": ("core.artifact", "verify"),
    "Session": ("capture.session", "Session"),
    "explore": ("jupyter.explore", "explore"),
    "review": ("jupyter.review", "review"),
    "scoring_job": ("jupyter.scoring_job", "scoring_job"),  # what every score.ipynb calls
    "history": ("tracking.runs", "history_of"),
    "apply_feedback": ("lifecycle.feedback", "apply"),  # what training notebooks call
    "_load_pyfunc": ("tracking.flavor", "load_pyfunc"),  # MLflow's: MLmodel names nbprod
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nbprod' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbprod``: register the ``%nbprod`` line and cell magics.

    Parameters
    ----------
    ipython : InteractiveShell
        The IPython shell loading the extension.

    Examples
    --------
    In a notebook::

        %load_ext nbprod
        %nbprod --help
    """
    from .jupyter.magics import NbprodMagics

    ipython.register_magics(NbprodMagics(ipython))


def unload_ipython_extension(ipython: Any) -> None:
    pass

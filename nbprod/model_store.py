"""Capturing a fitted estimator and storing it safely with skops.

The model is written with ``skops.io`` rather than pickle. The types skops does not trust by
default are listed explicitly in the manifest at packaging time; loading passes exactly that
list and refuses a file that needs anything more. A model skops cannot store is a clear error,
never a silent pickle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .exceptions import CaptureError, IntegrityError, PackagingError


def check_estimator(model: Any, name: str = "model") -> str:
    """Validate a fitted, scikit-learn compatible estimator; return its task.

    The task is ``"classification"`` when the model exposes ``predict_proba`` and ``classes_``,
    else ``"regression"``.
    """
    if model is None:
        raise CaptureError(f"{name!r} is None; the model cell must assign a fitted estimator.")
    if isinstance(model, type):
        raise CaptureError(
            f"{name!r} is the class {model.__name__}, not a fitted estimator; "
            f"instantiate and fit it, e.g. `{name} = {model.__name__}().fit(X, y)`."
        )
    if not callable(getattr(model, "predict", None)):
        raise CaptureError(
            f"{name!r} is a {type(model).__name__}, which has no predict(); nbprod needs a "
            "scikit-learn compatible estimator (predict, and predict_proba for classifiers)."
        )
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise CaptureError(
            f"{name!r} ({type(model).__name__}) is not fitted; call .fit(...) in the model cell "
            "before capturing it."
        ) from None
    except TypeError:
        pass  # not a scikit-learn estimator: its predict() is the contract
    if callable(getattr(model, "predict_proba", None)) and hasattr(model, "classes_"):
        return "classification"
    from sklearn.base import is_classifier

    if is_classifier(model):
        raise CaptureError(
            f"{name!r} is a classifier without predict_proba; nbprod scores classifiers with "
            "class probabilities. Use a probabilistic classifier or wrap it, e.g. in "
            "CalibratedClassifierCV."
        )
    return "regression"


def dump(model: Any, path: Path) -> list[str]:
    """Write ``model`` to ``path`` with skops; return the types that must be trusted to load it."""
    import skops.io as sio

    try:
        sio.dump(model, path)
    except Exception as exc:
        raise PackagingError(
            f"skops cannot store the model ({type(model).__name__}): {type(exc).__name__}: "
            f"{exc}. nbprod does not fall back to pickle; use estimators skops supports."
        ) from None
    trusted = sorted(sio.get_untrusted_types(file=path))
    notebook_types = [t for t in trusted if t.startswith("__main__.")]
    if notebook_types:
        path.unlink(missing_ok=True)
        raise PackagingError(
            f"The model uses {notebook_types[0]}, a class defined in the notebook; the artifact "
            "could not rebuild it in production. Move the class into an installed module."
        )
    return trusted


def load(path: Path, trusted: list[str]) -> Any:
    """Load a model written by :func:`dump`, trusting exactly the listed types."""
    import skops.io as sio

    needed = set(sio.get_untrusted_types(file=path))
    extra = sorted(needed - set(trusted))
    if extra:
        raise IntegrityError(
            f"{path.name} needs types the manifest does not trust: {', '.join(extra)}.",
            path=path.name,
        )
    return sio.load(path, trusted=list(trusted))

"""Capturing a fitted estimator and storing it safely with skops.

The model is written with ``skops.io`` rather than pickle. The types skops does not trust by
default are listed explicitly in the manifest at packaging time; loading passes exactly that
list and refuses a file that needs anything more. A model skops cannot store is a clear error,
never a silent pickle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..exceptions import CaptureError, IntegrityError, PackagingError


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
        raise PackagingError(_notebook_type_message(notebook_types[0], model))
    return trusted


def _notebook_type_message(name: str, model: Any) -> str:
    """Why a model using ``name`` (``__main__.X``) cannot be stored, and the fix: a lambda or a
    function (e.g. in a ``FunctionTransformer``) differs from a class."""
    short = name.split(".", 1)[1]
    if short == "<lambda>":
        return ("The model uses a lambda defined in the notebook (e.g. FunctionTransformer(lambda "
                "x: ...)); the artifact could not rebuild it in production. Use a numpy function "
                "(FunctionTransformer(np.log1p)) or a named function from an installed module.")
    import __main__

    if callable(getattr(__main__, short, None)) and not isinstance(getattr(__main__, short),
                                                                       type):
        return (f"The model uses {short}(), a function defined in the notebook; the artifact "
                "could not rebuild it in production. Use a numpy function (e.g. np.log1p) or "
                "move the function into an installed module.")
    return (f"The model uses {name}, a class defined in the notebook; the artifact could not "
            "rebuild it in production. Move the class into an installed module.")


# -- which trusted types an unauthenticated manifest may list --------------------------------
UNSIGNED_PACKAGES = ("sklearn", "numpy", "scipy")
_SCIPY_CLASSES = ("scipy.sparse",)


def allowed_unsigned(name: Any) -> bool:
    """Whether an unauthenticated manifest may list the type ``name`` as trusted.

    The allowlist: classes defined by scikit-learn itself (``sklearn.tree._tree.Tree``), numpy's
    ``dtype``, scalar types and ufuncs (``numpy.dtype``, ``numpy.float64``, ``numpy.log1p``),
    and the sparse matrix classes of ``scipy.sparse``. A function, a class re-exported from
    elsewhere, or anything from another module (``builtins``, ``os``, ``subprocess``,
    ``operator``, ``__main__``, a third-party package) needs an authentic manifest. Only
    modules below ``sklearn``, ``numpy`` and ``scipy`` are ever imported to decide.
    """
    import importlib

    if not isinstance(name, str) or "." not in name:
        return False
    module, _, attr = name.rpartition(".")
    top = module.split(".")[0]
    if top not in UNSIGNED_PACKAGES or not all(p.isidentifier() for p in name.split(".")):
        return False
    if top == "scipy" and not module.startswith(_SCIPY_CLASSES):
        return False
    try:
        obj = getattr(importlib.import_module(module), attr)
    except Exception:
        return False
    if top == "numpy":
        import numpy as np

        return isinstance(obj, np.ufunc) or (
            isinstance(obj, type) and (issubclass(obj, np.generic | np.dtype)))
    return isinstance(obj, type) and str(getattr(obj, "__module__", "")).split(".")[0] == top


SIGN_FIX = ("If you packaged it, sign it (`nbprod sign ART --key KEY.pem`) and trust the public "
            "key (--trusted-key PUB.pem, NBPROD_TRUSTED_KEYS or trusted_keys=).")


def unsigned_refusal(types: list[str], lead: str = "model.trusted_types asks to trust",
                     fix: str = SIGN_FIX) -> str | None:
    """The message refusing the trusted types an unauthenticated manifest may not list, or None."""
    bad = [t for t in types if not allowed_unsigned(t)]
    if not bad:
        return None
    shown = ", ".join(str(t)[:80] for t in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    return (f"{lead} {shown}, which nbprod accepts only from an authentic artifact (signed by a "
            "trusted key, or pinned by the registry); unauthenticated, it trusts only "
            "scikit-learn's own classes, scipy.sparse matrices and numpy dtypes, scalar types "
            "and ufuncs. " + fix)


def load(path: Path, trusted: list[str], *, data: bytes | None = None,
         authentic: bool = False) -> Any:
    """Load a model written by :func:`dump`, trusting exactly the listed types.

    ``data``: the file's verified bytes (read once, hashed, then deserialized). Unless the
    manifest is ``authentic``, a listed type outside :func:`allowed_unsigned` is refused.
    """
    import skops.io as sio

    if not authentic:
        refusal = unsigned_refusal(list(trusted), f"{path.name}: the manifest asks to trust")
        if refusal:
            raise IntegrityError(refusal, path=path.name)
    needed = set(sio.get_untrusted_types(data=data) if data is not None
                 else sio.get_untrusted_types(file=path))
    extra = sorted(needed - set(trusted))
    if extra:
        raise IntegrityError(
            f"{path.name} needs types the manifest does not trust: {', '.join(extra)}.",
            path=path.name,
        )
    if data is not None:
        return sio.loads(data, trusted=list(trusted))
    return sio.load(path, trusted=list(trusted))

"""The one way nbprod opens the MLflow tracking store.

Every nbprod route that talks to MLflow (the scoring run's tracking worker, the packaging run,
the registry, ``nbprod history``, ``nbprod compare``) gets its client from :func:`client`:

- The store is MLflow's own choice: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in
  the working directory.
- A SQLite store is opened for the first time in a process under a file lock beside the
  database (``.mlflow.db.lock`` next to ``mlflow.db``). Opening is what creates a new store and
  migrates an old one, and MLflow's SQL stores do that unguarded: processes starting together on
  a new store raced on the migrations and left it broken (``table _alembic_tmp_params already
  exists``). Under the lock one process migrates and the others find the store ready.
- Every call is retried, with growing pauses for up to :data:`RETRY_S` seconds, while SQLite
  answers ``database is locked`` (which it does at once, without waiting, when two
  transactions would deadlock).
- A store that cannot be used raises :class:`TrackingStoreError`: one line naming the store's
  URI and what to do, never MLflow's traceback.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from pathlib import Path
from typing import Any

from ..exceptions import TrackingStoreError

LOCK_TIMEOUT_S = 300.0  # a migration takes seconds; a lock held this long belongs to a hung process
RETRY_S = 120.0
_LOCKED = ("database is locked", "database table is locked")
_ready: set[str] = set()


def quiet() -> None:
    """Keep MLflow's and alembic's loggers to warnings: nbprod reports store errors in one line."""
    for name in ("alembic", "mlflow", "mlflow.store", "mlflow.tracking"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # logs a traceback for every SQL error, also those nbprod retries or reports in one line
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def tracking_uri() -> str:
    import mlflow

    return str(mlflow.get_tracking_uri())


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` URI (relative to the working directory), else None."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).absolute()


def prepare(uri: str | None = None) -> str:
    """Open the store once in this process (creating or migrating it under the lock) and return
    its URI; raises :class:`TrackingStoreError` when it cannot be used."""
    import mlflow

    quiet()
    uri = uri or tracking_uri()
    if uri in _ready:
        return uri
    db = sqlite_file(uri)
    if db is not None:
        # importing MLflow's SQL stores takes about a second: do it before taking the lock
        import mlflow.store.model_registry.sqlalchemy_store  # noqa: F401
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        from filelock import FileLock, Timeout

        lock = db.with_name(f".{db.name}.lock")
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(lock), timeout=LOCK_TIMEOUT_S):
                opened = mlflow.MlflowClient(uri)
                retry(opened.search_experiments, max_results=1)  # creates/migrates tracking
                retry(opened.search_registered_models, max_results=1)  # and the registry
        except Timeout:
            raise TrackingStoreError(
                f"MLflow store {uri}: waited {LOCK_TIMEOUT_S:.0f} s for {lock}, held by another "
                "process opening the store; if no such process runs, delete the lock file."
            ) from None
        except Exception as exc:
            raise store_error(exc, uri) from None
    _ready.add(uri)
    return uri


def client() -> RetryingClient:
    """An ``MlflowClient`` on the prepared store whose calls retry ``database is locked``."""
    import mlflow

    uri = prepare()
    return RetryingClient(mlflow.MlflowClient(uri), uri)


class RetryingClient:
    """Wraps an ``MlflowClient``: every method call goes through :func:`retry`."""

    def __init__(self, wrapped: Any, uri: str) -> None:
        self._wrapped = wrapped
        self.tracking_uri = uri

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._wrapped, name)
        return functools.partial(retry, attr) if callable(attr) else attr


def retry(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; while it fails with SQLite's ``database is locked``, wait and call again."""
    deadline = time.monotonic() + RETRY_S
    pause = 0.05
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not is_locked(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause * (0.5 + random.random()))  # jitter: the waiting processes spread out
        pause = min(pause * 2, 2.0)


def is_locked(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if any(text in str(seen) for text in _LOCKED):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


EXPERIMENT_KIND = "mlflow.experimentKind"  # which view the MLflow UI opens the experiment in
CLASSIC_ML = "custom_model_development"  # the classic machine-learning view (runs, models)


def get_or_create_experiment(mlflow_client: Any, name: str) -> str:
    """The id of experiment ``name``, created if missing (another process may create it at the
    same moment: then its id). The experiment is typed for MLflow's classic ML view unless it
    already has a kind (one the user chose stays)."""
    exp = mlflow_client.get_experiment_by_name(name)
    if exp is not None:
        if EXPERIMENT_KIND not in (exp.tags or {}):
            mlflow_client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND, CLASSIC_ML)
        return str(exp.experiment_id)
    try:
        return str(mlflow_client.create_experiment(name, tags={EXPERIMENT_KIND: CLASSIC_ML}))
    except Exception as exc:
        if "already exists" not in str(exc):
            raise
    exp = mlflow_client.get_experiment_by_name(name)
    if exp is None:
        raise TrackingStoreError(f"MLflow experiment {name!r} exists but cannot be read.")
    return str(exp.experiment_id)


def store_error(exc: BaseException, uri: str | None = None) -> TrackingStoreError:
    """``exc`` from MLflow as one line: the store, the error's first line, what to do."""
    if isinstance(exc, TrackingStoreError):
        return exc
    from ..core.text import quote

    if uri is None:
        try:
            uri = tracking_uri()
        except Exception:
            uri = "(unknown)"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    first = quote(lines[0] if lines else type(exc).__name__, 200)[1:-1]
    db = sqlite_file(uri)
    if db is not None:
        fix = (f"If {db.name} is damaged, move it aside (a new store is created) or run "
               f"`mlflow db upgrade {uri}`; or point MLFLOW_TRACKING_URI at another store.")
    else:
        fix = "Check MLFLOW_TRACKING_URI and that the store is reachable."
    return TrackingStoreError(f"MLflow store {uri} cannot be used: {type(exc).__name__}: {first}. {fix}")

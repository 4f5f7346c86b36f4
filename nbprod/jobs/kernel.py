"""Running a notebook with papermill, the kernel's stderr kept out of ours.

The kernel's own stderr (ipykernel's start-up warnings, shutdown noise) goes to a temporary log
rather than the caller's terminal, so nbprod's errors stay one line; if the kernel itself dies,
the log is shown. A failing cell raises :class:`~nbprod.exceptions.NotebookError` (papermill's
``PapermillExecutionError`` is translated here, and only here), whose message quotes the cell's
error and whose fields name it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from ..exceptions import NotebookError


def run_notebook(notebook: Path, output: Path, parameters: dict[str, Any],
                 env: dict[str, str] | None = None, *, progress: bool = False) -> None:
    """Execute ``notebook`` into ``output`` in the current directory with ``parameters``;
    ``env`` adds variables to the kernel's environment; ``progress`` draws papermill's bar of
    cells (tqdm, on stderr). A failing cell raises :class:`~nbprod.exceptions.NotebookError`
    (the executed notebook is written first)."""
    import logging

    import papermill as pm

    logging.getLogger("papermill").setLevel(logging.WARNING)
    with tempfile.TemporaryFile("w+", prefix="nbprod-kernel-", suffix=".log") as log:
        try:
            pm.execute_notebook(
                str(notebook), str(output), parameters=parameters, progress_bar=progress,
                log_output=False, cwd=str(Path.cwd()),
                kernel_manager_class=_kernel_manager_logging_to(log, env),
            )
        except pm.PapermillExecutionError as exc:
            raise NotebookError(f"{exc.evalue} ({exc.ename})", ename=exc.ename, evalue=exc.evalue,
                                cell_index=exc.cell_index) from None
        except KeyboardInterrupt:
            raise
        except BaseException:  # the kernel died: its log says why
            log.seek(0)
            sys.stderr.write(log.read())
            raise


# a kernel's sockets are files <runtime dir>/kernel-<uuid>-ipc-<port> under IPC; a Unix socket
# path holds at most about 107 bytes, so a deep runtime directory keeps TCP
_IPC_PATH_ROOM = 60


def local_transport() -> str:
    """``ipc`` (Unix sockets in Jupyter's runtime directory) on POSIX when the socket paths fit,
    else ``tcp``. ipykernel warns "Kernel is running over TCP without encryption" for a TCP
    kernel with no CurveZMQ keys; a local IPC kernel needs neither and says nothing."""
    import os

    if os.name != "posix":
        return "tcp"
    from jupyter_core.paths import jupyter_runtime_dir

    return "ipc" if len(jupyter_runtime_dir()) + _IPC_PATH_ROOM <= 104 else "tcp"


def quiet_kernel_manager() -> type:
    """papermill's kernel manager, on :func:`local_transport`."""
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            if "transport" not in kw:
                self.transport = local_transport()

    return QuietKernelManager


def papermill_engine() -> type:
    """The ``nbprod`` papermill engine (``papermill --engine nbprod ...``, registered as an
    entry point): papermill's own engine with :func:`quiet_kernel_manager`'s kernels."""
    from papermill.engines import NBClientEngine

    class NbprodEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            kwargs.setdefault("kernel_manager_class", quiet_kernel_manager())
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    return NbprodEngine


def __getattr__(name: str) -> Any:  # the entry point names nbprod.jobs.kernel:NbprodEngine
    if name == "NbprodEngine":
        return papermill_engine()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _kernel_manager_logging_to(log: Any, env: dict[str, str] | None = None) -> type:
    import os

    class KernelManager(quiet_kernel_manager()):  # type: ignore[misc]
        async def start_kernel(self, **kw: Any) -> None:  # kw are Popen options too
            kw.setdefault("stderr", log)
            if env:
                kw["env"] = {**kw.get("env", os.environ), **env}
            await super().start_kernel(**kw)

    return KernelManager

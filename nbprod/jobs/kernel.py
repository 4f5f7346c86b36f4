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


def _kernel_manager_logging_to(log: Any, env: dict[str, str] | None = None) -> type:
    import os

    from jupyter_client.manager import AsyncKernelManager

    class KernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:  # kw are Popen options too
            kw.setdefault("stderr", log)
            if env:
                kw["env"] = {**kw.get("env", os.environ), **env}
            await super().start_kernel(**kw)

    return KernelManager

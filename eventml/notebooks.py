"""Run the notebook sequence with papermill and collect each notebook's key figures.

Every notebook gets two parameters on top of the ones given: ``BOOTSTRAP_SERVERS`` and
``OUTPUT_DIR`` (the run folder). It writes its figures and ``<notebook>.json`` there; the
executed notebook is saved next to them.

Examples
--------
>>> from eventml.notebooks import run_notebooks
>>> summary = run_notebooks("notebooks", "runs/demo", parameters={"N_EVENTS": 2000})  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from eventml.kafka import bootstrap_servers as resolve_bootstrap
from eventml.errors import ConfigError, EventmlError
from eventml.results import load_figures


class NotebookError(EventmlError):
    """A notebook failed under papermill; the executed copy shows the failing cell."""


def _local_kernel_manager():
    """A kernel manager whose kernel talks over Unix sockets in the temp folder, not TCP: the
    kernel is local anyway, and it does not warn that TCP is unencrypted on every run."""
    from jupyter_client.manager import KernelManager

    class LocalKernelManager(KernelManager):
        def __init__(self, **kwargs: Any):
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = os.path.join(tempfile.gettempdir(), f"eventml-kernel-{uuid.uuid4().hex}")

    return LocalKernelManager


def notebook_paths(notebooks_dir: str | os.PathLike = "notebooks", only: list[str] | None = None) -> list[Path]:
    """The notebooks to run, in sorted order, optionally only those whose names start with ``only``."""
    paths = sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in only)]
    if not paths:
        raise ConfigError(f"no notebooks named NN_*.ipynb{' matching ' + ', '.join(only) if only else ''} in {notebooks_dir}")
    return paths


def default_run_dir(root: str | os.PathLike = "runs") -> Path:
    """``runs/<UTC timestamp>``."""
    return Path(root) / dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def run_notebook(path: str | os.PathLike, output_dir: str | os.PathLike, parameters: dict[str, Any] | None = None,
                 bootstrap_servers: str | None = None, kernel_name: str = "python3") -> dict[str, Any]:
    """Execute one notebook with papermill; return its key figures (the JSON it wrote)."""
    import papermill

    path, out = Path(path), Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = {"BOOTSTRAP_SERVERS": resolve_bootstrap(bootstrap_servers), "OUTPUT_DIR": str(out.resolve()),
              **(parameters or {})}
    executed = out / path.name
    try:
        papermill.execute_notebook(str(path), str(executed), parameters=params, kernel_name=kernel_name,
                                   cwd=str(path.parent), progress_bar=False,
                                   kernel_manager_class=_local_kernel_manager())
    except papermill.PapermillExecutionError as exc:
        raise NotebookError(f"{path.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
                            f"(executed copy: {executed})") from None
    figures_path = out / f"{path.stem}.json"
    if not figures_path.exists():
        raise NotebookError(f"{path.name} ran but wrote no key figures to {figures_path}")
    return load_figures(figures_path)


def run_notebooks(notebooks_dir: str | os.PathLike = "notebooks", output_dir: str | os.PathLike | None = None,
                  parameters: dict[str, Any] | None = None, bootstrap_servers: str | None = None,
                  only: list[str] | None = None) -> pd.DataFrame:
    """Run every notebook in order; return one summary row per notebook.

    A failing notebook stops the sequence with :class:`NotebookError`.
    """
    out = Path(output_dir) if output_dir else default_run_dir()
    rows = []
    for path in notebook_paths(notebooks_dir, only):
        started = time.perf_counter()
        figures = run_notebook(path, out, parameters, bootstrap_servers)
        rows.append({"notebook": path.name, "seconds": round(time.perf_counter() - started, 1),
                     "key_figures": len(figures), "output": str(out)})
    return pd.DataFrame(rows)

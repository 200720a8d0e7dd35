"""Run the notebook sequence with papermill and collect each notebook's key figures; keep the
tracked notebooks clean when they run in JupyterLab.

Every notebook gets two parameters on top of the ones given: ``BOOTSTRAP_SERVERS`` and
``OUTPUT_DIR`` (the run folder). It writes its figures and ``<notebook>.json`` there; the
executed notebook is saved next to them.

In JupyterLab (``./run.sh lab``, ``docker compose up``) :func:`strip_outputs` is the server's
pre-save hook: what JupyterLab saves of a notebook is its cells, never their outputs, so running
the tracked notebooks by hand leaves nothing for git to see (their figures and key figures go to
``runs/``).

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
from eventml.errors import ConfigError, NotebookError
from eventml.results import load_figures


#: What :func:`clean_notebook` keeps of a notebook's ``language_info`` (not the kernel's version details).
_KEPT_LANGUAGE_INFO = ("name",)
#: Cell metadata that only records how a cell looked or ran in one session.
_SESSION_CELL_METADATA = ("execution", "collapsed", "scrolled")

#: The command-line setting that makes a Jupyter server save notebooks without their outputs.
LAB_PRE_SAVE_HOOK = "--ContentsManager.pre_save_hook=eventml.notebooks.strip_outputs"


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


def clean_notebook(nb: dict[str, Any]) -> dict[str, Any]:
    """Remove in place, and return, what running a notebook adds to it: outputs, execution counts,
    widget state, the kernel's version details and per-session cell metadata (timings, collapsed
    or scrolled outputs). Sources, cell ids, tags and the kernel's name are kept.

    Examples
    --------
    >>> nb = {"metadata": {"kernelspec": {"name": "python3"}, "widgets": {},
    ...                    "language_info": {"name": "python", "version": "3.11.7"}},
    ...       "cells": [{"cell_type": "code", "source": "1 + 1", "execution_count": 3,
    ...                  "metadata": {"tags": ["parameters"], "execution": {}},
    ...                  "outputs": [{"output_type": "execute_result"}]}]}
    >>> clean_notebook(nb)["metadata"]
    {'kernelspec': {'name': 'python3'}, 'language_info': {'name': 'python'}}
    >>> nb["cells"][0]["outputs"], nb["cells"][0]["execution_count"], nb["cells"][0]["metadata"]
    ([], None, {'tags': ['parameters']})
    """
    metadata = nb.setdefault("metadata", {})
    metadata.pop("widgets", None)
    if isinstance(metadata.get("language_info"), dict):
        metadata["language_info"] = {k: v for k, v in metadata["language_info"].items() if k in _KEPT_LANGUAGE_INFO}
    for cell in nb.get("cells", []):
        cell_metadata = cell.setdefault("metadata", {})
        for key in _SESSION_CELL_METADATA:
            cell_metadata.pop(key, None)
        jupyter = cell_metadata.get("jupyter")
        if isinstance(jupyter, dict):
            jupyter.pop("outputs_hidden", None)
            if not jupyter:
                del cell_metadata["jupyter"]
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return nb


def strip_outputs(model: dict[str, Any], **_: Any) -> None:
    """A Jupyter server pre-save hook: a notebook is saved as :func:`clean_notebook` leaves it.

    Pass it to JupyterLab as :data:`LAB_PRE_SAVE_HOOK`
    (``--ContentsManager.pre_save_hook=eventml.notebooks.strip_outputs``); ``./run.sh lab`` and
    docker-compose.yml do. The open notebook keeps showing its outputs; the file does not get them.
    """
    if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
        clean_notebook(model["content"])


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

"""The tracked notebooks as JupyterLab sees them (no broker, no browser): clean in git, saved clean
after a run, parameters a person can leave alone, and the lab commands that set this up."""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import nbformat
import pytest

from eventml.notebooks import LAB_PRE_SAVE_HOOK, clean_notebook, notebook_paths, strip_outputs

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = notebook_paths(ROOT / "notebooks")


def parameters(nb) -> dict[str, object]:
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body}


def as_jupyterlab_saves_it_after_a_run(nb):
    """What JupyterLab would write after running every cell, without the pre-save hook."""
    ran = copy.deepcopy(nb)
    ran.metadata["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "text/x-python",
                                     "file_extension": ".py", "pygments_lexer": "ipython3"}
    ran.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    for count, cell in enumerate(ran.cells, 1):
        if cell.cell_type == "code":
            cell.execution_count = count
            cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="a warning\n"),
                            nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
            cell.metadata["execution"] = {"iopub.status.busy": "2026-11-30T00:00:00Z"}
            cell.metadata["scrolled"] = True
            cell.metadata["jupyter"] = {"outputs_hidden": True}
    return ran


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_tracked_notebook_is_clean_and_stays_clean_when_jupyterlab_saves_it_after_a_run(path):
    text = path.read_text()
    nb = nbformat.reads(text, as_version=4)
    assert clean_notebook(copy.deepcopy(nb)) == nb  # no outputs, counts or session metadata in git
    model = {"type": "notebook", "content": nbformat.from_dict(as_jupyterlab_saves_it_after_a_run(nb))}
    strip_outputs(model=model, path=path.name, contents_manager=None)
    assert nbformat.writes(nbformat.from_dict(model["content"])) + "\n" == text  # byte for byte


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_parameters_reach_kafka_wherever_it_is_and_write_to_the_projects_runs_folder(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and "parameters" in nb.cells[1].metadata.get("tags", [])
    values = parameters(nb)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in values)
    assert values["BOOTSTRAP_SERVERS"] is None  # the environment's (EVENTML_BOOTSTRAP_SERVERS), unless set
    assert "em.bootstrap_servers(BOOTSTRAP_SERVERS)" in nb.cells[2].source
    # JupyterLab runs a notebook in its own folder: the default lands in the top-level runs/ (git-ignored)
    output = (path.parent / values["OUTPUT_DIR"]).resolve()
    assert output.parent == ROOT / "runs"
    assert "runs/" in (ROOT / ".gitignore").read_text().splitlines()


def test_strip_outputs_leaves_other_files_alone():
    model = {"type": "file", "content": "x = 1\n", "format": "text"}
    strip_outputs(model=model, path="notes.py", contents_manager=None)
    assert model == {"type": "file", "content": "x = 1\n", "format": "text"}


def test_run_sh_lab_and_docker_compose_open_jupyterlab_with_the_pre_save_hook():
    hook = LAB_PRE_SAVE_HOOK.replace("--", "", 1)
    run_sh = (ROOT / "run.sh").read_text()
    lab = run_sh[run_sh.index("    lab)"):run_sh.index(";;", run_sh.index("    lab)"))]
    assert hook in lab and "--ServerApp.ip=127.0.0.1" in lab and "--ServerApp.root_dir=notebooks" in lab
    assert "start_kafka" in lab and "token" in lab
    assert hook in (ROOT / "docker-compose.yml").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "./run.sh lab" in readme

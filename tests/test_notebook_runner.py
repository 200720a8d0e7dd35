"""The papermill runner: parameters in, key figures out, failures named (no broker needed)."""

from __future__ import annotations

import ast
import logging
import re
import types
from pathlib import Path

import nbformat
import papermill
import pytest

from eventml.notebooks import NotebookError, notebook_paths, run_notebook, run_notebooks
from eventml.errors import ConfigError


def write_notebook(path, body: str) -> None:
    params = nbformat.v4.new_code_cell('N = 1\nOUTPUT_DIR = "."\nBOOTSTRAP_SERVERS = ""')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), params, nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


WRITES_FIGURES = (
    "from eventml.results import save_figures\n"
    "save_figures({'n_squared': N * N, 'servers': BOOTSTRAP_SERVERS}, OUTPUT_DIR, '{stem}')"
)


def test_parameters_reach_the_notebook_and_its_figures_come_back(tmp_path):
    write_notebook(tmp_path / "01_square.ipynb", WRITES_FIGURES.replace("{stem}", "01_square"))
    figures = run_notebook(tmp_path / "01_square.ipynb", tmp_path / "out", {"N": 7}, bootstrap_servers="h:1")
    assert figures == {"n_squared": 49, "servers": "h:1"}
    assert (tmp_path / "out" / "01_square.ipynb").exists()  # the executed copy


def test_a_failing_cell_is_named_with_the_executed_copy(tmp_path):
    write_notebook(tmp_path / "01_fail.ipynb", "raise ValueError('boom')")
    with pytest.raises(NotebookError, match=r"01_fail.ipynb failed in cell .*ValueError: boom"):
        run_notebook(tmp_path / "01_fail.ipynb", tmp_path / "out")


def test_a_notebook_that_writes_no_figures_is_an_error(tmp_path):
    write_notebook(tmp_path / "01_quiet.ipynb", "x = 1")
    with pytest.raises(NotebookError, match="wrote no key figures"):
        run_notebook(tmp_path / "01_quiet.ipynb", tmp_path / "out")


def test_notebooks_run_in_sorted_order_and_only_filters(tmp_path):
    for stem in ("02_b", "01_a", "10_c"):
        write_notebook(tmp_path / f"{stem}.ipynb", WRITES_FIGURES.replace("{stem}", stem))
    assert [p.name for p in notebook_paths(tmp_path)] == ["01_a.ipynb", "02_b.ipynb", "10_c.ipynb"]
    summary = run_notebooks(tmp_path, tmp_path / "out", only=["02"])
    assert summary["notebook"].tolist() == ["02_b.ipynb"]
    with pytest.raises(ConfigError, match="no notebooks"):
        notebook_paths(tmp_path, only=["99"])


NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter_of_each_notebook_with_its_default(path, tmp_path, caplog):
    cell = nbformat.read(path, as_version=4).cells[1]
    assert "parameters" in cell.metadata.get("tags", [])
    assigned = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body}
    assert assigned and all(name.isupper() for name in assigned)
    with caplog.at_level(logging.WARNING, logger="papermill"):
        inspected = papermill.inspect_notebook(path)
        # passing every parameter (as eventml notebooks run passes BOOTSTRAP_SERVERS and OUTPUT_DIR) warns of none
        papermill.execute_notebook(path, tmp_path / path.name, parameters=assigned, prepare_only=True)
    assert not caplog.records, [r.getMessage() for r in caplog.records]  # e.g. "Unable to parse line 2 ..."
    # every parameter is known to papermill (else a value passed for it is "unknown"), with its literal
    # default, of the same type, and the comment after it as its help
    assert list(inspected) == list(assigned)
    for name, value in assigned.items():
        default = ast.literal_eval(inspected[name]["default"])
        assert default == value and type(default) is type(value), name
        assert inspected[name]["help"], name


def test_notebooks_use_only_the_public_tiers():
    import eventml as em

    for path in NOTEBOOKS:
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert not re.findall(r"^\s*(?:from|import) eventml\.\w+", code, re.MULTILINE), path.name
        for name, attribute in re.findall(r"\bem\.(\w+)(?:\.(\w+))?", code):
            top = getattr(em, name)
            assert name in em.__all__ or (isinstance(top, types.ModuleType) and not name.startswith("_")), name
            if attribute and isinstance(top, types.ModuleType):
                assert hasattr(top, attribute), f"em.{name}.{attribute}"

"""Experiment grids: a tiny notebook run with papermill once per combination (no broker needed).

The notebook computes ``A * A + B`` and a label from its parameters and raises when
``[A, B] == FAIL_AT``, so every row can be checked against its own parameters.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
import sys

import nbformat
import orjson
import pandas as pd
import pytest

from eventml.errors import ConfigError
from eventml.grid import collect_grid, grid_from_options, run_grid

BODY = (
    "from eventml.results import save_figures\n"
    "if [A, B] == FAIL_AT:\n"
    "    raise ValueError(f'refused A={A} B={B}')\n"
    "save_figures({'value': A * A + B, 'label': f'{NAME}-{A}', 'A': -1}, OUTPUT_DIR, '01_square')"
)


def value_of(a, b):
    return a * a + b


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    path = tmp_path_factory.mktemp("nb") / "01_square.ipynb"
    params = nbformat.v4.new_code_cell(
        'A = 1  # any number\nB = 0\nNAME = "x"\nFAIL_AT = None  # [A, B] that raises\n'
        'OUTPUT_DIR = "."\nBOOTSTRAP_SERVERS = ""'
    )
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# square"), params,
                                         nbformat.v4.new_code_cell(BODY)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def grid_run(notebook, tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "g"
    df = run_grid(notebook, {"A": [1, 2], "B": [10, 20]}, out, {"NAME": "sq", "FAIL_AT": [2, 10]}, progress=False)
    return df, out


def test_one_row_per_combination_in_grid_order(grid_run):
    df, out = grid_run
    assert len(df) == 2 * 2
    assert df["run"].tolist() == ["run-001", "run-002", "run-003", "run-004"]
    assert list(zip(df["A"], df["B"])) == [(1, 10), (1, 20), (2, 10), (2, 20)]
    assert (df["NAME"] == "sq").all()
    assert [p.name for p in sorted(out.glob("run-*"))] == df["run"].tolist()


def test_each_rows_figures_are_computed_from_its_own_parameters(grid_run):
    df, _ = grid_run
    ok = df[df["error"].isna()]
    assert len(ok) == 3
    for row in ok.itertuples():
        assert row.value == value_of(row.A, row.B)
        assert row.label == f"sq-{row.A}"
        assert row.A_figure == -1  # a figure named like a parameter does not overwrite it


def test_a_failing_combination_is_recorded_and_the_grid_goes_on(grid_run):
    df, _ = grid_run
    failed = df[df["error"].notna()]
    assert failed["run"].tolist() == ["run-003"]
    assert "ValueError: refused A=2 B=10" in failed["error"].iloc[0]
    assert pd.isna(failed["value"].iloc[0])
    assert df.attrs == {}  # everything a user needs is a column
    assert df["run"].iloc[-1] == "run-004" and df["value"].iloc[-1] == value_of(2, 20)


def test_each_run_folder_holds_its_parameters_and_executed_notebook(grid_run):
    df, _ = grid_run
    for row in df.itertuples():
        params = orjson.loads((Path(row.output_dir) / "params.json").read_bytes())
        assert params == {"A": row.A, "B": row.B, "NAME": "sq", "FAIL_AT": [2, 10]}
        assert (Path(row.output_dir) / "01_square.ipynb").is_file()


def test_the_table_is_written_and_collected_again_from_disk(grid_run):
    df, out = grid_run
    pd.testing.assert_frame_equal(collect_grid(out), df)
    spec = orjson.loads((out / "grid.json").read_bytes())  # the grid as given, for a table rebuilt later
    assert spec["grid"] == {"A": [1, 2], "B": [10, 20]} and spec["parameters"] == {"NAME": "sq", "FAIL_AT": [2, 10]}
    assert df.columns[1:5].tolist() == [*spec["grid"], *spec["parameters"]]  # the parameters come first
    from_csv = pd.read_csv(out / "grid.csv")
    assert from_csv["run"].tolist() == df["run"].tolist()
    assert from_csv["value"].tolist()[:2] == df["value"].tolist()[:2]


def test_a_run_that_did_not_finish_is_reported_as_such(grid_run, tmp_path):
    import shutil

    _, out = grid_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "run-001" / "01_square.json").unlink()
    df = collect_grid(copy)
    assert df["error"].iloc[0].startswith("did not finish")
    assert df["error"].notna().sum() == 2


def test_the_command_prints_the_table_and_fails_when_a_run_failed(notebook, tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, "-m", "eventml.cli", "grid", str(notebook), "--grid", "A=3,4", "--grid", "B=[5]",
         "-p", "FAIL_AT=[4,5]", "-p", "NAME=cli", "--output", str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "2 runs, 1 failed" in proc.stdout
    header, first, second = proc.stdout.splitlines()[1:4]
    assert header.split()[-2:] == ["value", "error"]
    cells = first.split()  # the error cell of a run that succeeded is empty
    assert cells[:3] == ["run-001", "3", "5"] and "cli" in cells and float(cells[-1]) == value_of(3, 5)
    assert second.startswith("run-002") and "ValueError: refused A=4 B=5" in second
    assert collect_grid(out)["value"].iloc[0] == value_of(3, 5)


def test_the_command_succeeds_when_every_run_does(notebook, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "eventml.cli", "grid", str(notebook), "-g", "A=6", "--output", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1 runs, 0 failed" in proc.stdout and str(value_of(6, 0)) in proc.stdout


# ----------------------------------------------------------------------------- bad grids, no kernel


@pytest.mark.parametrize("grid, message", [
    ({}, "grid must be a non-empty dict"),
    ({"A": 3}, "grid parameter 'A' must have a non-empty list of values, got 3"),
    ({"A": "123"}, "grid parameter 'A' must have a non-empty list of values, got '123'"),
    ({"A": []}, "grid parameter 'A' must have a non-empty list"),
])
def test_an_empty_grid_or_a_value_that_is_not_a_list_is_refused(notebook, tmp_path, grid, message):
    with pytest.raises(ConfigError, match=message):
        run_grid(notebook, grid, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_a_parameter_the_notebook_does_not_define_is_named_with_the_ones_it_does(notebook, tmp_path):
    with pytest.raises(ConfigError) as info:
        run_grid(notebook, {"A": [1], "SEEED": [1, 2]}, tmp_path / "o")
    assert "does not define parameter(s) SEEED" in str(info.value)
    assert "its parameters are: A, B, NAME, FAIL_AT, OUTPUT_DIR, BOOTSTRAP_SERVERS" in str(info.value)
    with pytest.raises(ConfigError, match="does not define parameter.s. NAMEE"):
        run_grid(notebook, {"A": [1]}, tmp_path / "o", {"NAMEE": "typo in a fixed one"})


@pytest.mark.parametrize("grid, fixed, message", [
    ({"A": [1]}, {"A": 2}, "A are both in the grid and fixed"),
    ({"OUTPUT_DIR": ["x"]}, {}, "OUTPUT_DIR is set by the grid for each run"),
    ({"A": [object()]}, {}, "cannot be passed to a notebook"),
])
def test_conflicting_or_unpassable_parameters_are_refused(notebook, tmp_path, grid, fixed, message):
    with pytest.raises(ConfigError, match=message):
        run_grid(notebook, grid, tmp_path / "o", fixed)


def test_a_missing_notebook_and_a_used_output_folder_are_refused(notebook, grid_run, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        run_grid(tmp_path / "nope.ipynb", {"A": [1]}, tmp_path / "o")
    (tmp_path / "broken.ipynb").write_text("not a notebook")
    with pytest.raises(ConfigError, match="cannot read the parameters of .*broken.ipynb"):
        run_grid(tmp_path / "broken.ipynb", {"A": [1]}, tmp_path / "o")
    _, out = grid_run
    with pytest.raises(ConfigError, match="already holds a grid"):
        run_grid(notebook, {"A": [1]}, out)
    with pytest.raises(ConfigError, match="holds no grid"):
        collect_grid(tmp_path)


def test_grid_options_parse_json_values_and_refuse_repeats():
    assert grid_from_options(["A=1,2.5,x", "B=[null, true]", 'C="7"']) == {
        "A": [1, 2.5, "x"], "B": [None, True], "C": ["7"]}
    with pytest.raises(ConfigError, match="--grid A is given twice"):
        grid_from_options(["A=1", "A=2"])
    with pytest.raises(ConfigError, match="must look like NAME=V1,V2"):
        grid_from_options(["A"])


def test_the_command_names_a_bad_grid_in_one_line(notebook):
    proc = subprocess.run([sys.executable, "-m", "eventml.cli", "grid", str(notebook), "--grid", "ZZ=1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("eventml: error: 01_square.ipynb does not define parameter(s) ZZ")
    assert "Traceback" not in proc.stderr

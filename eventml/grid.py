"""Experiment grids: one notebook run with papermill once per combination of parameters.

:func:`run_grid` runs every combination of a grid (``itertools.product``, in the grid's
order, the last parameter changing fastest), each into its own folder
``output_dir/run-001``, ``run-002``, ... holding the parameters it got (``params.json``),
the executed notebook and the key figures it wrote (``NN_name.json``). A failing run is
recorded (its folder gets ``error.txt``) and the grid goes on. The result is one table,
also written to ``output_dir/grid.csv``; :func:`collect_grid` rebuilds it from the folders
later (``output_dir/grid.json`` remembers the notebook and the grid).

Examples
--------
>>> for params in grid_runs({"MODEL": ["river_logreg", "sgd_logreg"], "SEED": [1, 2]}):
...     print(params)
{'MODEL': 'river_logreg', 'SEED': 1}
{'MODEL': 'river_logreg', 'SEED': 2}
{'MODEL': 'sgd_logreg', 'SEED': 1}
{'MODEL': 'sgd_logreg', 'SEED': 2}
>>> df = run_grid("notebooks/03_compare_learners.ipynb", {"SEED": [1, 2, 3]}, "runs/seeds")  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from tqdm.auto import tqdm

from eventml.errors import ConfigError
from eventml.kafka.settings import KafkaSettings, environment
from eventml.results import load_figures

__all__ = ["run_grid", "collect_grid", "grid_runs", "parse_grid_option", "grid_from_options"]

GRID_FILE = "grid.json"
TABLE_FILE = "grid.csv"
PARAMS_FILE = "params.json"
ERROR_FILE = "error.txt"
_RESERVED = ("run", "error", "output_dir")
_SET_BY_RUNNER = ("OUTPUT_DIR",)  # every run gets its own folder


def grid_runs(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of ``grid``, in a deterministic order (the last name changes fastest).

    Raises
    ------
    ConfigError
        If the grid is empty, a name is not a string, or a value is not a non-empty list
        (or tuple).

    Examples
    --------
    >>> print(len(grid_runs({"A": [1, 2, 3], "B": ["x", "y"]})))
    6
    """
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"grid must be a non-empty dict {{parameter name: list of values}}, got {grid!r}")
    for name, values in grid.items():
        if not isinstance(name, str):
            raise ConfigError(f"grid parameter names must be strings, got {name!r}")
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"grid parameter {name!r} must have a non-empty list of values, got {values!r}")
    names = list(grid)
    return [dict(zip(names, combination)) for combination in itertools.product(*grid.values())]


def parse_grid_option(text: str) -> tuple[str, list]:
    """``NAME=V1,V2,...`` (or ``NAME=[V1, V2]`` in JSON) to ``(name, values)``.

    Each value is read as JSON when it can be (numbers, ``true``, ``null``, quoted strings),
    else kept as a string.

    Examples
    --------
    >>> print(parse_grid_option("SEED=1,2,3"), parse_grid_option("MODEL=river_gnb,sgd_logreg"))
    ('SEED', [1, 2, 3]) ('MODEL', ['river_gnb', 'sgd_logreg'])
    >>> print(parse_grid_option("DRIFT_AT=[null, 2500]"))
    ('DRIFT_AT', [None, 2500])
    """
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise ConfigError(f"--grid must look like NAME=V1,V2,... or NAME=[JSON list], got {text!r}")
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, list):
        return name, parsed
    return name, [_json_or_text(part) for part in value.split(",")]


def grid_from_options(texts: list[str]) -> dict[str, list]:
    """A grid from several ``NAME=V1,V2,...`` options (see :func:`parse_grid_option`).

    Examples
    --------
    >>> print(grid_from_options(["SEED=1,2", "MODEL=river_gnb"]))
    {'SEED': [1, 2], 'MODEL': ['river_gnb']}
    """
    grid: dict[str, list] = {}
    for text in texts:
        name, values = parse_grid_option(text)
        if name in grid:
            raise ConfigError(f"--grid {name} is given twice; list all its values in one option")
        grid[name] = values
    return grid


def _json_or_text(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _check_parameters(notebook: Path, grid: dict, fixed: dict) -> None:
    import papermill

    both = sorted(set(grid) & set(fixed))
    if both:
        raise ConfigError(f"parameter(s) {', '.join(both)} are both in the grid and fixed; give each once")
    runner = sorted(set(_SET_BY_RUNNER) & (set(grid) | set(fixed)))
    if runner:
        raise ConfigError(f"{', '.join(runner)} is set by the grid for each run (output_dir/run-NNN); "
                          "choose the folder with output_dir")
    try:
        defined = papermill.inspect_notebook(str(notebook))
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for a file that is not a notebook
        raise ConfigError(f"cannot read the parameters of {notebook}: {type(exc).__name__}: {exc}") from None
    unknown = [name for name in [*grid, *fixed] if name not in defined]
    if unknown:
        known = ", ".join(defined) or "none (no cell tagged 'parameters')"
        raise ConfigError(f"{notebook.name} does not define parameter(s) {', '.join(unknown)}; "
                          f"its parameters are: {known}")
    for name, value in [*((n, v) for n, vs in grid.items() for v in vs), *fixed.items()]:
        try:
            orjson.dumps(value)
        except TypeError:
            raise ConfigError(f"parameter {name} = {value!r} cannot be passed to a notebook: use numbers, "
                              "strings, booleans, None, lists or dicts of them") from None


def run_grid(notebook: str | os.PathLike, grid: dict[str, list], output_dir: str | os.PathLike,
             parameters: dict[str, Any] | None = None, *, bootstrap_servers: str | None = None,
             kafka: KafkaSettings | None = None, kernel_name: str = "python3", progress: bool = True,
             **connection: Any) -> pd.DataFrame:
    """Run ``notebook`` once per combination of ``grid`` and collect every run's key figures.

    Parameters
    ----------
    notebook
        Path of the notebook; it must have a cell tagged ``parameters`` that defines every
        name in ``grid`` and ``parameters``, and it must write its key figures to
        ``OUTPUT_DIR/<notebook stem>.json`` (:func:`eventml.results.save_figures`).
    grid
        ``{parameter name: list of values}``; every combination is run (see :func:`grid_runs`).
    output_dir
        A new (or empty) folder; run ``k`` goes to ``output_dir/run-00k`` and gets it as
        ``OUTPUT_DIR``.
    parameters
        Fixed parameters, the same for every run.
    bootstrap_servers
        Passed to every run as ``BOOTSTRAP_SERVERS`` (default: ``EVENTML_BOOTSTRAP_SERVERS``
        or ``127.0.0.1:9092``).
    kafka, **connection
        The other connection settings (``security_protocol``, ``sasl_username``, ...; see
        :mod:`eventml.kafka.settings`), else the ``EVENTML_*`` environment: every run's kernel gets
        them as its ``EVENTML_*`` environment.
    kernel_name
        Jupyter kernel to run the notebook with.
    progress
        Show a tqdm bar over the runs and print how many failed at the end.

    Returns
    -------
    pandas.DataFrame
        One row per run, in grid order, with columns ``run`` (``run-001``, ...), the grid
        parameters, the fixed parameters, every key figure written by any run (missing
        ones are NaN; a figure named like a parameter or a reserved column gets the suffix
        ``_figure``), ``error`` (missing for a run that succeeded, else the message naming the
        failing cell: ``df["error"].isna()`` selects the runs that succeeded, ``df["error"].notna().sum()``
        counts the failed ones) and ``output_dir`` (the run's folder). Everything is a column, so
        filtering, concatenating or saving the table keeps it. The table is also written to
        ``output_dir/grid.csv``; the notebook's absolute path, the grid and the fixed parameters as
        given are in ``output_dir/grid.json``.

    Raises
    ------
    ConfigError
        Before anything runs: for a missing or unreadable notebook, an empty grid, a value that is not a
        non-empty list, a parameter the notebook does not define (the message lists the
        ones it does), a parameter both in the grid and fixed, ``OUTPUT_DIR`` among the
        parameters, or an ``output_dir`` that already holds a grid.
    """
    path = Path(notebook)
    if not path.is_file():
        raise ConfigError(f"notebook {str(path)!r} does not exist")
    settings = KafkaSettings.resolve(kafka, bootstrap_servers=bootstrap_servers, **connection)
    fixed = dict(parameters or {})
    runs = grid_runs(grid)
    _check_parameters(path, grid, fixed)
    out = Path(output_dir)
    if (out / GRID_FILE).exists():
        raise ConfigError(f"output_dir {str(out)!r} already holds a grid; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / GRID_FILE).write_bytes(orjson.dumps(
        {"notebook": str(path.resolve()), "grid": grid, "parameters": fixed, "runs": len(runs)},
        option=orjson.OPT_INDENT_2))

    from eventml.notebooks import run_notebook

    failed = 0
    bar = tqdm(runs, desc=path.stem, unit="run", disable=not progress)
    for number, params in enumerate(bar, start=1):
        run_dir = out / _run_name(number, len(runs))
        run_dir.mkdir()
        passed = {**params, **fixed}
        (run_dir / PARAMS_FILE).write_bytes(orjson.dumps(passed, option=orjson.OPT_INDENT_2))
        try:
            with environment(settings):  # the kernel inherits the connection settings
                run_notebook(path, run_dir, passed, bootstrap_servers=settings.bootstrap_servers,
                             kernel_name=kernel_name)
        except Exception as exc:  # noqa: BLE001 - a failing run is recorded and the grid goes on
            failed += 1
            (run_dir / ERROR_FILE).write_text(str(exc) if str(exc) else type(exc).__name__)
            bar.set_postfix(failed=failed)
    bar.close()
    df = collect_grid(out)
    df.to_csv(out / TABLE_FILE, index=False)
    if progress:
        print(f"{path.name}: {len(runs)} runs, {failed} failed" + (" (see the error column)" if failed else "")
              + f"; executed notebooks and key figures in {out}/run-*, the table in {out / TABLE_FILE}")
    return df


def _run_name(number: int, total: int) -> str:
    return f"run-{number:0{max(3, len(str(total)))}d}"


def collect_grid(output_dir: str | os.PathLike) -> pd.DataFrame:
    """Rebuild :func:`run_grid`'s table from its folder: ``params.json``, key figures, errors.

    A run whose folder has neither key figures nor ``error.txt`` (the grid was stopped
    before it ended) gets an error saying so; runs never started have no row.

    Examples
    --------
    .. code-block:: python

        df = collect_grid("runs/seeds")
        df.groupby("MODEL")["accuracy"].mean()
    """
    out = Path(output_dir)
    if not (out / GRID_FILE).is_file():
        raise ConfigError(f"{str(out)!r} holds no grid (no {GRID_FILE}); run_grid writes one")
    spec = load_figures(out / GRID_FILE)
    figures_name = Path(spec["notebook"]).stem + ".json"
    names = [*spec["grid"], *spec["parameters"]]
    taken = set(names) | set(_RESERVED)
    rows = []
    for run_dir in sorted(p for p in out.glob("run-*") if (p / PARAMS_FILE).is_file()):
        row: dict[str, Any] = {"run": run_dir.name, **load_figures(run_dir / PARAMS_FILE)}
        figures_path, error_path = run_dir / figures_name, run_dir / ERROR_FILE
        if figures_path.is_file():
            row.update({(f"{k}_figure" if k in taken else k): v for k, v in load_figures(figures_path).items()})
        if error_path.is_file():
            row["error"] = error_path.read_text()
        elif not figures_path.is_file():
            row["error"] = f"did not finish: no key figures in {figures_path}"
        else:
            row["error"] = None
        row["output_dir"] = str(run_dir.resolve())
        rows.append(row)
    columns = ["run", *names]
    for row in rows:
        columns.extend(k for k in row if k not in columns and k not in _RESERVED)
    return pd.DataFrame(rows, columns=[*columns, "error", "output_dir"])

"""``eventml notebooks`` and ``grid``: the notebook sequence, and one notebook over a grid of parameters."""

from __future__ import annotations

import argparse
import os

from eventml.cli.common import add_command, kafka_settings, parse_parameter, with_servers


def _notebooks(args: argparse.Namespace) -> int:
    from eventml.notebooks import run_notebooks

    parameters = dict(parse_parameter(p) for p in args.parameter)
    settings = kafka_settings(args)
    os.environ.update(settings.to_env())  # the kernels inherit the connection settings
    summary = run_notebooks(args.notebooks_dir, args.output, parameters=parameters,
                            bootstrap_servers=settings.bootstrap_servers, only=args.only)
    print(summary.drop(columns="output").to_string(index=False))
    print(f"executed notebooks, figures and key figures (NN_name.json) are in {summary['output'].iloc[0]}")
    return 0


def _grid(args: argparse.Namespace) -> int:
    from eventml.grid import grid_from_options, run_grid
    from eventml.notebooks import default_run_dir

    grid = grid_from_options(args.grid)
    parameters = dict(parse_parameter(p) for p in args.parameter)
    output = args.output or default_run_dir("runs/grid")
    df = run_grid(args.notebook, grid, output, parameters, kafka=kafka_settings(args))
    table = df.drop(columns="output_dir").assign(error=df["error"].fillna(""))
    print(table.to_string(index=False, max_colwidth=80))
    return 1 if df["error"].notna().any() else 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds this module's commands to ``eventml``'s sub-parsers."""
    notebooks = add_command(commands, "notebooks", _notebooks, "run the notebook sequence with papermill")
    notebooks.add_argument("action", choices=["run"])
    notebooks.add_argument("--notebooks-dir", default="notebooks")
    notebooks.add_argument("--output", help="output folder (default: runs/<timestamp>)")
    notebooks.add_argument("--only", nargs="*", help="notebook name prefixes to run, e.g. 01")
    notebooks.add_argument("--parameter", "-p", action="append", default=[], metavar="NAME=VALUE",
                           help="a parameter for every notebook (JSON value), repeatable")
    with_servers(notebooks)

    grid = add_command(commands, "grid", _grid, "run one notebook once per combination of parameter values")
    grid.add_argument("notebook", help="path of the notebook (its 'parameters' cell defines the names)")
    grid.add_argument("--grid", "-g", action="append", required=True, metavar="NAME=V1,V2,...",
                      help="values to try for one parameter (each read as JSON when possible), repeatable")
    grid.add_argument("--parameter", "-p", action="append", default=[], metavar="NAME=VALUE",
                      help="a fixed parameter for every run (JSON value), repeatable")
    grid.add_argument("--output", help="output folder (default: runs/grid/<timestamp>)")
    with_servers(grid)

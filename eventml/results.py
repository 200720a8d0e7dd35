"""Writing a run's results: flat JSON key figures and figure files, and showing them to a person.

A notebook's last cell calls :func:`save_figures`; tests and the notebook runner read the JSON, and
:func:`figures_table` shows the same figures as a person reads them (:func:`readable`).

Examples
--------
>>> import tempfile
>>> path = save_figures({"events_produced": 100, "drift_at": None}, tempfile.mkdtemp(), "demo")
>>> load_figures(path)["events_produced"]
100
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from eventml.errors import ConfigError

_FLAT = (int, float, str, bool, type(None))


def _plain(name: str, value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if not isinstance(value, _FLAT):
        raise ConfigError(f"key figure {name!r} must be a number, string, boolean or None, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_figures(figures: dict[str, Any], output_dir: str | os.PathLike, name: str) -> Path:
    """Write ``figures`` as flat JSON to ``output_dir/name.json`` and return the path."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    flat = {key: _plain(key, value) for key, value in figures.items()}
    path.write_bytes(orjson.dumps(flat, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return path


def load_figures(path: str | os.PathLike) -> dict[str, Any]:
    """Read key figures written by :func:`save_figures`."""
    return orjson.loads(Path(path).read_bytes())


def save_plot(fig, output_dir: str | os.PathLike, name: str) -> Path:
    """Save a matplotlib figure as ``output_dir/name.png`` (150 dpi) and return the path."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


def readable(value: Any) -> str:
    """A number as a person reads it: whole numbers and values from 1,000 up with thousands
    separators, others to four significant digits, tiny ones in scientific notation (never rounded
    to a misleading 0.0), numpy scalars as plain numbers. Exact values stay in the JSON.

    Examples
    --------
    >>> import numpy as np
    >>> [readable(v) for v in (np.float64(0.89775), 6963.46, 3500, 0.0796587, 5.82e-10, 0.0, True, None, "sea")]
    ['0.8978', '6,963', '3,500', '0.07966', '5.82e-10', '0', 'True', '—', 'sea']
    """
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        return f"{value:.3g}"
    if abs(value) >= 1e3:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def figures_table(figures: dict[str, Any] | str | os.PathLike) -> pd.DataFrame:
    """Key figures (a dict, or the path of a JSON written by :func:`save_figures`) as a one-column
    table of :func:`readable` values, in the order given.

    Examples
    --------
    >>> table = figures_table({"accuracy": 0.8461538, "events": 3500, "max_diff": 4.1e-16})
    >>> table["value"].to_dict()
    {'accuracy': '0.8462', 'events': '3,500', 'max_diff': '4.1e-16'}
    """
    if not isinstance(figures, dict):
        figures = load_figures(figures)
    return pd.DataFrame({"value": [readable(v) for v in figures.values()]}, index=list(figures))

"""Writing a run's results: flat JSON key figures and figure files.

A notebook's last cell calls :func:`save_figures`; tests and the notebook runner read the JSON.

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

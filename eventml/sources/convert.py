"""Plain Python values for the wire format, and events from ``(features, label)`` pairs.

Every source turns what its library gives (numpy scalars, NaN, pandas timestamps, boolean
labels) into the values :func:`eventml.events.encode_event` writes: numbers, strings, booleans
and ``None``.

Examples
--------
>>> import numpy as np
>>> print(plain(np.float64(0.5)), plain(float("nan")), label_of(np.bool_(True)))
0.5 None 1
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from eventml.events import Event

__all__ = ["START_TS", "Pairs", "plain", "label_of", "events_from_pairs"]

START_TS = 1764000000.0
"""Default event time of the first event (2025-11-24 16:00 UTC)."""

Pairs = Iterable[tuple[dict, Any]]


def plain(value: Any) -> Any:
    """A feature value as a plain Python value; NaN and other missing markers become None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if value is None or isinstance(value, (int, str, bool)):
        return value
    if _is_missing(value):
        return None
    if hasattr(value, "isoformat"):  # datetime, pandas Timestamp
        return value.isoformat()
    return value


def _is_missing(value: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def label_of(value: Any) -> Any:
    """A label as a plain Python value: booleans become 0/1, NaN becomes None."""
    value = plain(value)
    return int(value) if isinstance(value, bool) else value


def events_from_pairs(pairs: Pairs, n_events: int | None, start_ts: float, interval_s: float,
                      id_prefix: str) -> Iterator[Event]:
    """Event ``i`` from the ``i``-th pair: id ``f"{id_prefix}{i}"``, ``ts = start_ts + i * interval_s``;
    at most ``n_events`` of them (all when None)."""
    for i, (x, y) in enumerate(itertools.islice(pairs, n_events)):
        features = {str(k): plain(v) for k, v in x.items()}
        yield Event(f"{id_prefix}{i}", features, label_of(y), start_ts + i * interval_s)

"""Your own data as events: one event per row of a pandas DataFrame or a CSV file.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"key": ["a", "b"], "x": [1.0, 2.0]})
>>> print([e.id for e in from_dataframe(df, id_column="key")])
['a', 'b']
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from eventml.errors import SourceError
from eventml.events import Event
from eventml.sources.convert import label_of, plain

__all__ = ["from_dataframe", "from_csv"]


def _require_column(df: Any, role: str, column: str | None) -> None:
    if column is not None and column not in df.columns:
        columns = ", ".join(map(str, df.columns))
        raise SourceError(f"{role} column {column!r} is not in the data; its columns are: {columns}")


def from_dataframe(
    df: Any,
    *,
    target: str | None = None,
    id_column: str | None = None,
    ts_column: str | None = None,
    id_prefix: str = "e-",
) -> Iterator[Event]:
    """One event per row of a pandas DataFrame, in row order.

    Parameters
    ----------
    df
        The data; every column other than the target, id and ts columns is a feature.
    target
        Column holding the label; ``None`` for unlabelled events.
    id_column
        Column holding the event id (converted to ``str``); ``None`` for ids
        ``f"{id_prefix}{row_number}"``.
    ts_column
        Column holding the event time, as epoch seconds or datetimes (naive ones are read as
        UTC); ``None`` leaves ``ts`` unset so the record timestamp is used.
    id_prefix
        Prefix of generated ids.

    Raises
    ------
    SourceError
        When a named column is missing (the message lists the columns), or a row has no id.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [0.5, float("nan")], "y": [True, False]})
    >>> [(e.id, e.features, e.label) for e in from_dataframe(df, target="y")]
    [('e-0', {'x': 0.5}, 1), ('e-1', {'x': None}, 0)]
    """
    import pandas as pd

    _require_column(df, "target", target)
    _require_column(df, "id", id_column)
    _require_column(df, "ts", ts_column)
    special = {target, id_column, ts_column}
    names = [c for c in df.columns if c not in special]
    columns = [df[c].tolist() for c in names]
    labels = df[target].tolist() if target is not None else itertools.repeat(None)
    if ts_column is None:
        stamps: Iterable[Any] = itertools.repeat(None)
    elif pd.api.types.is_datetime64_any_dtype(df[ts_column]):
        stamps = [None if pd.isna(t) else t.timestamp() for t in df[ts_column]]
    else:
        stamps = [None if plain(t) is None else float(t) for t in df[ts_column].tolist()]
    if id_column is None:
        ids = [f"{id_prefix}{i}" for i in range(len(df))]
    else:
        ids = [None if plain(v) is None else str(plain(v)) for v in df[id_column].tolist()]
        missing = [i for i, v in enumerate(ids) if not v]
        if missing:
            raise SourceError(f"id column {id_column!r} is empty in {len(missing)} row(s), first at row {missing[0]}")
    keys = [str(c) for c in names]
    rows = zip(*columns) if columns else itertools.repeat(())
    return (
        Event(event_id, {k: plain(v) for k, v in zip(keys, values)}, label_of(label), ts)
        for event_id, values, label, ts in zip(ids, rows, labels, stamps)
    )


def from_csv(path: Any, **kwargs: Any) -> Iterator[Event]:
    """One event per row of a CSV file; keyword arguments as in :func:`from_dataframe`.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "data.csv")
    >>> _ = open(path, "w").write("id,x,label\\nA,1.5,0\\nB,,1\\n")
    >>> [(e.id, e.features, e.label) for e in from_csv(path, target="label", id_column="id")]
    [('A', {'x': 1.5}, 0), ('B', {'x': None}, 1)]
    """
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read CSV file {str(path)!r}: {exc}") from None
    return from_dataframe(df, **kwargs)

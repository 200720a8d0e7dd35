"""Seeded event sources: synthetic streams, shipped datasets, data frames and CSV files.

Every source yields :class:`eventml.events.Event` objects whose features and labels are
plain Python values (numpy scalars converted, NaN turned into ``None``, boolean labels
turned into ``0``/``1``), ready for :func:`eventml.events.encode_event`.

* :func:`synthetic` -- endless generators from :mod:`river.datasets.synth` (``sea``,
  ``agrawal``, ``hyperplane``, ``sine``, ``stagger``), optionally with a concept drift at a
  chosen event. The same seed always gives the same events.
* :func:`dataset` -- small datasets that ship inside river or scikit-learn (``phishing``,
  ``bananas``, ``breast_cancer``, ``iris``), so no download is ever needed.
* :func:`from_dataframe` and :func:`from_csv` -- one event per row of your own data.
* :func:`rate_limited` -- paces any source to a number of events per second.
* :func:`make_source` -- the single entry point used by the command line: a name from
  :data:`SOURCES`, a number of events, a seed, a drift position and a rate.

Examples
--------
>>> from eventml.sources import make_source, source_names
>>> source_names()
['agrawal', 'bananas', 'breast_cancer', 'hyperplane', 'iris', 'phishing', 'sea', 'sine', 'stagger']
>>> events = list(make_source("sea", 1000, seed=7, drift_at=500))
>>> len(events), events[0].id, events[-1].id
(1000, 'e-0', 'e-999')
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from river.datasets import synth

from eventml.errors import SourceError
from eventml.events import Event

__all__ = [
    "SOURCES",
    "synthetic",
    "dataset",
    "from_dataframe",
    "from_csv",
    "rate_limited",
    "make_source",
    "source_names",
]

START_TS = 1764000000.0
"""Default event time of the first event (2025-11-24 16:00 UTC)."""

Pairs = Iterable[tuple[dict, Any]]


# ----------------------------------------------------------------------------- conversion


def _py(value: Any) -> Any:
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


def _label(value: Any) -> Any:
    """A label as a plain Python value: booleans become 0/1, NaN becomes None."""
    value = _py(value)
    return int(value) if isinstance(value, bool) else value


def _events(pairs: Pairs, n_events: int | None, start_ts: float, interval_s: float, id_prefix: str) -> Iterator[Event]:
    for i, (x, y) in enumerate(itertools.islice(pairs, n_events)):
        features = {str(k): _py(v) for k, v in x.items()}
        yield Event(f"{id_prefix}{i}", features, _label(y), start_ts + i * interval_s)


# ----------------------------------------------------------------------------- validation


def _check_int(
    name: str, value: Any, minimum: int, maximum: int | None = None, *, allow_none: bool = False, why: str = ""
) -> None:
    """Raise SourceError unless ``minimum <= value <= maximum`` (an int) or value is an allowed None."""
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if ok and value >= minimum and (maximum is None or value <= maximum):
        return
    accepted = f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"
    accepted += f" {why}" if why else ""
    accepted += " or None" if allow_none else ""
    raise SourceError(f"{name} must be {accepted}, got {value!r}")


def _unknown(kind: str, name: Any, known: Iterable[str]) -> SourceError:
    return SourceError(f"unknown {kind} {name!r}; known {kind}s: {', '.join(sorted(known))}")


# ----------------------------------------------------------------------------- synthetic


class _DriftStream(synth.ConceptDriftStream):
    """river's ConceptDriftStream with an overflow-safe sigmoid.

    river 0.26 computes ``math.exp(-4 * (t - position) / width)``, which overflows when an
    event is more than about 177 widths before the drift (any abrupt drift after event
    ~180). Clamping the exponent gives the same draws wherever river does not overflow.
    """

    def __iter__(self):
        rng = random.Random(self.seed)
        before, after = iter(self.stream), iter(self.drift_stream)
        for t in itertools.count(1):
            v = -4.0 * (t - self.position) / self.width
            p_after = 1.0 / (1.0 + math.exp(min(v, 700.0)))
            try:
                yield next(before) if rng.random() > p_after else next(after)
            except StopIteration:
                return


def _far_plane_seed(seed: int | None) -> int | None:
    """Of seeds seed+1 ... seed+10, the one whose hyperplane is the most tilted from seed's.

    river's Hyperplane draws its weights as the first ``random.Random(seed).random()``
    values; a random pair of planes can be nearly parallel (a drift nobody notices), the
    most tilted of ten candidates is always at least ~35 degrees away.
    """
    if seed is None:
        return None

    def weights(s: int) -> list[float]:
        rng = random.Random(s)
        return [rng.random() for _ in range(10)]

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    base = weights(seed)
    return min(range(seed + 1, seed + 11), key=lambda s: cosine(base, weights(s)))


# name -> (concept before the drift, concept after it); each takes a seed.
# The "after" concepts were chosen so that a model fitted before the drift clearly loses
# accuracy after it: SEA threshold 8 -> 9.5 (~13% of labels change), Agrawal function 0 -> 4,
# a tilted hyperplane, Sine function 0 -> 1 (labels reversed), STAGGER function 0 -> 2.
_CONCEPTS: dict[str, tuple[Callable[[int | None], Any], Callable[[int | None], Any]]] = {
    "sea": (lambda s: synth.SEA(variant=0, seed=s), lambda s: synth.SEA(variant=3, seed=s)),
    "agrawal": (
        lambda s: synth.Agrawal(classification_function=0, seed=s),
        lambda s: synth.Agrawal(classification_function=4, seed=s),
    ),
    "hyperplane": (lambda s: synth.Hyperplane(seed=s), lambda s: synth.Hyperplane(seed=_far_plane_seed(s))),
    "sine": (
        lambda s: synth.Sine(classification_function=0, seed=s),
        lambda s: synth.Sine(classification_function=1, seed=s),
    ),
    "stagger": (
        lambda s: synth.STAGGER(classification_function=0, seed=s),
        lambda s: synth.STAGGER(classification_function=2, seed=s),
    ),
}


def synthetic(
    name: str,
    n_events: int | None,
    *,
    seed: int | None = 42,
    drift_at: int | None = None,
    drift_width: int = 1,
    start_ts: float = START_TS,
    interval_s: float = 0.01,
    id_prefix: str = "e-",
) -> Iterator[Event]:
    """Events from a river synthetic generator, optionally with a concept drift.

    Parameters
    ----------
    name
        ``"sea"``, ``"agrawal"``, ``"hyperplane"``, ``"sine"`` or ``"stagger"``.
    n_events
        How many events to yield; ``None`` for an endless stream.
    seed
        Random seed: the same seed gives identical events.
    drift_at
        Event index where the concept changes (river's ``ConceptDriftStream`` with
        ``position=drift_at``); ``None`` for no drift. Event ``i`` comes from the new
        concept with probability ``1 / (1 + exp(-4 * (i + 1 - drift_at) / drift_width))``:
        with width 1, events up to ``drift_at - 2`` are the old concept, event
        ``drift_at - 1`` is a coin flip and from ``drift_at`` on 98% and more are new.
    drift_width
        Width of the transition in events (1 = abrupt).
    start_ts, interval_s
        Event ``i`` has ``ts = start_ts + i * interval_s``.
    id_prefix
        Event ``i`` has id ``f"{id_prefix}{i}"``.

    Raises
    ------
    SourceError
        For an unknown name or a parameter outside its accepted values (checked at once,
        not when the first event is drawn).

    Examples
    --------
    >>> events = list(synthetic("sea", 3, seed=1))
    >>> len(events)
    3
    >>> events[0].id, sorted(events[0].features), events[0].label
    ('e-0', ['0', '1', '2'], 1)
    """
    if name not in _CONCEPTS:
        raise _unknown("synthetic source", name, _CONCEPTS)
    _check_int("n_events", n_events, 1, allow_none=True)
    if drift_at is not None:
        last = None if n_events is None else n_events - 1
        _check_int("drift_at", drift_at, 1, last, why=f"(inside the {n_events} events)" if n_events else "")
    _check_int("drift_width", drift_width, 1)
    before, after = _CONCEPTS[name]
    stream = before(seed)
    if drift_at is not None:
        # The new concept gets its own seed so its features do not replay the first ones.
        after_seed = None if seed is None else seed + 1
        stream = _DriftStream(
            stream=stream, drift_stream=after(after_seed), position=drift_at, width=drift_width, seed=seed
        )
    return _events(stream, n_events, start_ts, interval_s, id_prefix)


# ----------------------------------------------------------------------------- datasets


def _river_rows(cls_name: str) -> list[tuple[dict, Any]]:
    from river import datasets

    return list(getattr(datasets, cls_name)())


def _sklearn_rows(loader_name: str) -> list[tuple[dict, Any]]:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader_name)()
    names = [str(n) for n in bunch.feature_names]
    return [(dict(zip(names, row.tolist())), int(y)) for row, y in zip(bunch.data, bunch.target)]


_DATASETS: dict[str, Callable[[], list[tuple[dict, Any]]]] = {
    "phishing": functools.partial(_river_rows, "Phishing"),  # 1250 events, labels 0/1
    "bananas": functools.partial(_river_rows, "Bananas"),  # 5300 events, labels 0/1
    "breast_cancer": functools.partial(_sklearn_rows, "load_breast_cancer"),  # 569 events, 0/1
    "iris": functools.partial(_sklearn_rows, "load_iris"),  # 150 events, labels 0/1/2
}


def dataset(
    name: str,
    n_events: int | None = None,
    *,
    shuffle_seed: int | None = None,
    start_ts: float = START_TS,
    interval_s: float = 0.01,
    id_prefix: str = "e-",
) -> Iterator[Event]:
    """Events from a dataset shipped inside river or scikit-learn (no download).

    Parameters
    ----------
    name
        ``"phishing"`` (1250 events), ``"bananas"`` (5300), ``"breast_cancer"`` (569) or
        ``"iris"`` (150).
    n_events
        How many events to yield, at most the size of the dataset; ``None`` for all.
    shuffle_seed
        ``None`` keeps the shipped order; an integer shuffles it deterministically.
    start_ts, interval_s, id_prefix
        As in :func:`synthetic`.

    Raises
    ------
    SourceError
        For an unknown name or an ``n_events`` the dataset cannot give.

    Examples
    --------
    >>> events = list(dataset("iris"))
    >>> len(events), sorted({e.label for e in events})
    (150, [0, 1, 2])
    """
    if name not in _DATASETS:
        raise _unknown("dataset", name, _DATASETS)
    rows = _DATASETS[name]()
    _check_int("n_events", n_events, 1, len(rows), allow_none=True, why=f"(the size of {name!r})")
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(rows)
    return _events(rows, n_events, start_ts, interval_s, id_prefix)


# ----------------------------------------------------------------------------- your own data


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
        stamps = [None if _py(t) is None else float(t) for t in df[ts_column].tolist()]
    if id_column is None:
        ids = [f"{id_prefix}{i}" for i in range(len(df))]
    else:
        ids = [None if _py(v) is None else str(_py(v)) for v in df[id_column].tolist()]
        missing = [i for i, v in enumerate(ids) if not v]
        if missing:
            raise SourceError(f"id column {id_column!r} is empty in {len(missing)} row(s), first at row {missing[0]}")
    keys = [str(c) for c in names]
    rows = zip(*columns) if columns else itertools.repeat(())
    return (
        Event(event_id, {k: _py(v) for k, v in zip(keys, values)}, _label(label), ts)
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


# ----------------------------------------------------------------------------- pacing


def rate_limited(events: Iterable[Event], rate: float | None) -> Iterator[Event]:
    """Yield ``events`` at ``rate`` events per second.

    Event ``i`` is released no earlier than ``i / rate`` seconds after the first one (an
    absolute schedule on :func:`time.perf_counter`, so the rate does not drift); the
    generator sleeps only when it is ahead of that schedule.

    Parameters
    ----------
    events
        Any iterable of events.
    rate
        Events per second, > 0; ``None`` for no pacing.

    Raises
    ------
    SourceError
        When ``rate`` is not a positive number or None.

    Examples
    --------
    >>> events = list(rate_limited(synthetic("sea", 5), rate=1000))
    >>> len(events)
    5
    """
    if rate is None:
        return iter(events)
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)) or not rate > 0:
        raise SourceError(f"rate must be a positive number of events per second or None, got {rate!r}")
    return _paced(events, float(rate))


def _paced(events: Iterable[Event], rate: float) -> Iterator[Event]:
    start = None
    for i, event in enumerate(events):
        now = time.perf_counter()
        if start is None:
            start = now
        elif (delay := start + i / rate - now) > 0:
            time.sleep(delay)
        yield event


# ----------------------------------------------------------------------------- entry point


SOURCES: dict[str, Callable[..., Iterator[Event]]] = {
    **{name: functools.partial(synthetic, name) for name in _CONCEPTS},
    **{name: functools.partial(dataset, name) for name in _DATASETS},
}
"""Every source name: ``SOURCES[name](n_events, **options)`` gives its events."""


def source_names() -> list[str]:
    """The names :func:`make_source` accepts, sorted.

    Examples
    --------
    >>> len(source_names())
    9
    """
    return sorted(SOURCES)


def make_source(
    name: str,
    n_events: int | None,
    *,
    seed: int | None = 42,
    drift_at: int | None = None,
    rate: float | None = None,
    **kwargs: Any,
) -> Iterator[Event]:
    """The events of the source called ``name``, paced to ``rate`` events per second.

    Parameters
    ----------
    name
        One of :func:`source_names`.
    n_events
        How many events; ``None`` for endless (synthetic) or the whole dataset.
    seed
        Seed of synthetic sources; datasets keep their shipped order unless given
        ``shuffle_seed``.
    drift_at
        Event index of a concept drift (synthetic sources only).
    rate
        Events per second; ``None`` for as fast as they are consumed.
    **kwargs
        Passed on to :func:`synthetic` or :func:`dataset` (``drift_width``, ``start_ts``,
        ``interval_s``, ``id_prefix``, ``shuffle_seed``).

    Raises
    ------
    SourceError
        For an unknown name (the message lists the known ones) or a bad parameter.

    Examples
    --------
    >>> events = list(make_source("agrawal", 4, seed=3))
    >>> [e.id for e in events]
    ['e-0', 'e-1', 'e-2', 'e-3']
    """
    if name not in SOURCES:
        raise _unknown("source", name, SOURCES)
    if name in _CONCEPTS:
        events = synthetic(name, n_events, seed=seed, drift_at=drift_at, **kwargs)
    elif drift_at is not None:
        raise SourceError(
            f"drift_at only applies to synthetic sources ({', '.join(sorted(_CONCEPTS))}); "
            f"{name!r} is a dataset"
        )
    else:
        events = dataset(name, n_events, **kwargs)
    return rate_limited(events, rate)

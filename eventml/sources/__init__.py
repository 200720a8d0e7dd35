"""Seeded event sources: synthetic streams, shipped datasets, data frames and CSV files.

Every source yields :class:`eventml.events.Event` objects whose features and labels are
plain Python values (numpy scalars converted, NaN turned into ``None``, boolean labels
turned into ``0``/``1``), ready for :func:`eventml.events.encode_event`.

* :func:`synthetic` -- endless generators from :mod:`river.datasets.synth` (``sea``,
  ``agrawal``, ``hyperplane``, ``sine``, ``stagger``), optionally with a concept drift at a
  chosen event. The same seed always gives the same events. (:mod:`eventml.sources.generators`)
* :func:`dataset` -- small datasets that ship inside river or scikit-learn (``phishing``,
  ``bananas``, ``breast_cancer``, ``iris``), so no download is ever needed.
  (:mod:`eventml.sources.datasets`)
* :func:`transactions` -- card payments keyed by user, with fraud that shows only in windowed
  features (bursts, unusual amounts for the user). (:mod:`eventml.sources.transactions`)
* :func:`from_dataframe` and :func:`from_csv` -- one event per row of your own data.
  (:mod:`eventml.sources.frames`)
* :func:`rate_limited` -- paces any source to a number of events per second.
  (:mod:`eventml.sources.pacing`)
* :func:`make_source` -- the single entry point used by the command line: a name from
  :data:`SOURCES`, a number of events, a seed, a drift position and a rate.

Examples
--------
>>> from eventml.sources import make_source, source_names
>>> source_names()
['agrawal', 'bananas', 'breast_cancer', 'hyperplane', 'iris', 'phishing', 'sea', 'sine', 'stagger', 'transactions']
>>> events = list(make_source("sea", 1000, seed=7, drift_at=500))
>>> len(events), events[0].id, events[-1].id
(1000, 'e-0', 'e-999')
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from eventml.errors import SourceError
from eventml.events import Event
from eventml.sources.convert import START_TS
from eventml.sources.datasets import DATASETS, dataset
from eventml.sources.frames import from_csv, from_dataframe
from eventml.sources.generators import CONCEPTS, synthetic
from eventml.sources.pacing import rate_limited
from eventml.sources.transactions import transactions
from eventml.validation import one_of

__all__ = [
    "SOURCES",
    "START_TS",
    "synthetic",
    "dataset",
    "from_dataframe",
    "from_csv",
    "transactions",
    "rate_limited",
    "make_source",
    "source_names",
]


SOURCES: dict[str, Callable[..., Iterator[Event]]] = {
    **{name: functools.partial(synthetic, name) for name in CONCEPTS},
    **{name: functools.partial(dataset, name) for name in DATASETS},
    "transactions": transactions,
}
"""Every source name: ``SOURCES[name](n_events, **options)`` gives its events."""


def source_names() -> list[str]:
    """The names :func:`make_source` accepts, sorted.

    Examples
    --------
    >>> len(source_names())
    10
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
        Seed of synthetic sources and ``transactions``; datasets keep their shipped order unless given
        ``shuffle_seed``.
    drift_at
        Event index of a concept drift (the synthetic sources of :func:`synthetic` only).
    rate
        Events per second; ``None`` for as fast as they are consumed.
    **kwargs
        Passed on to :func:`synthetic`, :func:`dataset` or :func:`transactions` (``drift_width``,
        ``start_ts``, ``interval_s``, ``id_prefix``, ``shuffle_seed``, ``n_users``...).

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
    one_of("source", name, SOURCES, error=SourceError)
    if name in CONCEPTS:
        events = synthetic(name, n_events, seed=seed, drift_at=drift_at, **kwargs)
    elif drift_at is not None:
        raise SourceError(
            f"drift_at only applies to synthetic sources ({', '.join(sorted(CONCEPTS))}); "
            f"{name!r} is not one"
        )
    elif name == "transactions":
        events = transactions(n_events, seed=seed, **kwargs)
    else:
        events = dataset(name, n_events, **kwargs)
    return rate_limited(events, rate)

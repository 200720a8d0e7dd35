"""Small datasets that ship inside river or scikit-learn, as events: no download is ever needed.

Examples
--------
>>> print(sorted(DATASETS))
['bananas', 'breast_cancer', 'iris', 'phishing']
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from typing import Any

from eventml.errors import SourceError
from eventml.events import Event
from eventml.sources.convert import START_TS, events_from_pairs
from eventml.validation import int_in_range, one_of

__all__ = ["DATASETS", "dataset"]


def _river_rows(cls_name: str) -> list[tuple[dict, Any]]:
    from river import datasets

    return list(getattr(datasets, cls_name)())


def _sklearn_rows(loader_name: str) -> list[tuple[dict, Any]]:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader_name)()
    names = [str(n) for n in bunch.feature_names]
    return [(dict(zip(names, row.tolist())), int(y)) for row, y in zip(bunch.data, bunch.target)]


DATASETS: dict[str, Callable[[], list[tuple[dict, Any]]]] = {
    "phishing": functools.partial(_river_rows, "Phishing"),  # 1250 events, labels 0/1
    "bananas": functools.partial(_river_rows, "Bananas"),  # 5300 events, labels 0/1
    "breast_cancer": functools.partial(_sklearn_rows, "load_breast_cancer"),  # 569 events, 0/1
    "iris": functools.partial(_sklearn_rows, "load_iris"),  # 150 events, labels 0/1/2
}
"""Dataset name -> function giving its ``(features, label)`` rows in the shipped order."""


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
        As in :func:`~eventml.sources.synthetic`.

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
    one_of("dataset", name, DATASETS, error=SourceError)
    rows = DATASETS[name]()
    int_in_range("n_events", n_events, 1, len(rows), allow_none=True, why=f"(the size of {name!r})",
                 error=SourceError)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(rows)
    return events_from_pairs(rows, n_events, start_ts, interval_s, id_prefix)

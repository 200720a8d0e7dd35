"""Synthetic streams from :mod:`river.datasets.synth`, optionally with a concept drift at a chosen event.

The same seed always gives the same events. Each generator has a concept before the drift and
one after it, chosen so that a model fitted before the drift clearly loses accuracy after it.

Examples
--------
>>> events = list(synthetic("sea", 1000, seed=7, drift_at=500))
>>> print(len(events), events[-1].id)
1000 e-999
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

from river.datasets import synth

from eventml.errors import SourceError
from eventml.events import Event
from eventml.sources.convert import START_TS, events_from_pairs
from eventml.validation import int_in_range, one_of

__all__ = ["CONCEPTS", "synthetic"]


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


CONCEPTS: dict[str, tuple[Callable[[int | None], Any], Callable[[int | None], Any]]] = {
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
"""Generator name -> (concept before the drift, concept after it); each takes a seed.

The "after" concepts were chosen so that a model fitted before the drift clearly loses
accuracy after it: SEA threshold 8 -> 9.5 (~13% of labels change), Agrawal function 0 -> 4,
a tilted hyperplane, Sine function 0 -> 1 (labels reversed), STAGGER function 0 -> 2.
"""


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
    one_of("synthetic source", name, CONCEPTS, error=SourceError)
    int_in_range("n_events", n_events, 1, allow_none=True, error=SourceError)
    if drift_at is not None:
        last = None if n_events is None else n_events - 1
        int_in_range("drift_at", drift_at, 1, last, why=f"(inside the {n_events} events)" if n_events else "",
                     error=SourceError)
    int_in_range("drift_width", drift_width, 1, error=SourceError)
    before, after = CONCEPTS[name]
    stream = before(seed)
    if drift_at is not None:
        # The new concept gets its own seed so its features do not replay the first ones.
        after_seed = None if seed is None else seed + 1
        stream = _DriftStream(
            stream=stream, drift_stream=after(after_seed), position=drift_at, width=drift_width, seed=seed
        )
    return events_from_pairs(stream, n_events, start_ts, interval_s, id_prefix)

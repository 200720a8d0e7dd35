"""Pacing: any source, released at a number of events per second.

Examples
--------
>>> import time
>>> started = time.perf_counter()
>>> events = list(rate_limited(range(11), rate=100))
>>> print(len(events), time.perf_counter() - started >= 0.1)
11 True
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from eventml.errors import SourceError
from eventml.events import Event
from eventml.validation import positive_number

__all__ = ["rate_limited"]


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
    >>> from eventml.sources import synthetic
    >>> events = list(rate_limited(synthetic("sea", 5), rate=1000))
    >>> len(events)
    5
    """
    if rate is None:
        return iter(events)
    rate = positive_number("rate", rate, allow_none=True, unit="events per second", error=SourceError)
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

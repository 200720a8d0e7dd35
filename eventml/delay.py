"""When a label is revealed: simulated delays (river's ``simulate_qa``) and a stream of labels.

Two ways for a label to arrive after its event's prediction:

- **Simulated delay** (:class:`DelayQueue`): the event carries its label, which is held back.
  The clock is the event's position in the stream (``moment=None``: event ``i`` is at time
  ``i``) or its event time (``moment="ts"``, seconds). A label is due at ``t + delay``; before
  each event at time ``t`` every label due at ``<= t`` is revealed, oldest due first, exactly
  as ``river.stream.simulate_qa`` orders them (a constant delay keeps arrival order, a random
  or computed one is sorted by due time, ties in arrival order). When the stream ends the
  labels still waiting are revealed, as river does.
- **A labels stream** (:class:`LabelFeed`): :class:`~eventml.events.Label` records joined to
  events by id and merged into the events by time: a label with ``ts = t`` is applied just
  before the first event with ``ts > t`` (so a label with the same ``ts`` as its event comes
  after that event's prediction); labels left when the events end are applied then.

Examples
--------
>>> queue = DelayQueue(delay=2, moment=None, seed=0)
>>> revealed = []
>>> for i in range(4):
...     revealed.append([item for _, item in queue.due(i)])
...     _ = queue.push(i, None, f"label-{i}")
>>> print(revealed, [item for _, item in queue.drain()])
[[], [], ['label-0'], ['label-1']] ['label-2', 'label-3']
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import random
from collections.abc import Iterable, Iterator
from typing import Any

from eventml.errors import ConfigError
from eventml.events import Label
from eventml.validation import fraction, is_int, is_number, non_negative_seconds, one_of

__all__ = ["DelayQueue", "LabelFeed", "split_labels"]

MOMENTS = (None, "ts")
"""The clocks of a delay: ``None``, the event's position in the stream; ``"ts"``, its event time."""


def check_moment(moment: Any) -> None:
    """Raise a ConfigError unless ``moment`` is one of :data:`MOMENTS`."""
    one_of("moment", moment, MOMENTS, note=" (None: the event's position in the stream; 'ts': its event time)")


def event_ts(event: Any) -> float:
    """The event's ``ts``, or a ConfigError naming the event when it has none."""
    if event.ts is None:
        raise ConfigError(f"event {event.id!r} has no ts: delays on event time (moment='ts') and labels= "
                          "need every event's ts")
    return event.ts


class DelayQueue:
    """Labels held back by a simulated delay, revealed in river's order.

    Parameters
    ----------
    delay
        ``int``: a constant delay (events with ``moment=None``, seconds with ``"ts"``);
        a ``float`` or ``datetime.timedelta``: constant seconds (``moment="ts"`` only);
        ``(low, high)``: a random delay per labelled event, one draw in stream order from
        ``random.Random(seed)``: ``randint(low, high)`` (both ends included) for
        ``moment=None``, ``uniform(low, high)`` seconds for ``"ts"``; a callable
        ``(event) -> delay`` (int events, or seconds / timedelta).
    moment
        ``None``: the clock is the event's position (0, 1, 2, ...); ``"ts"``: its ``ts``.
    seed
        Seed of the random delays.
    """

    def __init__(self, delay: Any, moment: str | None, seed: int | None):
        check_moment(moment)
        self.moment = moment
        self._sorted = False
        if callable(delay):
            self._delay = self._called(delay)
            self._sorted = True
        elif isinstance(delay, tuple):
            self._delay = self._random(delay, seed)
            self._sorted = True
        else:
            self._delay = self._constant(delay)
        self._queue: Any = [] if self._sorted else collections.deque()
        self._order = itertools.count()

    def _constant(self, delay: Any) -> Any:
        if self.moment is None:
            if not is_int(delay) or delay < 0:
                raise ConfigError(f"delay must be an int >= 0 (events later), a (low, high) tuple, a callable, "
                                  f"or seconds / a timedelta with moment='ts', got {delay!r}")
            return lambda event: delay
        d = non_negative_seconds("delay", delay)
        return lambda event: d

    def _random(self, bounds: tuple, seed: int | None) -> Any:
        ok = len(bounds) == 2 and all(map(is_int if self.moment is None else is_number, bounds))
        if not ok or not 0 <= bounds[0] <= bounds[1]:
            kind = "integers" if self.moment is None else "seconds"
            raise ConfigError(f"delay as a tuple must be (low, high) {kind} with 0 <= low <= high, got {bounds!r}")
        low, high = bounds
        rng = random.Random(seed)
        draw = rng.randint if self.moment is None else rng.uniform
        return lambda event: draw(low, high)

    def _called(self, function: Any) -> Any:
        if self.moment is None:
            def delay(event: Any) -> int:
                d = function(event)
                if not is_int(d) or d < 0:
                    raise ConfigError(f"the delay callable must return an int >= 0 for moment=None, "
                                      f"got {d!r} for event {event.id!r}")
                return d
            return delay
        return lambda event: non_negative_seconds(f"the delay for event {event.id!r}", function(event))

    def time(self, event: Any, position: int) -> float:
        """The clock at ``event``, which is the ``position``-th event (from 0) of the stream."""
        return position if self.moment is None else event_ts(event)

    def push(self, t: float, event: Any, item: Any) -> float:
        """Hold ``item`` (the stored prediction of ``event``, seen at time ``t``); returns its due time."""
        due = t + self._delay(event)
        if self._sorted:
            heapq.heappush(self._queue, (due, next(self._order), item))
        else:
            self._queue.append((due, 0, item))
        return due

    def due(self, t: float) -> Iterator[tuple[float, Any]]:
        """Pop ``(due time, item)`` for the items due at or before ``t``, in river's order."""
        queue = self._queue
        pop = (lambda: heapq.heappop(queue)) if self._sorted else queue.popleft
        while queue and queue[0][0] <= t:
            due, _, item = pop()
            yield due, item

    def drain(self) -> Iterator[tuple[float, Any]]:
        """Pop ``(due time, item)`` for every item left (the stream ended), in river's order."""
        return self.due(float("inf"))

    def __len__(self) -> int:
        return len(self._queue)


class LabelFeed:
    """Labels merged into the events by time (see the module doc).

    Parameters
    ----------
    labels
        :class:`~eventml.events.Label` records, each with a ``ts``, in any order (they are
        read at once and sorted by ``ts``, stably).

    Examples
    --------
    >>> feed = LabelFeed([Label("b", 0, ts=5.0), Label("a", 1, ts=2.0)])
    >>> [label.id for label in feed.due(2.0)], [label.id for label in feed.due(2.5)]
    ([], ['a'])
    """

    def __init__(self, labels: Iterable[Label]):
        if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
            raise ConfigError(f"labels must be an iterable of eventml.events.Label, got {labels!r}")
        read = list(labels)
        for label in read:
            if not isinstance(label, Label):
                raise ConfigError(f"labels must be eventml.events.Label records, got {label!r}")
            if label.ts is None:
                raise ConfigError(f"label for {label.id!r} has no ts: labels= needs each label's ts "
                                  "to know when it arrives")
        self._labels = sorted(read, key=lambda label: label.ts)
        self._next = 0

    def due(self, t: float) -> Iterator[Label]:
        """The labels with ``ts < t`` not given yet, oldest first."""
        labels = self._labels
        while self._next < len(labels) and labels[self._next].ts < t:
            self._next += 1
            yield labels[self._next - 1]

    def drain(self) -> Iterator[Label]:
        """The labels left when the events ended."""
        return self.due(float("inf"))


def split_labels(events: Iterable[Any], delay_s: float | tuple[float, float], *, loss: float = 0.0,
                 seed: int | None = 42) -> tuple[list[Any], list[Label]]:
    """Hold each event's label back, as in a system where the truth is known later: the events
    without their labels, and a :class:`~eventml.events.Label` for each, ``delay_s`` seconds of
    event time later.

    Parameters
    ----------
    events
        Events with labels and ``ts`` (e.g. a synthetic source).
    delay_s
        Seconds after the event's ``ts``: a number, or ``(low, high)`` for a delay drawn
        uniformly per event with ``seed``.
    loss
        Share of labels that never arrive (drawn with ``seed``), from 0 up to 1.

    Returns
    -------
    tuple
        ``(events, labels)``: the events with ``label=None`` in their order, and the labels
        sorted by arrival time, ready for two topics or for ``prequential(..., labels=...)``.

    Examples
    --------
    >>> import eventml as em
    >>> events, labels = split_labels(em.synthetic("sea", 1000, seed=1), (1.0, 5.0), loss=0.1, seed=1)
    >>> print(len(events), events[0].label, len(labels), all(l.ts >= events[0].ts + 1.0 for l in labels))
    1000 None 900 True
    """
    low, high = delay_s if isinstance(delay_s, tuple) else (delay_s, delay_s)
    low, high = non_negative_seconds("delay_s", low), non_negative_seconds("delay_s", high)
    if low > high:
        raise ConfigError(f"delay_s must be (low, high) with low <= high, got {delay_s!r}")
    fraction("loss", loss)
    rng = random.Random(seed)
    unlabelled, labels = [], []
    for event in events:
        unlabelled.append(dataclasses.replace(event, label=None))
        delay, lost = rng.uniform(low, high), rng.random() < loss
        if event.label is not None and not lost:
            labels.append(Label(event.id, event.label, event_ts(event) + delay))
    labels.sort(key=lambda label: label.ts)
    return unlabelled, labels

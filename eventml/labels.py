"""The pending-label join: predictions that wait for labels arriving later, joined by event id.

One policy and one set of counters, offline (:func:`eventml.evaluate.prequential` with
``labels=`` or ``delay=``) and live (:class:`eventml.live.LiveUpdater` with a labels topic):

- ``max_wait``: a label that arrives more than this after its prediction (in the clock's units:
  event-time seconds, or events offline with ``moment=None``) is **late**: counted, not scored
  or learned.
- ``max_pending``: at most this many predictions wait; beyond it the oldest **expire**.
  :meth:`PendingLabels.expire` also lets predictions that waited longer than ``max_wait``
  expire (the live updater calls it, to bound its memory); a label that comes for an expired
  prediction is late.

Counters (:data:`LABEL_COUNTS`): ``on_time`` (joined in time: scored and learned), ``at_end``
(revealed when a finite stream ended: scored and learned), ``late``, ``expired``, ``never``
(still waiting when a finite stream ended), ``unknown_id`` (a label for an id never predicted, or
forgotten), ``duplicate`` (a second label for an id, or a second event with an id already seen:
the first one counts).

Examples
--------
>>> pending = PendingLabels(max_wait=10.0)
>>> pending.wait("e-1", "features of e-1", t=0.0)
True
>>> pending.arrive("e-1", t=4.0), pending.arrive("e-1", t=5.0), pending.arrive("e-9", t=5.0)
('features of e-1', None, None)
>>> {k: v for k, v in pending.counts.items() if v}
{'on_time': 1, 'unknown_id': 1, 'duplicate': 1}
"""

from __future__ import annotations

import collections
from typing import Any

from eventml.validation import non_negative_seconds, positive_int

__all__ = ["LABEL_COUNTS", "PendingLabels"]

LABEL_COUNTS = ("on_time", "at_end", "late", "expired", "never", "unknown_id", "duplicate")
"""The counters of :class:`PendingLabels` (and of ``prequential``'s ``labels_<outcome>`` columns)."""

_JOINED, _EXPIRED = "joined", "expired"


class PendingLabels:
    """Predictions waiting for their labels, by event id, with the policy and counters above.

    Parameters
    ----------
    max_wait
        A label later than this after its prediction is late, in the clock's units (a number
        >= 0, or a ``datetime.timedelta`` for seconds); None: never late.
    max_pending
        At most this many predictions wait (a positive integer; None: no limit). Also bounds
        how many finished ids are remembered to tell a duplicate or late label from an unknown
        one.

    Raises
    ------
    ConfigError
        For a ``max_wait`` or ``max_pending`` outside those values.
    """

    def __init__(self, max_wait: float | None = None, max_pending: int | None = None):
        self.max_wait = non_negative_seconds("max_wait", max_wait, allow_none=True)
        self.max_pending = positive_int("max_pending", max_pending, allow_none=True)
        self.counts: dict[str, int] = dict.fromkeys(LABEL_COUNTS, 0)
        self._waiting: collections.OrderedDict[str, tuple[Any, float | None]] = collections.OrderedDict()
        self._finished: collections.OrderedDict[str, str] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._waiting)

    def _finish(self, event_id: str, how: str) -> None:
        self._finished[event_id] = how
        if self.max_pending is not None and len(self._finished) > self.max_pending:
            self._finished.popitem(last=False)

    def wait(self, event_id: str, item: Any, t: float | None) -> bool:
        """Keep ``item`` (what the label will be joined with) from time ``t``; False, and counted as
        a duplicate, if the id waits already or was finished."""
        if event_id in self._waiting or event_id in self._finished:
            self.counts["duplicate"] += 1
            return False
        self._waiting[event_id] = (item, t)
        while self.max_pending is not None and len(self._waiting) > self.max_pending:
            self._expire_oldest()
        return True

    def settle(self, event_id: str) -> None:
        """Note that ``event_id``'s label was used at once (the event carried it): a later label for
        it is a duplicate."""
        self._finish(event_id, _JOINED)

    def is_late(self, since: float | None, t: float | None) -> bool:
        """True if a label at ``t`` comes more than ``max_wait`` after a prediction at ``since``."""
        return self.max_wait is not None and since is not None and t is not None and t - since > self.max_wait

    def reveal(self, since: float | None, t: float | None, outcome: str = "on_time") -> bool:
        """Count a label revealed at ``t`` for a prediction at ``since`` (a simulated delay, which needs no
        join): True if it is to be scored and learned, False if late."""
        if self.is_late(since, t):
            self.counts["late"] += 1
            return False
        self.counts[outcome] += 1
        return True

    def arrive(self, event_id: str, t: float | None, outcome: str = "on_time") -> Any:
        """The item kept for ``event_id`` if its label, arriving at ``t``, is to be scored and learned;
        otherwise None, counted as late, duplicate or unknown_id."""
        kept = self._waiting.pop(event_id, None)
        if kept is None:
            how = self._finished.get(event_id)
            self.counts["duplicate" if how == _JOINED else "late" if how == _EXPIRED else "unknown_id"] += 1
            return None
        self._finish(event_id, _JOINED)
        item, since = kept
        return item if self.reveal(since, t, outcome) else None

    def _expire_oldest(self) -> None:
        event_id, _ = self._waiting.popitem(last=False)
        self._finish(event_id, _EXPIRED)
        self.counts["expired"] += 1

    def expire(self, now: float | None) -> None:
        """Let the predictions that have waited longer than ``max_wait`` at time ``now`` expire (oldest
        first, in the order they began to wait; one without a time stops the sweep)."""
        if self.max_wait is None or now is None:
            return
        oldest = now - self.max_wait
        while self._waiting:
            _, since = next(iter(self._waiting.values()))
            if since is None or since >= oldest:
                break
            self._expire_oldest()

    def drain(self) -> int:
        """At the end of a finite stream: count the predictions still waiting as ``never``, forget them,
        and return how many."""
        n = len(self._waiting)
        self.counts["never"] += n
        self._waiting.clear()
        return n

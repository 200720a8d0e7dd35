"""The timestamp merge of a live updater's input partitions: a fixed processing order.

The records of every input partition (events and, if any, labels) are merged by record timestamp:
at each step the partition whose next record is oldest goes first; events before labels on a tie,
then the lower partition number; within a partition, offset order. The merge moves on only once
every partition has a record buffered or has been read to its end, so over topics that are
already written the order is fixed, and a restarted updater learns in the same order as an
uninterrupted one. A partition whose next records may still come is skipped only after every poll
has come back empty for :data:`SILENT_S` seconds (:class:`Silence`): long enough that a fetch still in
flight, even on a loaded machine, is waited for (a partition held back by an open transaction upstream
does not need it: the consumer reports its end at the last stable offset).

Examples
--------
>>> from types import SimpleNamespace as Record
>>> events, labels = InputPartition("e", 0, EVENTS), InputPartition("l", 0, LABELS)
>>> merge = PartitionMerge([events, labels], high_watermark=lambda where: where.fetched)
>>> merge.fill([Record(topic=lambda t=t: t, partition=lambda: 0, offset=lambda o=o: o, error=lambda: None,
...                    timestamp=lambda ts=ts: (1, ts)) for t, o, ts in [("e", 0, 10), ("l", 0, 5), ("e", 1, 20)]])
True
>>> [(where.topic, record.offset()) for where, record in iter(lambda: merge.pick(force=False), None)]
[('l', 0), ('e', 0), ('e', 1)]

:meth:`PartitionMerge.take` hands out the same order in runs of one partition's records.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Iterable

__all__ = ["EVENTS", "LABELS", "WAIT", "SILENT_S", "InputPartition", "PartitionMerge", "Silence"]

EVENTS, LABELS = 0, 1  # ranks: on a timestamp tie an event goes before a label
#: seconds of empty polls after which a partition that may still bring an earlier record is skipped:
#: ``pick(force=True)``; a count of polls was not enough, as a poll near a transaction's deadline lasts
#: 1 ms: three of them skipped a labels partition whose fetch was in flight, and the processing order
#: (hence which predictions expired waiting for their labels) depended on the machine's load
SILENT_S = 1.0
WAIT = object()
"""What :meth:`PartitionMerge.pick` returns when a partition may still have earlier records."""


class Silence:
    """How long every poll has come back empty; :meth:`polled` says when to skip a silent partition.

    >>> silence = Silence(after_s=1.0)
    >>> [silence.polled(False, now) for now in (10.000, 10.001, 10.002)]  # three quick empty polls: wait
    [False, False, False]
    >>> silence.polled(False, 11.0), silence.polled(True, 11.1), silence.polled(False, 11.2)
    (True, False, False)
    """

    __slots__ = ("after_s", "since")

    def __init__(self, after_s: float = SILENT_S):
        self.after_s = after_s
        self.since: float | None = None  # when the polls started to come back empty

    def polled(self, got: bool, now: float) -> bool:
        """After a poll that brought records (``got``) or none at time ``now``: True if silent partitions
        should now be skipped."""
        if got:
            self.since = None
            return False
        if self.since is None:
            self.since = now
        return now - self.since >= self.after_s


class InputPartition:
    """One input partition: its records read but not processed yet, and how far it was fetched."""

    __slots__ = ("topic", "partition", "key", "rank", "buf", "fetched", "eof")

    def __init__(self, topic: str, partition: int, rank: int, fetched: int = 0):
        self.topic, self.partition, self.rank = topic, partition, rank
        self.key = f"{topic}:{partition}"  # as in the state's offsets and the snapshots' names
        self.buf: collections.deque = collections.deque()
        self.fetched = fetched  # the offset after the last record taken from the consumer
        self.eof = False  # the consumer said it reached the end (of the last stable offset)

    def __repr__(self) -> str:
        return f"InputPartition({self.key!r}, buffered={len(self.buf)}, fetched={self.fetched})"


class PartitionMerge:
    """Buffers the records of the input partitions and hands them out in merge order.

    Parameters
    ----------
    inputs
        The input partitions.
    high_watermark
        ``where -> int``: the partition's high watermark as the last fetch brought it (negative
        if unknown). A partition is read to its end when its ``fetched`` offset reaches it: the
        consumer's own end-of-partition event only comes with the next, empty, fetch.
    end_of_partition
        ``error -> bool`` for an error the consumer delivered in place of a record: True for the
        end of a partition, False for one the client recovers from by itself; it raises a fatal one.
    """

    def __init__(self, inputs: list[InputPartition], high_watermark: Callable[[InputPartition], int],
                 end_of_partition: Callable[[Any], bool] = lambda error: False):
        self.inputs = inputs
        self.high_watermark = high_watermark
        self.end_of_partition = end_of_partition
        self._by_partition = {(i.topic, i.partition): i for i in inputs}

    def fill(self, messages: Iterable[Any]) -> bool:
        """Move records from the consumer into their partitions' buffers; True if there were any.

        ``messages`` are confluent-kafka messages: records, or errors in their place (see
        ``end_of_partition``).
        """
        got = False
        by_partition = self._by_partition
        for message in messages:
            error = message.error()
            where = by_partition[message.topic(), message.partition()]
            if error is None:
                where.buf.append(message)
                where.fetched = message.offset() + 1
                where.eof = False
                got = True
            elif self.end_of_partition(error):
                where.eof = True
        return got

    def drained(self, where: InputPartition) -> bool:
        """True when every record of the partition that is there now has been fetched."""
        if where.eof:
            return True
        high = self.high_watermark(where)
        return high >= 0 and where.fetched >= high

    def caught_up(self) -> bool:
        """True when no record is buffered and every input partition is read to its end."""
        return all(not where.buf and self.drained(where) for where in self.inputs)

    def pick(self, force: bool) -> Any:
        """The next ``(partition, record)`` in merge order; None if every buffer is empty and every
        partition read to its end; :data:`WAIT` if a partition may still bring an earlier record
        (with ``force``, a partition with nothing buffered is skipped instead)."""
        inputs = self.inputs
        if len(inputs) == 1:
            where = inputs[0]
            return (where, where.buf.popleft()) if where.buf else None
        best = best_key = None
        for where in inputs:
            if where.buf:
                key = (where.buf[0].timestamp()[1], where.rank, where.partition)
                if best is None or key < best_key:
                    best, best_key = where, key
            elif not force and not self.drained(where):
                return WAIT
        return None if best is None else (best, best.buf.popleft())

    def take(self, force: bool, limit: int) -> Any:
        """The next run of at most ``limit`` records of one partition in merge order:
        ``(partition, [record, ...])``, as many :meth:`pick` calls would hand them out (the first with
        ``force``, the others without) until one picks another partition or has to wait; None or
        :data:`WAIT` as :meth:`pick`."""
        inputs = self.inputs
        if len(inputs) == 1:
            where = inputs[0]
            buf = where.buf
            if not buf:
                return None
            popleft = buf.popleft
            return where, [popleft() for _ in range(min(limit, len(buf)))]
        picked = self.pick(force)
        if picked is None or picked is WAIT:
            return picked
        where, record = picked
        run = [record]
        while len(run) < limit:
            picked = self.pick(False)
            if picked is None or picked is WAIT:
                break
            if picked[0] is not where:
                picked[0].buf.appendleft(picked[1])  # the next run's: back where it was
                break
            run.append(picked[1])
        return where, run

"""Read events back from a topic: always finite, replayable, bad records dead-lettered.

A read starts at the end (only new events), the beginning, an offset or a timestamp, and
ends after ``max_events``, after ``idle_timeout_s`` without a record, or, with
``stop_at_end=True``, when it reaches the end offsets the topic had when the read began.
Records are read in order within each partition. A record that breaks the wire format goes to
``<topic>.dlq`` (see :mod:`eventml.dlq`), is counted in :attr:`EventConsumer.stats`, and the read
goes on; :func:`read_dead_letters` reads them back.

Examples
--------
>>> from eventml.consumer import read_dataframe
>>> df = read_dataframe("sea-events")  # doctest: +SKIP
>>> len(df)  # doctest: +SKIP
1000
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from typing import Any, Callable, Iterator

import pandas as pd

from eventml.dlq import (MESSAGE, MODEL, REASON, SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC, TRUNCATED,
                         DeadLetterQueue, dlq_topic, read_headers)
from eventml.errors import ConfigError, EventFormatError
from eventml.events import Event, Label, decode_event, decode_label, decode_prediction, events_to_dataframe
from eventml.kafka import clients
from eventml.kafka.clients import TopicPartition
from eventml.kafka.settings import KafkaSettings, split_settings
from eventml.progress import progress_bar
from eventml.validation import int_in_range, positive_number
from eventml.windows import add_windows

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ConsumeStats:
    """Counts of one read: records seen, events decoded, records dead-lettered by reason.

    ``records == events + dead_lettered``; ``dead_letters_failed`` counts dead letters that
    could not be written (the read then raises :class:`~eventml.errors.DeadLetterError`).
    """

    records: int = 0
    events: int = 0
    dead_lettered: int = 0
    reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    dead_letters_failed: int = 0
    seconds: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclasses.dataclass(slots=True)
class Position:
    """Where a record came from, and its key and headers."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None = None
    headers: list | None = None


def _to_ms(timestamp: float | dt.datetime | pd.Timestamp | str) -> int:
    if isinstance(timestamp, (int, float)):
        return int(timestamp * 1000)
    return int(pd.Timestamp(timestamp).timestamp() * 1000)


class EventConsumer:
    """An iterator over the events of one topic.

    Parameters
    ----------
    topic
        The topic to read.
    from_beginning
        Start at the earliest offset of every partition (otherwise at the end: new events only).
    offset
        Start at this offset: one int for every partition, or ``{partition: offset}``.
    timestamp
        Start at the first record appended at or after this time (epoch seconds, datetime,
        pandas Timestamp or ISO string). Kafka indexes the time a record was written.
    max_events
        Stop after this many events (dead letters do not count).
    idle_timeout_s
        Stop when no record arrived for this long. ``None`` waits forever, which is only
        allowed with ``max_events`` or ``stop_at_end``.
    stop_at_end
        Stop at the end offsets the topic had when the read started (a replay).
    dead_letters
        Send bad records to ``<topic>.dlq``. If False they are still counted and skipped.
    progress
        Show a tqdm progress bar.
    decode
        Turns a record's value (and its timestamp in seconds, the default ``ts``) into what the
        consumer yields: :func:`~eventml.events.decode_event` (events), or
        :func:`~eventml.events.decode_label` for a labels topic. A record it rejects with an
        :class:`~eventml.errors.EventFormatError` is dead-lettered.
    bootstrap_servers, kafka, **config
        The connection settings (keywords such as ``security_protocol`` and ``sasl_username``, or
        ``kafka=KafkaSettings(...)``, else the ``EVENTML_*`` environment; see
        :mod:`eventml.kafka.settings`), and kafka-python consumer settings over eventml's defaults,
        e.g. ``group_id``. The dead letters are written with the same connection settings.
    """

    def __init__(self, topic: str, *, bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                 from_beginning: bool = False,
                 offset: int | dict[int, int] | None = None, timestamp: Any = None,
                 max_events: int | None = None, idle_timeout_s: float | None = 5.0, stop_at_end: bool = False,
                 dead_letters: bool = True, progress: bool = False,
                 decode: Callable[[bytes | None, float], Any] = decode_event, **config: Any):
        starts = [name for name, given in
                  (("from_beginning", from_beginning), ("offset", offset is not None),
                   ("timestamp", timestamp is not None)) if given]
        if len(starts) > 1:
            raise ConfigError(f"choose one start position, got {' and '.join(starts)}")
        if max_events is None and idle_timeout_s is None and not stop_at_end:
            raise ConfigError("a read must end: set max_events, idle_timeout_s or stop_at_end=True")
        self.topic = topic
        self.max_events = int_in_range("max_events", max_events, 0, allow_none=True)
        self.idle_timeout_s = positive_number("idle_timeout_s", idle_timeout_s, allow_none=True)
        self.stop_at_end = stop_at_end
        self.progress = progress
        self.decode = decode
        self.stats = ConsumeStats()
        self.kafka, tuning = split_settings(kafka, {"bootstrap_servers": bootstrap_servers, **config})
        self._start = (from_beginning, offset, timestamp)
        self._consumer = clients.consumer(self.kafka, **tuning)
        self._dlq = DeadLetterQueue(self.kafka) if dead_letters else None
        self._end: dict[TopicPartition, int] = {}
        self._assigned = False

    def _wait_for_partitions(self) -> list[TopicPartition]:
        deadline = time.monotonic() + (self.idle_timeout_s if self.idle_timeout_s is not None else 10.0)
        while True:
            parts = self._consumer.partitions_for_topic(self.topic)
            if parts:
                return [TopicPartition(self.topic, p) for p in sorted(parts)]
            if time.monotonic() >= deadline:
                return []
            time.sleep(0.2)

    def _assign(self) -> None:
        self._assigned = True
        tps = self._wait_for_partitions()
        if not tps:
            log.warning("topic %r does not exist (yet); read nothing", self.topic)
            return
        consumer = self._consumer
        consumer.assign(tps)
        from_beginning, offset, timestamp = self._start
        if from_beginning:
            consumer.seek_to_beginning(*tps)
        elif offset is not None:
            offsets = offset if isinstance(offset, dict) else {tp.partition: offset for tp in tps}
            for tp in tps:
                consumer.seek(tp, offsets.get(tp.partition, 0))
        elif timestamp is not None:
            found = consumer.offsets_for_times({tp: _to_ms(timestamp) for tp in tps})
            ends = consumer.end_offsets(tps)
            for tp in tps:
                consumer.seek(tp, found[tp].offset if found[tp] is not None else ends[tp])
        else:
            consumer.seek_to_end(*tps)
            for tp in tps:  # resolve "the end" now, not lazily at the first poll
                consumer.position(tp)
        if self.stop_at_end:
            self._end = {tp: end for tp, end in consumer.end_offsets(tps).items()}

    def _at_end(self) -> bool:
        return all(self._consumer.position(tp) >= end for tp, end in self._end.items())

    def _decoded_batches(self) -> Iterator[Iterator[tuple[Event, Any]]]:
        """Poll until the read ends; yield each batch's ``(event, record)`` pairs."""
        if not self._assigned:
            self._assign()
        if not self._consumer.assignment():
            return
        stats = self.stats
        started = time.perf_counter()
        last_record = time.monotonic()
        limit = total = self.max_events
        if self._end:  # a replay knows how many records it will read
            remaining = sum(max(0, end - self._consumer.position(tp)) for tp, end in self._end.items())
            total = remaining if limit is None else min(limit, remaining)
        with progress_bar(total=total, desc=f"consume {self.topic}", enabled=self.progress) as bar:
            try:
                while limit is None or stats.events < limit:
                    if self.stop_at_end and self._at_end():
                        break
                    max_records = None if limit is None else limit - stats.events
                    batches = self._consumer.poll(timeout_ms=200, max_records=max_records)
                    if not batches:
                        if self.idle_timeout_s is not None and time.monotonic() - last_record >= self.idle_timeout_s:
                            break
                        continue
                    last_record = time.monotonic()
                    for tp, records in batches.items():
                        if tp in self._end:  # a replay ignores what was appended after it began
                            records = [r for r in records if r.offset < self._end[tp]]
                        bar.tick(len(records))
                        yield self._decode(records)
            finally:
                stats.seconds += time.perf_counter() - started
                if self._dlq is not None:
                    try:
                        self._dlq.flush()  # raises DeadLetterError if dead letters were not written
                    finally:
                        stats.dead_letters_failed = self._dlq.failed

    def _decode(self, records: list) -> Iterator[tuple[Event, Any]]:
        # a generator, not a list: holding a whole batch of events alive makes the GC work hard
        stats, decode = self.stats, self.decode
        for record in records:
            stats.records += 1
            try:
                event = decode(record.value, record.timestamp / 1000.0)
            except EventFormatError as error:
                stats.dead_lettered += 1
                stats.reasons[error.reason] = stats.reasons.get(error.reason, 0) + 1
                if self._dlq is not None:
                    self._dlq.send(record, error)
                continue
            stats.events += 1
            yield event, record

    def records(self) -> Iterator[tuple[Event, Position]]:
        """Yield ``(event, position)`` pairs; dead-letter the records that are not events."""
        for batch in self._decoded_batches():
            for event, record in batch:
                yield event, Position(record.partition, record.offset, record.timestamp, record.key, record.headers)

    def __iter__(self) -> Iterator[Event]:
        for batch in self._decoded_batches():
            for event, _ in batch:
                yield event

    def to_dataframe(self, windows: Any = None) -> pd.DataFrame:
        """Read to the end of this consumer's bounds into a DataFrame, with the features of ``windows``
        (see :func:`read_dataframe`)."""
        events, positions = [], []
        for event, position in self.records():
            events.append(event)
            positions.append(position)
        if windows:  # in the live updater's order: by record time, then partition (offsets in a partition)
            order = sorted(range(len(events)), key=lambda i: (positions[i].timestamp_ms, positions[i].partition))
            for i, event in zip(order, add_windows([events[i] for i in order], windows)):
                events[i] = event
        df = events_to_dataframe(events)
        df.insert(1, "partition", [p.partition for p in positions])
        df.insert(2, "offset", [p.offset for p in positions])
        return df

    def close(self) -> None:
        if self._dlq is not None:
            self._dlq.close()
        self._consumer.close()

    def __enter__(self) -> "EventConsumer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def consume(topic: str, **kwargs: Any) -> Iterator[Event]:
    """Iterate over the events of a topic; the consumer closes when the iteration ends.

    Takes the parameters of :class:`EventConsumer`.
    """
    with EventConsumer(topic, **kwargs) as consumer:
        yield from consumer


def replay(topic: str, *, stop_at_end: bool = True, **kwargs: Any) -> EventConsumer:
    """A consumer that replays a topic as it is now: from the beginning (unless ``offset`` or
    ``timestamp`` is given) to the end offsets it has when the read starts."""
    if kwargs.get("offset") is None and kwargs.get("timestamp") is None:
        kwargs.setdefault("from_beginning", True)
    return EventConsumer(topic, stop_at_end=stop_at_end, **kwargs)


def read_events(topic: str, **kwargs: Any) -> list[Event]:
    """Read a topic (by default all of it, as it is now) into a list; see :func:`replay`."""
    with replay(topic, **kwargs) as consumer:
        return list(consumer)


def read_labels(topic: str, **kwargs: Any) -> list[Label]:
    """Read a labels topic (by default all of it, as it is now) into a list of
    :class:`~eventml.events.Label`, e.g. for ``prequential(..., labels=...)``; records that are
    not labels go to ``<topic>.dlq``. Takes the parameters of :func:`replay`."""
    with replay(topic, decode=decode_label, **kwargs) as consumer:
        return list(consumer)


def read_dataframe(topic: str, *, windows: Any = None, **kwargs: Any) -> pd.DataFrame:
    """Read a topic (by default all of it, as it is now) into a DataFrame; see :func:`replay`.

    Columns: ``id``, ``partition``, ``offset``, ``ts``, ``label``, then one column per feature, then
    one per feature of ``windows`` (:class:`eventml.windows.Window` objects): each event's windowed
    features from the events before it, computed in the order a live updater reads the partitions (by
    record time, then partition), with the code :func:`eventml.prequential` and the live updater use.
    """
    with replay(topic, **kwargs) as consumer:
        return consumer.to_dataframe(windows)


def read_predictions(topic: str, *, challengers: bool = False, bootstrap_servers: str | None = None,
                     kafka: KafkaSettings | None = None, idle_timeout_s: float = 2.0, **config: Any) -> pd.DataFrame:
    """The committed predictions of a topic as a DataFrame, read with ``read_committed``.

    Columns: ``id``, ``prediction``, ``proba`` (a dict), ``model``, ``model_version``,
    ``event_ts``, ``ts``, ``partition``, ``offset``. Reads from the beginning to the end the
    topic has when the read starts; a record that is not a prediction goes to ``<topic>.dlq``.
    With ``challengers=True``, a live updater's challengers' predictions too (from
    ``<topic>.challengers``, see :mod:`eventml.promotion`), after the champion's, and a ``champion``
    column that says which rows are the champion's (the answers).
    """
    from eventml.promotion import challengers_topic

    frames = []
    for name in [topic, challengers_topic(topic)] if challengers else [topic]:
        rows = []
        with replay(name, bootstrap_servers=bootstrap_servers, kafka=kafka, idle_timeout_s=idle_timeout_s, **config,
                    decode=lambda raw, ts: decode_prediction(raw), isolation_level="read_committed") as consumer:
            for p, where in consumer.records():
                rows.append([p.id, p.prediction, p.proba, p.model, p.model_version, p.event_ts, p.ts,
                             where.partition, where.offset])
        columns = ["id", "prediction", "proba", "model", "model_version", "event_ts", "ts", "partition", "offset"]
        frames.append(pd.DataFrame(rows, columns=columns))
    if not challengers:
        return frames[0]
    frames[0]["champion"], frames[1]["champion"] = True, False
    return pd.concat(frames, ignore_index=True)


def read_promotions(predictions_topic: str, *, bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                    idle_timeout_s: float = 2.0, **config: Any) -> pd.DataFrame:
    """A live updater's committed promotions (``<predictions_topic>.champions``), one row each, as
    :func:`eventml.promotion.promotion_table` gives them, with the position of the record that decided
    (``id``, ``topic``, ``partition``, ``offset``) and when (``ts``)."""
    import orjson

    from eventml.promotion import champions_topic, promotion_table

    with replay(champions_topic(predictions_topic), bootstrap_servers=bootstrap_servers, kafka=kafka,
                idle_timeout_s=idle_timeout_s, decode=lambda raw, ts: orjson.loads(raw), dead_letters=False,
                isolation_level="read_committed", **config) as consumer:
        return promotion_table([record for record, _ in consumer.records()])


def _int(text: str | None) -> int:
    """A header's number, or -1 (a record another client wrote to the DLQ may lack it)."""
    return int(text) if text is not None and text.lstrip("-").isdigit() else -1


def read_dead_letters(topic: str, *, bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                      idle_timeout_s: float = 2.0, **config: Any) -> pd.DataFrame:
    """The dead letters of ``topic`` as a DataFrame: key, value, reason, message, source position.

    Reads ``<topic>.dlq`` from the beginning to its current end (nothing if it does not exist),
    with ``read_committed``: the dead letters of a live updater's aborted transactions are not
    there. Columns: ``key``, ``value``, ``reason``, ``message``, ``source_topic``,
    ``source_partition``, ``source_offset``, ``truncated`` (the original value's length for a
    shortened copy, else None) and ``model`` (the model a live updater's dead letter is of: one that raised
    on the record, reason ``model_error``, or whose prediction was too large; else None). Takes the
    connection settings as :func:`eventml.consume` does.
    """
    columns = ["key", "value", "reason", "message", "source_topic", "source_partition", "source_offset", "truncated",
               "model"]
    rows = []
    with replay(dlq_topic(topic), bootstrap_servers=bootstrap_servers, kafka=kafka, idle_timeout_s=idle_timeout_s,
                decode=lambda raw, ts: raw, dead_letters=False, isolation_level="read_committed", **config) as consumer:
        for value, where in consumer.records():
            headers = read_headers(where.headers)
            rows.append([where.key, value, headers.get(REASON), headers.get(MESSAGE), headers.get(SOURCE_TOPIC),
                         _int(headers.get(SOURCE_PARTITION)), _int(headers.get(SOURCE_OFFSET)),
                         _int(headers[TRUNCATED]) if TRUNCATED in headers else None, headers.get(MODEL)])
    return pd.DataFrame(rows, columns=columns)

"""The dead-letter topic: where a record that breaks the wire format goes, unchanged.

A bad record is written to ``<topic>.dlq`` with its key and value exactly as they were, and
with headers that say why and where it came from:

=========================  ==============================================
header                      value (UTF-8)
=========================  ==============================================
``eventml.error.reason``    short code, e.g. ``not_json`` or ``missing_id``
``eventml.error.message``   a sentence for a person
``eventml.source.topic``    the topic it was read from
``eventml.source.partition``  its partition
``eventml.source.offset``   its offset
=========================  ==============================================

It is counted, never dropped, and never stops a read.
"""

from __future__ import annotations

import collections
from typing import Any

from kafka import KafkaProducer

from eventml.config import producer_config
from eventml.errors import EventFormatError

REASON = "eventml.error.reason"
MESSAGE = "eventml.error.message"
SOURCE_TOPIC = "eventml.source.topic"
SOURCE_PARTITION = "eventml.source.partition"
SOURCE_OFFSET = "eventml.source.offset"


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``.

    >>> dlq_topic("events")
    'events.dlq'
    """
    return f"{topic}.dlq"


def dead_letter_headers(error: EventFormatError, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """The headers that explain a dead letter."""
    return [
        (REASON, error.reason.encode()),
        (MESSAGE, error.message.encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
    ]


def read_headers(headers: list[tuple[str, bytes]]) -> dict[str, str]:
    """Record headers as a ``{name: text}`` dict (for looking at dead letters)."""
    return {name: value.decode("utf-8", "replace") for name, value in headers or []}


class DeadLetterQueue:
    """Writes bad records to ``<topic>.dlq`` and counts them by reason.

    The producer is made on the first dead letter, so reading clean topics costs nothing.
    """

    def __init__(self, bootstrap_servers: str | None = None, **config: Any):
        self._settings = producer_config(bootstrap_servers, **{"linger_ms": 5, **config})
        self._producer: KafkaProducer | None = None
        self.counts: collections.Counter[str] = collections.Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def send(self, record: Any, error: EventFormatError) -> None:
        """Dead-letter a kafka-python ``ConsumerRecord`` that failed with ``error``."""
        if self._producer is None:
            self._producer = KafkaProducer(**self._settings)
        headers = dead_letter_headers(error, record.topic, record.partition, record.offset)
        self._producer.send(dlq_topic(record.topic), value=record.value, key=record.key, headers=headers)
        self.counts[error.reason] += 1

    def flush(self) -> None:
        if self._producer is not None:
            self._producer.flush()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush()
            self._producer.close()
            self._producer = None


def read_dead_letters(topic: str, *, bootstrap_servers: str | None = None, idle_timeout_s: float = 2.0):
    """The dead letters of ``topic`` as a DataFrame: key, value, reason, message, source position.

    Reads ``<topic>.dlq`` from the beginning to its current end (nothing if it does not exist).
    """
    import pandas as pd
    from kafka import KafkaConsumer, TopicPartition

    from eventml.config import consumer_config
    from eventml.connect import make_client

    columns = ["key", "value", "reason", "message", "source_topic", "source_partition", "source_offset"]
    consumer = make_client(KafkaConsumer, consumer_config(bootstrap_servers))
    rows = []
    try:
        parts = consumer.partitions_for_topic(dlq_topic(topic)) or set()
        tps = [TopicPartition(dlq_topic(topic), p) for p in sorted(parts)]
        if tps:
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            while any(consumer.position(tp) < end[tp] for tp in tps):
                batches = consumer.poll(timeout_ms=int(idle_timeout_s * 1000))
                if not batches:
                    break
                for records in batches.values():
                    for record in records:
                        headers = read_headers(record.headers)
                        rows.append([record.key, record.value, headers.get(REASON), headers.get(MESSAGE),
                                     headers.get(SOURCE_TOPIC), int(headers.get(SOURCE_PARTITION, -1)),
                                     int(headers.get(SOURCE_OFFSET, -1))])
    finally:
        consumer.close()
    return pd.DataFrame(rows, columns=columns)

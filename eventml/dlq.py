"""The dead-letter topic: where a record that breaks the wire format goes, unchanged.

A bad record is written to ``<topic>.dlq`` with its key and value exactly as they were, and
with headers that say why and where it came from:

=============================  ==============================================
header                          value (UTF-8)
=============================  ==============================================
``eventml.error.reason``        short code, e.g. ``not_json``, ``missing_id`` or ``model_error``
``eventml.error.message``       a sentence for a person
``eventml.source.topic``        the topic it was read from
``eventml.source.partition``    its partition
``eventml.source.offset``       its offset
``eventml.error.model``         on a live updater's dead letter of one model (``model_error``, ``prediction_too_large``): its name
``eventml.value.truncated``     only on a shortened copy: the original value's length in bytes
=============================  ==============================================

It is counted, never dropped, and never stops a read. Two records cannot be copied exactly:

- a record with neither key nor value (a keyless tombstone): kafka-python cannot write one, so
  its dead letter has an empty key (``b""``) and no value;
- a record too large to copy with its headers (the broker's size limit): the dead letter holds
  as much of the value as fits (the value less 16 KiB, else its first 64 KiB, else none) and
  the header ``eventml.value.truncated``.

A dead letter that still cannot be written is counted in :attr:`DeadLetterQueue.failed`, and
:meth:`DeadLetterQueue.flush` raises :class:`~eventml.errors.DeadLetterError` naming how many.
:func:`eventml.consumer.read_dead_letters` reads them back.
"""

from __future__ import annotations

import collections
import logging
from typing import Any

from eventml.errors import DeadLetterError, EventFormatError
from eventml.kafka import clients
from eventml.kafka.clients import ClientError, KafkaProducer, MessageSizeTooLargeError
from eventml.kafka.settings import KafkaSettings, split_settings
from eventml.kafka.topics import create_topic, dlq_topic  # dlq_topic is eventml.dlq.dlq_topic too

log = logging.getLogger(__name__)

REASON = "eventml.error.reason"
MESSAGE = "eventml.error.message"
SOURCE_TOPIC = "eventml.source.topic"
SOURCE_PARTITION = "eventml.source.partition"
SOURCE_OFFSET = "eventml.source.offset"
TRUNCATED = "eventml.value.truncated"
MODEL = "eventml.error.model"

#: the value lengths a dead letter too large for the broker is retried with, after the whole value
_SHORTER = (lambda n: n - (16 << 10), lambda n: 64 << 10, lambda n: 0)


def dead_letter_headers(error: EventFormatError, topic: str, partition: int, offset: int,
                        model: str | None = None) -> list[tuple[str, bytes]]:
    """The headers that explain a dead letter (with ``model``: the model it is a dead letter of)."""
    headers = [
        (REASON, error.reason.encode()),
        (MESSAGE, error.message.encode("utf-8", "replace")),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
    ]
    if model is not None:
        headers.append((MODEL, model.encode("utf-8", "replace")))
    return headers


def shorter_copies(value: bytes | None, headers: list[tuple[str, bytes]]):
    """``(value, headers)`` of ever shorter copies of a dead letter that is too large for the broker:
    the value less 16 KiB, its first 64 KiB, then no value, each with the header ``eventml.value.truncated``.

    >>> [(len(v or b""), dict(h)[TRUNCATED]) for v, h in shorter_copies(b"x" * 100_000, [])]
    [(83616, b'100000'), (65536, b'100000'), (0, b'100000')]
    """
    size = len(value or b"")
    marked = [*headers, (TRUNCATED, str(size).encode())]
    lengths = sorted({max(0, cut(size)) for cut in _SHORTER if cut(size) < size}, reverse=True)
    return [(value[:n] if n else None, marked) for n in lengths]


def read_headers(headers: list[tuple[str, bytes]]) -> dict[str, str]:
    """Record headers as a ``{name: text}`` dict (for looking at dead letters)."""
    return {name: value.decode("utf-8", "replace") for name, value in headers or []}


class DeadLetterQueue:
    """Writes bad records to ``<topic>.dlq`` and counts them by reason.

    The producer is made on the first dead letter, so reading clean topics costs nothing; the
    dead-letter topic is created then (one partition) if it does not exist, so dead letters are
    written on a cluster that does not create topics by itself too.

    Attributes
    ----------
    counts
        Dead letters sent, by reason.
    failed
        Dead letters that could not be written, even shortened (see :meth:`flush`).

    Parameters
    ----------
    kafka, **config
        The connection settings (a :class:`~eventml.kafka.settings.KafkaSettings`, connection
        keywords, else the ``EVENTML_*`` environment) and kafka-python producer settings.
    """

    def __init__(self, kafka: KafkaSettings | None = None, **config: Any):
        self.kafka, tuning = split_settings(kafka, config)
        # a missing topic or an unreachable broker fails a send after 10 s, not kafka-python's 60. Without
        # idempotence (acks=all stays): a broker that refuses a dead letter as too large is a fatal error of an
        # idempotent kafka-python producer, which aborts every batch in flight, while a shorter copy must follow it;
        # one request in flight keeps the dead letters in order
        self._tuning = {"linger_ms": 5, "max_block_ms": 10_000, "enable_idempotence": False,
                        "max_in_flight_requests_per_connection": 1, **tuning}
        clients.producer_config(self.kafka, **self._tuning)  # a bad setting fails now, not at the first dead letter
        self._producer: KafkaProducer | None = None
        self._topics: set[str] = set()
        self._errors: list[tuple] = []  # filled by the producer's I/O thread
        self.counts: collections.Counter[str] = collections.Counter()
        self.failed = 0
        self.first_failure: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def send(self, record: Any, error: EventFormatError) -> None:
        """Dead-letter a kafka-python ``ConsumerRecord`` that failed with ``error``."""
        headers = dead_letter_headers(error, record.topic, record.partition, record.offset)
        self._send(dlq_topic(record.topic), record.value, record.key, headers)
        self.counts[error.reason] += 1

    def _send(self, topic: str, value: bytes | None, key: bytes | None, headers: list, retry: list | None = None) -> None:
        if self._producer is None:
            self._producer = clients.producer(self.kafka, **self._tuning)
        if topic not in self._topics:
            self._ensure_topic(topic)
        if value is None and key is None:
            key = b""  # kafka-python cannot write a record with neither
        letter = (topic, value, key, headers)
        try:
            future = self._producer.send(topic, value=value, key=key, headers=headers)
        except ClientError as exc:  # e.g. a record over max_request_size, or no metadata in time
            self._on_error(exc, letter, retry)
            return
        future.add_errback(lambda exc: self._on_error(exc, letter, retry))

    def _ensure_topic(self, topic: str) -> None:
        try:
            create_topic(topic, kafka=self.kafka)
        except Exception as exc:  # e.g. not authorized: the send then fails and says so
            log.debug("could not create %s: %s", topic, exc)
        self._topics.add(topic)

    def _on_error(self, exc: BaseException, letter: tuple, retry: list | None) -> None:
        self._errors.append((exc, letter, retry))

    def flush(self) -> None:
        """Wait until every dead letter is written; retry those too large with shorter copies.

        Raises
        ------
        DeadLetterError
            If dead letters could not be written (counted in :attr:`failed`).
        """
        if self._producer is None:
            return
        failed_before = self.failed
        while True:
            self._producer.flush()
            errors, self._errors = self._errors, []
            if not errors:
                break
            for exc, (topic, value, key, headers), retry in errors:
                if isinstance(exc, MessageSizeTooLargeError) or "TooLarge" in type(exc).__name__:
                    copies = shorter_copies(value, headers) if retry is None else retry
                    if copies:
                        (short, marked), *rest = copies
                        self._send(topic, short, key, marked, rest)
                        continue
                self.failed += 1
                self.first_failure = self.first_failure or f"{topic}: {exc}"
        if self.failed > failed_before:
            raise DeadLetterError(
                f"{self.failed - failed_before} dead letter(s) could not be written ({self.first_failure}); "
                "those records were neither delivered nor dead-lettered: check that the dead-letter topic "
                "can be written, then read again")

    def close(self) -> None:
        if self._producer is not None:
            try:
                self.flush()
            finally:
                self._producer.close()
                self._producer = None

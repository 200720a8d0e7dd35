"""Where Kafka's default partitioner puts a keyed record: murmur2 of the key, modulo the partitions.

Java's producer, kafka-python's and librdkafka's ``murmur2_random`` (eventml's producers use it)
all place a record with a key in partition ``(murmur2(key) & 0x7fffffff) % partitions``, so the
partition of an event (keyed by its id) is known without asking Kafka. The prediction service of
a group of live updaters uses it to answer each request from the model of the partition the event
would land in.

Guaranteed: the partition Kafka's default partitioner gives the key, for a topic of ``partitions``
partitions. Not guaranteed: where a producer with another partitioner (librdkafka's default,
``consistent_random``, uses CRC32) or an explicit partition puts it.

Examples
--------
>>> partition_for_key(b"e-42", 4), partition_for_key(b"e-43", 4)
(3, 0)
"""

from __future__ import annotations

from kafka.partitioner.default import murmur2

from eventml.errors import ConfigError

__all__ = ["partition_for_key"]


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record with ``key`` in a topic of ``partitions``.

    Parameters
    ----------
    key
        The record's key, as bytes (an event's id encoded as UTF-8).
    partitions
        The topic's number of partitions (at least 1).

    Returns
    -------
    int
        A partition number in ``range(partitions)``.

    Raises
    ------
    ConfigError
        If ``key`` is not bytes or ``partitions`` is not a positive integer.

    Examples
    --------
    >>> [partition_for_key(f"e-{i}".encode(), 3) for i in range(6)]
    [2, 0, 1, 2, 2, 2]
    """
    if not isinstance(key, (bytes, bytearray)):
        raise ConfigError(f"key must be bytes (e.g. an event id encoded as UTF-8), got {type(key).__name__}")
    if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
        raise ConfigError(f"partitions must be a positive integer, got {partitions!r}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions

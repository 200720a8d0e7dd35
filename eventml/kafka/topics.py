"""Create, delete and describe topics; read their offsets.

Every function takes the connection keywords of :mod:`eventml.kafka.settings`
(``bootstrap_servers``, ``security_protocol``, ``sasl_username``, ...) or ``kafka=KafkaSettings(...)``,
else reads the ``EVENTML_*`` environment; other keywords are kafka-python admin (or, for
:func:`topic_offsets`, consumer) settings.

Examples
--------
>>> import eventml as em
>>> em.create_topic("clicks", partitions=3)  # doctest: +SKIP
True
>>> em.describe_topic("clicks")  # doctest: +SKIP
   partition  earliest_offset  latest_offset  records
0          0                0              0        0
...
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from eventml.kafka import clients
from eventml.kafka.settings import KafkaSettings, split_settings
from eventml.validation import positive_int

if TYPE_CHECKING:
    import pandas as pd


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``.

    >>> dlq_topic("events")
    'events.dlq'
    """
    return f"{topic}.dlq"


@contextmanager
def admin_client(settings: KafkaSettings, **tuning: Any) -> Iterator[KafkaAdminClient]:
    """A kafka-python admin client that is closed at the end of the block."""
    client = clients.admin(settings, **tuning)
    try:
        yield client
    finally:
        client.close()


def create_topic(name: str, partitions: int = 1, replication_factor: int | None = None, *,
                 bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None, exists_ok: bool = True,
                 topic_config: dict[str, str] | None = None, **config: Any) -> bool:
    """Create a topic; return True if it was created, False if it already existed.

    Parameters
    ----------
    partitions
        Number of partitions (at least 1). One partition keeps a single total order, which
        prequential evaluation on a replay relies on.
    replication_factor
        Copies of each partition; None: the broker's ``default.replication.factor`` (KIP-464),
        which is 1 on the local single broker and 3 on a :class:`~eventml.kafka.cluster.LocalCluster`.
    topic_config
        Topic-level settings such as ``{"retention.ms": "-1"}``.
    """
    positive_int("partitions", partitions)
    if replication_factor is not None:
        positive_int("replication_factor", replication_factor)
    settings, tuning = split_settings(kafka, {"bootstrap_servers": bootstrap_servers, **config})
    with admin_client(settings, **tuning) as admin:
        try:
            admin.create_topics([NewTopic(name, partitions, -1 if replication_factor is None else replication_factor,
                                          topic_configs=topic_config or {})])
        except TopicAlreadyExistsError:
            if not exists_ok:
                raise
            return False
        _wait_for_metadata(admin, name, present=True)
    return True


def delete_topic(name: str, *, bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                 missing_ok: bool = True, **config: Any) -> bool:
    """Delete a topic; return True if it existed."""
    settings, tuning = split_settings(kafka, {"bootstrap_servers": bootstrap_servers, **config})
    with admin_client(settings, **tuning) as admin:
        try:
            admin.delete_topics([name])
        except UnknownTopicOrPartitionError:
            if not missing_ok:
                raise
            return False
        _wait_for_metadata(admin, name, present=False)
    return True


def list_topics(*, bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                include_internal: bool = False, **config: Any) -> list[str]:
    """Names of the topics on the cluster, sorted."""
    settings, tuning = split_settings(kafka, {"bootstrap_servers": bootstrap_servers, **config})
    with admin_client(settings, **tuning) as admin:
        names = admin.list_topics()
    return sorted(n for n in names if include_internal or not n.startswith("__"))


def _wait_for_metadata(admin: KafkaAdminClient, name: str, present: bool, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (name in admin.list_topics()) == present:
            return
        time.sleep(0.1)


def topic_offsets(name: str, *, bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                  **config: Any) -> dict[int, tuple[int, int]]:
    """For each partition, the earliest and the next (latest) offset: ``{p: (earliest, latest)}``.

    With ``isolation_level="read_committed"`` the latest offset is the last stable one: records
    of transactions still open (or aborted) after it are not counted.
    """
    settings, tuning = split_settings(kafka, {"bootstrap_servers": bootstrap_servers, **config})
    consumer = clients.consumer(settings, **tuning)
    try:
        parts = consumer.partitions_for_topic(name)
        if not parts:
            return {}
        tps = [TopicPartition(name, p) for p in sorted(parts)]
        begin, end = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        return {tp.partition: (begin[tp], end[tp]) for tp in tps}
    finally:
        consumer.close()


def describe_topic(name: str, *, bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                   **config: Any) -> pd.DataFrame:
    """One row per partition: earliest and latest offsets and how many records it holds."""
    import pandas as pd  # not at import: the live updater's dead letters need this module, not pandas

    offsets = topic_offsets(name, bootstrap_servers=bootstrap_servers, kafka=kafka, **config)
    rows = [
        {"partition": p, "earliest_offset": lo, "latest_offset": hi, "records": hi - lo}
        for p, (lo, hi) in offsets.items()
    ]
    return pd.DataFrame(rows, columns=["partition", "earliest_offset", "latest_offset", "records"])


def recreate_topic(name: str, partitions: int = 1, *, bootstrap_servers: str | None = None,
                   kafka: KafkaSettings | None = None, **config: Any) -> None:
    """Delete a topic and its dead-letter topic if they exist, then create the topic empty.

    A notebook that starts with this counts only what its own run wrote.
    """
    settings, tuning = split_settings(kafka, {"bootstrap_servers": bootstrap_servers, **config})
    for topic in (name, dlq_topic(name)):
        delete_topic(topic, kafka=settings, **tuning)
    create_topic(name, partitions, kafka=settings, **tuning)

"""Live updaters that share a topic's partitions: one model per partition, its state kept in Kafka.

Any number of :class:`GroupUpdater` processes (a :class:`~eventml.live.LiveUpdater` with ``group=``: the
same engine, see :mod:`eventml.live.engine`) started with the same ``group`` (on one machine or
several) share the partitions of the events topic through Kafka's consumer-group protocol.
Each events partition is a *task* with its own model, as Kafka Streams gives each partition a
task: the prediction of an event comes from the model of its partition. Labels come inside the
events, or from a labels topic keyed by event id and partitioned like the events (the same
number of partitions, checked at start), so that partition ``p`` of both belong to the same task
(the group assigns the events partitions; the owner of events partition ``p`` reads labels partition
``p`` with it). A rebalance moves as few partitions as it can and revokes only those (Kafka's
cooperative protocol, :mod:`eventml.live.assignment`).

How exactly-once works here
---------------------------
Each updater has one transactional producer and one ``read_committed`` consumer in the group
(the transactional id is the updater's own; zombies are fenced by the group generation that
``send_offsets_to_transaction`` carries, KIP-447). One transaction holds, for every task that
processed records in it, the predictions and dead letters, the task's state (the model, the
pending labels, the metrics and the next input offsets) written to the *state topic* (compacted,
one partition per events partition, see :mod:`eventml.live.state_topic` and
:class:`~eventml.live.stores.TopicStore`), and the input offsets.
So a task's state and its committed offsets become visible together or not at all, and an
updater on another machine, with no shared disk, resumes a partition exactly where the last
committed transaction left it.

When partitions move (an updater joins, leaves or dies) the group rebalances: an updater that
gives partitions up commits its open transaction first; one that gets a partition reads the
task's newest state from the state topic, checks that it is the state of exactly the committed
offsets, and goes on from there. A state record is authenticated (HMAC-SHA256 with the key the
user gives in ``state_key`` or ``$EVENTML_STATE_KEY``) before anything in it is unpickled, so
someone who can write to the state topic cannot make an updater run code; a record that fails is
refused with :class:`~eventml.errors.SnapshotError`.

After a ``kill -9`` the dead updater's open transaction holds its partitions' committed offsets
until the broker aborts it (``transaction_timeout_s``, then the broker's abort check), and the
group moves its partitions once its session times out (``session_timeout_s``): the next
prediction of such a partition comes that much later. An updater that stops cleanly hands its
partitions over at once.

One global model
----------------
With ``scope="global"`` the group keeps one model over all partitions, merged by record time
as :class:`~eventml.live.LiveUpdater` does, and only one updater of the group works at a time:
the updaters subscribe to a one-partition *lease* topic (``eventml-<group>-lease``), and the one
Kafka gives that partition to reads every input partition and keeps the model; the others are
hot standbys that wait, connected, until the group gives the lease to one of them (when the
active one stops or dies), which then resumes from the state in Kafka. Its state is the task
``global`` in partition 0 of the state topic, and its consumer group is
``eventml-<group>-global``, so a group name's two scopes never share offsets or state.

Every updater announces what it was given and what it gave up to the topic
``eventml-<group>-assignments`` (inside its transactions), which :func:`read_assignments` reads
as a DataFrame: which updater owned which partition, over time.

Examples
--------
>>> updater = GroupUpdater("sea", "sea-predictions", group="sea-models", model="river_logreg",
...                        idle_timeout_s=10)  # doctest: +SKIP
>>> updater.run()  # doctest: +SKIP
>>> load_group_models("sea", group="sea-models")  # doctest: +SKIP
{0: Pipeline (StandardScaler, LogisticRegression), 1: ...}
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pandas as pd

from eventml.errors import ConfigError
from eventml.kafka import rdkafka
from eventml.kafka.rdkafka import TopicPartition
from eventml.kafka.settings import KafkaSettings
from eventml.live.assignment import GLOBAL_TASK
from eventml.live.clients import end_of_partition
from eventml.live.state_topic import RESTORE_CONSUMER_CONFIG, StateTopic
from eventml.live.updater import (SCOPES, LiveUpdater, assignments_topic_name, consumer_group_name,
                                  lease_topic_name, state_topic_name)
from eventml.validation import one_of

__all__ = ["GroupUpdater", "SCOPES", "GLOBAL_TASK", "load_group_models", "read_assignments", "consumer_group_name",
           "state_topic_name", "assignments_topic_name", "lease_topic_name"]


class GroupUpdater(LiveUpdater):
    """A member of a group of live updaters: :class:`~eventml.live.LiveUpdater` with ``group`` required.

    Takes :class:`~eventml.live.LiveUpdater`'s parameters, ``group`` first among them (without
    ``state_dir``); see there, and the module docstring for how a group works.

    Examples
    --------
    >>> GroupUpdater("sea", "sea-predictions", group="a b", state_key="x" * 32)
    Traceback (most recent call last):
    ...
    eventml.errors.ConfigError: group must be letters, digits, '.', '_' or '-', got 'a b'
    """

    def __init__(self, events_topic: str, predictions_topic: str, *, group: str, **options: Any):
        super().__init__(events_topic, predictions_topic, group=group, **options)


def _read_all(consumer: Any, partitions: list[TopicPartition], timeout_s: float) -> list:
    """Every committed record of ``partitions`` (assigned from their beginning) until their end."""
    consumer.assign(partitions)
    left = {(tp.topic, tp.partition) for tp in partitions}
    records = []
    deadline = time.monotonic() + timeout_s
    while left and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.2):
            error = message.error()
            if error is None:
                records.append(message)
            elif end_of_partition(error):
                left.discard((message.topic(), message.partition()))
    return records


def read_assignments(group: str, *, bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                     timeout_s: float = 30.0, **connection: Any) -> pd.DataFrame:
    """Which updater of a group got or gave up which partitions, when (one row per announcement).

    Columns: ``time`` (epoch seconds), ``updater``, ``event`` (``assigned`` or ``revoked``) and
    ``partitions`` (a list). An updater killed with ``kill -9`` announces nothing; the next
    ``assigned`` row of its partitions shows where they went.
    """
    settings = KafkaSettings.resolve(kafka, bootstrap_servers=bootstrap_servers, **connection)
    consumer = rdkafka.consumer(settings, {"group.id": f"eventml-{group}-assignments-reader",
                                           "isolation.level": "read_committed", "enable.auto.commit": False,
                                           "enable.partition.eof": True})
    try:
        topic = assignments_topic_name(group)
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            return pd.DataFrame(columns=["time", "updater", "event", "partitions"])
        records = _read_all(consumer, [TopicPartition(topic, p, 0) for p in meta.partitions], timeout_s)
    finally:
        consumer.close()
    rows = sorted((orjson.loads(record.value()) for record in records), key=lambda row: row["time"])
    return pd.DataFrame(rows, columns=["time", "updater", "event", "partitions"])


def load_group_models(events_topic: str, *, group: str, scope: str = "partition", state_key: str | bytes | None = None,
                      bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                      timeout_s: float = 30.0, **connection: Any) -> dict[Any, Any]:
    """The committed models of a group, authenticated first: ``{partition: learner}``, or
    ``{"global": learner}`` for a global-scope group.

    Partitions the group never committed are left out.
    """
    one_of("scope", scope, SCOPES)
    settings = KafkaSettings.resolve(kafka, bootstrap_servers=bootstrap_servers, **connection)
    store = StateTopic(state_topic_name(group), state_key)
    consumer = rdkafka.consumer(settings, {**RESTORE_CONSUMER_CONFIG, "group.id": f"eventml-{group}-state"})
    try:
        meta = consumer.list_topics(events_topic, timeout=timeout_s).topics.get(events_topic)
        if meta is None or meta.error is not None:
            raise ConfigError(f"topic {events_topic!r} does not exist")
        if scope == "global":
            snapshot = store.load(consumer, GLOBAL_TASK, 0, timeout_s)
            return {GLOBAL_TASK: snapshot.state.scorer.learner} if snapshot is not None else {}
        models = {}
        for number in sorted(meta.partitions):
            snapshot = store.load(consumer, f"{events_topic}:{number}", number, timeout_s)
            if snapshot is not None:
                models[number] = snapshot.state.scorer.learner
        return models
    finally:
        consumer.close()

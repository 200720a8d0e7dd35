"""Which tasks a live updater works on: fixed, shared by a consumer group, or held by a lease.

- :class:`FixedAssignment` (one updater): one task over every partition of the inputs, merged by
  record time; the consumer reads them all (``assign``), nobody else does.
- :class:`GroupAssignment` (a group, ``scope="partition"``): Kafka's consumer group shares the events
  partitions between the updaters; each partition is a task with its own model. The range assignor
  gives partition ``p`` of the events and of a labels topic (partitioned alike, checked at start) to the
  same updater.
- :class:`LeaseAssignment` (a group, ``scope="global"``): the updaters subscribe to a one-partition
  *lease* topic; the one that holds it runs one task over every input partition, the others wait,
  connected, as hot standbys.

A group's updaters announce what they get and give up to the topic ``eventml-<group>-assignments``,
inside their transactions (see :func:`eventml.live.group.read_assignments`). An updater that gives
partitions up commits its open transaction first; one whose partitions were *lost* (its session timed
out) aborts it, since the group has moved on without it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from eventml.kafka.rdkafka import KafkaException, TopicPartition

__all__ = ["FixedAssignment", "GroupAssignment", "LeaseAssignment", "GLOBAL_TASK"]

log = logging.getLogger("eventml.live")

GLOBAL_TASK = "global"
"""The key of the task over every partition (a global scope's state, in partition 0 of its state topic)."""


class FixedAssignment:
    """One task over every input partition, read by this updater alone."""

    fixed = True  # one task, always: polled records need no routing
    rebalancing = False
    per_partition = False
    co_partitioned = False  # a labels topic may have any number of partitions
    consumer_config: dict = {}

    def start(self, engine: Any, clients: Any) -> None:
        inputs = engine.inputs(engine.partitions)
        engine.open_task(0, GLOBAL_TASK, inputs)
        clients.assign(inputs)

    def owned(self, engine: Any) -> list[int]:
        return list(engine.partitions)

    def stop(self, engine: Any) -> None:
        pass


class _Announcing:
    """What both group assignments share: the callbacks' bookkeeping and the announcements."""

    fixed = False
    rebalancing = False  # joining, or between a revoke and the assignment that ends the rebalance
    topics: list[str]

    def __init__(self, assignments_topic: str, session_timeout_s: float, strategy: str):
        self.assignments_topic = assignments_topic
        self.rows: list[dict[str, Any]] = []  # this updater's own announcements, as made
        self.consumer_config = {"partition.assignment.strategy": strategy,
                                "session.timeout.ms": int(session_timeout_s * 1000),
                                "heartbeat.interval.ms": max(100, int(session_timeout_s * 1000 / 5))}

    def start(self, engine: Any, clients: Any) -> None:
        self.engine = engine
        self.rebalancing = self.waits_for_rebalances
        clients.partitions(self.assignments_topic)
        clients.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                   on_lost=self._on_lost)

    def announce(self, event: str, partitions: list[int]) -> None:
        """Tell the assignments topic, in a transaction that commits now (with the open one's records)."""
        engine = self.engine
        row = {"time": time.time(), "updater": engine.name, "event": event, "partitions": partitions}
        self.rows.append(row)
        engine.begin()
        engine._clients.send(self.assignments_topic, orjson.dumps(row), engine.name.encode())
        engine.commit()

    def stop(self, engine: Any) -> None:
        """At the end of a run: say this updater gives its partitions up (if it can still commit)."""
        if engine._tasks and engine._clients is not None and not engine._txn_open:
            try:
                self.announce("revoked", engine.owned)
            except Exception:
                log.debug("announcing the stop failed", exc_info=True)

    def _on_revoke(self, consumer: Any, partitions: list) -> None:
        self.rebalancing = self.waits_for_rebalances
        if self.engine._tasks:
            self.announce("revoked", self.engine.owned)  # commits the open transaction with it
        self._unassign(consumer, partitions)

    def _on_lost(self, consumer: Any, partitions: list) -> None:
        """The group moved on without this updater (its session timed out): nothing it has may commit."""
        engine = self.engine
        self.rebalancing = self.waits_for_rebalances
        log.warning("updater %s lost partitions %s", engine.name, engine.owned)
        if engine._txn_open:
            try:
                engine._clients.producer.abort_transaction(min(engine.settings.reconnect_timeout_s, 5.0))
            except KafkaException:
                log.debug("aborting after the lost partitions failed", exc_info=True)
            engine._txn_open = False
        self._unassign(consumer, partitions)

    def _unassign(self, consumer: Any, partitions: list) -> None:
        self.engine._drop_tasks()


class GroupAssignment(_Announcing):
    """One task per events partition, the partitions shared by the group's updaters (range assignor)."""

    per_partition = True
    co_partitioned = True
    # not idle while joining or between a revoke and the next assignment: a member that blocks the rebalance (e.g.
    # in a commit stuck after a broker restart) holds the group's work, and the others must not end meanwhile
    waits_for_rebalances = True

    def __init__(self, topics: list[str], assignments_topic: str, session_timeout_s: float):
        super().__init__(assignments_topic, session_timeout_s, "range")
        self.topics = topics

    def owned(self, engine: Any) -> list[int]:
        return sorted(engine._tasks)

    def _on_assign(self, consumer: Any, partitions: list) -> None:
        self.rebalancing = False
        engine = self.engine
        for number in sorted({tp.partition for tp in partitions}):
            inputs = engine.inputs([number])
            engine.open_task(number, inputs[0].key, inputs)
        consumer.assign([TopicPartition(where.topic, where.partition, where.fetched)
                         for task in engine._tasks.values() for where in task.inputs])
        self.announce("assigned", self.owned(engine))


class LeaseAssignment(_Announcing):
    """One task over every input partition, kept by the holder of the lease topic's one partition
    (cooperative-sticky: the lease stays with its holder when a standby joins)."""

    per_partition = False
    co_partitioned = False
    waits_for_rebalances = False  # a standby may end on idle

    def __init__(self, lease_topic: str, assignments_topic: str, session_timeout_s: float):
        super().__init__(assignments_topic, session_timeout_s, "cooperative-sticky")
        self.lease_topic = lease_topic
        self.topics = [lease_topic]

    def start(self, engine: Any, clients: Any) -> None:
        clients.partitions(self.lease_topic)
        super().start(engine, clients)

    def owned(self, engine: Any) -> list[int]:
        return list(engine.partitions)

    def _on_assign(self, consumer: Any, partitions: list) -> None:
        if not partitions:
            return  # a standby
        engine = self.engine
        # the lease is this updater's: it reads every input partition itself (the group only knows the lease
        # topic, and the offsets it commits are checked against this member's generation)
        task = engine.open_task(0, GLOBAL_TASK, engine.inputs(engine.partitions))
        consumer.incremental_assign(partitions + [TopicPartition(where.topic, where.partition, where.fetched)
                                                  for where in task.inputs])
        self.announce("assigned", self.owned(engine))

    def _unassign(self, consumer: Any, partitions: list) -> None:
        consumer.incremental_unassign(partitions + [TopicPartition(topic, number)
                                                    for topic, number in self.engine._owner])
        super()._unassign(consumer, partitions)

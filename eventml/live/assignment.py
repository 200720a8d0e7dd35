"""Which tasks a live updater works on: fixed, shared by a consumer group, or held by a lease.

- :class:`FixedAssignment` (one updater): one task over every partition of the inputs, merged by
  record time; the consumer reads them all (``assign``), nobody else does.
- :class:`GroupAssignment` (a group, ``scope="partition"``): Kafka's consumer group shares the events
  partitions between the updaters; each partition is a task with its own model, reading partition ``p``
  of the events and of a labels topic (partitioned alike, checked at start). A rebalance moves as few
  partitions as it can and revokes only those (the cooperative protocol).
- :class:`LeaseAssignment` (a group, ``scope="global"``): the updaters subscribe to a one-partition
  *lease* topic; the one that holds it runs one task over every input partition, the others wait,
  connected, as hot standbys.

A group's updaters announce what they get and give up to the topic ``eventml-<group>-assignments``,
inside their transactions (see :func:`eventml.live.group.read_assignments`). An updater that gives
partitions up commits its open transaction first (so their next owner starts where it ended) and keeps
the others; one whose partitions were *lost* (its session timed out) aborts it, since the group has
moved on without it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from eventml.kafka.rdkafka import TopicPartition
from eventml.live.clients import CLIENT_ERRORS
from eventml.live.commit import stale_generation

__all__ = ["FixedAssignment", "GroupAssignment", "LeaseAssignment", "GLOBAL_TASK"]

log = logging.getLogger("eventml.live")

GLOBAL_TASK = "global"
"""The key of the task over every partition (a global scope's state, in partition 0 of its state topic)."""
GLOBAL_NUMBER = 0  # its number


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

    def rewind(self, engine: Any, error: BaseException) -> bool:
        """A group's error: never this updater's (it has no group to move on)."""
        return False


class _Announcing:
    """What both group assignments share: the callbacks' bookkeeping and the announcements.

    Both use Kafka's cooperative rebalance protocol (KIP-429, assignor ``cooperative-sticky``): a member gives
    up only the partitions that move, and keeps working on the others meanwhile.
    """

    fixed = False
    rebalancing = False  # joining, or between a revoke and the assignment that ends the rebalance
    stopped = False  # the run ended: closing the consumer revokes what it holds
    unsent: dict[str, Any] | None = None  # an announcement whose transaction has not committed
    failed: BaseException | None = None  # what a rebalance callback raised, not raised yet
    called_back = False  # a rebalance callback ran in the last poll (see LiveClients.wake_fetchers)
    topics: list[str]

    def __init__(self, assignments_topic: str, session_timeout_s: float):
        self.assignments_topic = assignments_topic
        self.session_timeout_s = session_timeout_s
        self.rows: list[dict[str, Any]] = []  # this updater's own announcements, as made
        self.consumer_config = {"partition.assignment.strategy": "cooperative-sticky",
                                "session.timeout.ms": int(session_timeout_s * 1000),
                                "heartbeat.interval.ms": max(100, int(session_timeout_s * 1000 / 5))}

    def start(self, engine: Any, clients: Any) -> None:
        self.engine = engine
        self.rebalancing = self.waits_for_rebalances
        self.stopped = False
        self.unsent = None
        clients.partitions(self.assignments_topic)
        self.failed = None
        clients.consumer.subscribe(self.topics, on_assign=self._guarded(self._on_assign),
                                   on_revoke=self._guarded(self._on_revoke), on_lost=self._guarded(self._on_lost))

    def _guarded(self, callback: Any) -> Any:
        """``callback`` keeping what it raises in :attr:`failed`, for the engine to raise once the poll returned
        (:meth:`Engine._route`): confluent-kafka re-raises an exception of a rebalance callback from the poll as a
        ``KafkaError`` that no ``except`` clause can catch (seen: a joiner ended with a traceback after a broker
        stopped, on "Failed to get watermark offsets: Broker: Not leader for partition")."""
        def guarded(consumer: Any, partitions: list) -> None:
            if self.stopped:  # the run ended: closing the consumer revokes what it holds, the tasks stay
                return
            self.called_back = True
            try:
                callback(consumer, partitions)
            except BaseException as exc:
                self.failed = self.failed or exc
        return guarded

    def announce(self, event: str, partitions: list[int]) -> None:
        """Tell the assignments topic, in a transaction that commits now (with the open one's records)."""
        row = {"time": time.time(), "updater": self.engine.name, "event": event, "partitions": partitions}
        self.rows.append(row)
        self._publish(row)

    def _publish(self, row: dict[str, Any]) -> None:
        engine = self.engine
        self.unsent = row  # until its transaction commits: a refused one is published again (see rewind)
        engine.begin()
        engine._clients.send(self.assignments_topic, orjson.dumps(row), engine.name.encode())
        engine.commit()
        self.unsent = None

    def stop(self, engine: Any) -> None:
        """At the end of a run: say this updater gives its partitions up (if it can still commit)."""
        if engine._tasks and engine._clients is not None and not engine._txn_open and not self.stopped:
            try:
                self.announce("revoked", engine.owned)
            except Exception:
                log.debug("announcing the stop failed", exc_info=True)
        # closing the consumer then revokes its partitions: the run is over, its tasks stay for the figures
        # (confluent-kafka unassigns them in librdkafka when a callback does not)
        self.stopped = True

    def _on_revoke(self, consumer: Any, partitions: list) -> None:
        """Partitions move to another member: commit the open transaction (every task's records in it, so
        the new owner starts from them), then give up only the tasks of those partitions."""
        self.rebalancing = self.waits_for_rebalances
        numbers = self.given_up(partitions)
        try:
            if numbers:
                self.announce("revoked", numbers)  # commits the open transaction with it
        finally:  # also when that commit failed: they are not this updater's any more
            self._unassign(consumer, partitions, numbers)

    def _on_lost(self, consumer: Any, partitions: list) -> None:
        """The group moved on without this updater (its session timed out): nothing it has may commit."""
        engine = self.engine
        self.rebalancing = self.waits_for_rebalances
        numbers = self.given_up(partitions)
        log.warning("updater %s lost partitions %s", engine.name, numbers)
        if engine._txn_open:
            engine.abort()
            # the tasks it keeps are ahead of what they committed: they resume from the committed state
            numbers = numbers + [task.number for task in engine._tasks.values() if task.dirty
                                 and task.number not in numbers]
        self._unassign(consumer, partitions, numbers)
        self._reopen(consumer)

    def given_up(self, partitions: list) -> list[int]:
        """The task numbers that ``partitions`` (given up by the group) end."""
        raise NotImplementedError

    def rewind(self, engine: Any, error: BaseException) -> bool:
        """A transaction failed by an abortable error (most often a commit refused because the group's
        generation changed meanwhile: the broker ended a rebalance before this member heard of it): abort it,
        and resume only the tasks that were in it from their committed state, with the records they took since
        given back to them; the clients, and so this member's place in the group (a lease holder's lease) and what
        the consumer fetched, and the other tasks go on. True: done; False if the abort failed."""
        dirty, refused = [task for task in engine._tasks.values() if task.dirty], stale_generation(error)
        if refused:
            if not engine.abort(error):
                return False
        else:  # e.g. OUT_OF_ORDER_SEQUENCE_NUMBER: a new producer (the old one's sequence numbers are out of step)
            engine.forget_transaction()  # the new producer aborts it
            try:
                engine._clients.renew_producer(engine._clients.setup_timeout_s)
            except CLIENT_ERRORS:
                return False
        log.info("updater %s: the transaction failed (%s); partitions %s resume from their committed state",
                 engine.name, error, [task.number for task in dirty])
        # neither assigned again (outside a rebalance callback that could take back partitions the rebalance under
        # way gives to another member) nor seeked (the consumer's next fetch would take up to a second)
        for old in dirty:
            old.give_back()
            engine.open_task(old.number, old.key, old.inputs, keep_position=True)
        if refused:
            # The next commit waits for the rebalance to end here (its assignment callback): one sent before it
            # would carry the generation the rebalance is about to end, and be refused again.
            self.rebalancing, started = True, time.monotonic()
            while self.rebalancing and time.monotonic() - started < self.session_timeout_s:
                engine._route(engine._clients.poll(0.1))
            log.info("updater %s: the rebalance %s %.2f s after the refusal", engine.name,
                     "still went on" if self.rebalancing else "ended", time.monotonic() - started)
            self.rebalancing = self.rebalancing and self.waits_for_rebalances
        if self.unsent is not None:  # an announcement (made in a rebalance callback) went down with the transaction
            self._publish(self.unsent)
        return True

    def _unassign(self, consumer: Any, partitions: list, numbers: list[int]) -> None:
        """Stop reading the inputs of tasks ``numbers`` (and ``partitions``) and forget those tasks."""
        engine = self.engine
        inputs = {(tp.topic, tp.partition) for tp in partitions}
        inputs.update((where.topic, where.partition) for number in numbers if number in engine._tasks
                      for where in engine._tasks[number].inputs)
        consumer.incremental_unassign([TopicPartition(topic, number) for topic, number in sorted(inputs)])
        engine._drop_tasks(numbers)

    def _reopen(self, consumer: Any) -> None:
        """After a lost assignment: nothing to keep by default."""


class GroupAssignment(_Announcing):
    """One task per events partition, the partitions shared by the group's updaters.

    Only the events topic is subscribed: the cooperative-sticky assignor balances its partitions, moving
    as few as it can; the labels partition ``p`` is read by the owner of events partition ``p`` (assigned
    with it, its offsets committed with the same group metadata), so labels are co-partitioned by
    construction rather than by an assignor.
    """

    per_partition = True
    co_partitioned = True
    # not idle while joining or between a revoke and the next assignment: a member that blocks the rebalance (e.g.
    # in a commit stuck after a broker restart) holds the group's work, and the others must not end meanwhile
    waits_for_rebalances = True

    def __init__(self, events_topic: str, assignments_topic: str, session_timeout_s: float):
        super().__init__(assignments_topic, session_timeout_s)
        self.topics = [events_topic]

    def owned(self, engine: Any) -> list[int]:
        return sorted(engine._tasks)

    def given_up(self, partitions: list) -> list[int]:
        return sorted({tp.partition for tp in partitions if tp.topic == self.topics[0]} & set(self.engine._tasks))

    def _on_assign(self, consumer: Any, partitions: list) -> None:
        """Partitions added to this member (none at the end of a rebalance that moved nothing of it)."""
        self.rebalancing = False
        engine = self.engine
        engine._last_record_at = time.monotonic()  # idle counts from the end of the last rebalance
        numbers = sorted({tp.partition for tp in partitions if tp.topic == self.topics[0]} - set(engine._tasks))
        self._open(consumer, numbers)
        self.announce("assigned", self.owned(engine))

    def _open(self, consumer: Any, numbers: list[int]) -> None:
        engine, inputs = self.engine, []
        for number in numbers:
            task_inputs = engine.inputs([number])
            engine.open_task(number, task_inputs[0].key, task_inputs)
            inputs.extend(TopicPartition(where.topic, where.partition, where.fetched) for where in task_inputs)
        if inputs:
            consumer.incremental_assign(inputs)

    def _reopen(self, consumer: Any) -> None:
        """Tasks still assigned whose work was aborted with the lost ones: from their committed state again."""
        assigned = {tp.partition for tp in consumer.assignment() if tp.topic == self.topics[0]}
        self._open(consumer, sorted(assigned - set(self.engine._tasks)))


class LeaseAssignment(_Announcing):
    """One task over every input partition, kept by the holder of the lease topic's one partition
    (the lease stays with its holder when a standby joins)."""

    per_partition = False
    co_partitioned = False
    waits_for_rebalances = False  # a standby may end on idle

    def __init__(self, lease_topic: str, assignments_topic: str, session_timeout_s: float):
        super().__init__(assignments_topic, session_timeout_s)
        self.lease_topic = lease_topic
        self.topics = [lease_topic]

    def start(self, engine: Any, clients: Any) -> None:
        clients.partitions(self.lease_topic)
        super().start(engine, clients)

    def owned(self, engine: Any) -> list[int]:
        return list(engine.partitions)

    def given_up(self, partitions: list) -> list[int]:
        return [GLOBAL_NUMBER] if self.engine._tasks and partitions else []

    def _on_revoke(self, consumer: Any, partitions: list) -> None:
        self.rebalancing = self.waits_for_rebalances
        numbers = self.given_up(partitions)
        try:
            if numbers:
                self.announce("revoked", self.owned(self.engine))  # commits the open transaction with it
        finally:
            self._unassign(consumer, partitions, numbers)

    def _on_assign(self, consumer: Any, partitions: list) -> None:
        self.rebalancing = False  # (see rewind)
        if not partitions:
            return  # a standby, or the holder at the end of a rebalance that left it the lease
        engine = self.engine
        # the lease is this updater's: it reads every input partition itself (the group only knows the lease
        # topic, and the offsets it commits are checked against this member's generation)
        task = engine.open_task(GLOBAL_NUMBER, GLOBAL_TASK, engine.inputs(engine.partitions))
        consumer.incremental_assign(partitions + [TopicPartition(where.topic, where.partition, where.fetched)
                                                  for where in task.inputs])
        self.announce("assigned", self.owned(engine))

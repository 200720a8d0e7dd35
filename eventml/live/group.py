"""Live updaters that share a topic's partitions: one model per partition, its state kept in Kafka.

Any number of :class:`GroupUpdater` processes started with the same ``group`` (on one machine
or several) share the partitions of the events topic through Kafka's consumer-group protocol.
Each events partition is a *task* with its own model, as Kafka Streams gives each partition a
task: the prediction of an event comes from the model of its partition. Labels come inside the
events, or from a labels topic keyed by event id and partitioned like the events (the same
number of partitions, checked at start), so that partition ``p`` of both belong to the same task
(Kafka's range assignor gives co-partitioned topics to the same member).

How exactly-once works here
---------------------------
Each updater has one transactional producer and one ``read_committed`` consumer in the group
(the transactional id is the updater's own; zombies are fenced by the group generation that
``send_offsets_to_transaction`` carries, KIP-447). One transaction holds, for every task that
processed records in it, the predictions and dead letters, the task's state (the model, the
pending labels, the metrics and the next input offsets) written to the *state topic* (compacted,
one partition per events partition, see :mod:`eventml.live.state_topic`), and the input offsets.
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

import logging
import os
import socket
import time
import uuid
from typing import Any

import orjson
import pandas as pd

from eventml.errors import ConfigError, EventmlError, KafkaUnavailableError
from eventml.kafka import rdkafka
from eventml.kafka.rdkafka import KafkaException, TopicPartition
from eventml.kafka.settings import KafkaSettings
from eventml.kafka.topics import create_topic
from eventml.learners import make_learner
from eventml.live.background import BackgroundRun
from eventml.live.clients import (CLIENT_ERRORS, LiveClients, connect_with_backoff, end_of_partition,
                                  setup_timeout)
from eventml.live.commit import GRACE_S, BoundedCalls, KillHook, StateCost
from eventml.live.merge import EVENTS, LABELS, SILENT_POLLS, WAIT, InputPartition, PartitionMerge
from eventml.live.processor import MAX_RUN, RecordProcessor
from eventml.live.state import UpdaterState, check_topics, live_metrics
from eventml.live.state_topic import RESTORE_CONSUMER_CONFIG, StateTopic, _watermarks, state_topic_config
from eventml.live.stats import summary_row
from eventml.validation import one_of, positive_int, positive_number

__all__ = ["GroupUpdater", "SCOPES", "load_group_models", "read_assignments", "state_topic_name",
           "assignments_topic_name"]

log = logging.getLogger("eventml.live.group")

SCOPES = ("partition", "global")
"""A group's scopes: one model per partition, or one model over all partitions (one active updater)."""
GLOBAL_TASK = "global"


def state_topic_name(group: str) -> str:
    """The compacted topic that keeps the tasks' state of a group."""
    return f"eventml-{group}-state"


def lease_topic_name(group: str) -> str:
    """The one-partition topic whose owner is the active updater of a global-scope group."""
    return f"eventml-{group}-lease"


def assignments_topic_name(group: str) -> str:
    """The topic where a group's updaters announce the partitions they get and give up."""
    return f"eventml-{group}-assignments"


class _Task:
    """One events partition (and its labels partition): the inputs, the merge, the state."""

    __slots__ = ("partition", "key", "inputs", "merge", "state", "processor", "dirty")

    def __init__(self, partition: int, key: str, inputs: list[InputPartition], merge: PartitionMerge,
                 state: UpdaterState, processor: RecordProcessor):
        self.partition, self.key, self.inputs, self.merge = partition, key, inputs, merge
        self.state, self.processor = state, processor
        self.dirty = False  # processed records in the open transaction


class GroupUpdater(BackgroundRun):
    """One member of a group of live updaters: predicts, publishes and learns, one model per partition.

    Parameters
    ----------
    events_topic, predictions_topic, labels_topic
        As for :class:`~eventml.live.LiveUpdater`. A labels topic must have as many partitions as
        the events topic, and its labels must be keyed by event id like the events.
    group
        The name the updaters that share the work have in common (letters, digits, ``.``, ``_``, ``-``).
        It names the consumer group (``eventml-<group>``), the state topic and the assignments topic.
    model
        A learner name or object: the model every partition starts from.
    scope
        ``"partition"``: one model per events partition, the partitions shared by the updaters;
        ``"global"``: one model over all partitions, one active updater and the others standbys.
    state_key
        The secret that authenticates the state records (at least 16 bytes; default
        ``$EVENTML_STATE_KEY``). Every updater of the group needs the same one.
    bootstrap_servers, kafka, **connection
        Where Kafka is and how to log in (see :mod:`eventml.kafka.settings`).
    idle_timeout_s
        Stop when no input record arrived for this long (None: run until :meth:`stop`).
    records_per_transaction, transaction_interval_s, label_ttl_s, max_pending, rolling_window, seed
        As for :class:`~eventml.live.LiveUpdater`.
    session_timeout_s
        How long the group waits for an updater that stopped answering before its partitions move.
    transaction_timeout_s
        How long the broker keeps a dead updater's transaction open before it aborts it.
    reconnect_timeout_s
        How long to wait for a broker that went away before giving up.
    name
        This updater's name in the assignments (default: host, process id and a random suffix).
    summary_every
        A summary row every this many events of a partition.

    Examples
    --------
    >>> GroupUpdater("sea", "sea-predictions", group="a b", state_key="x" * 32)
    Traceback (most recent call last):
    ...
    eventml.errors.ConfigError: group must be letters, digits, '.', '_' or '-', got 'a b'
    """

    def __init__(self, events_topic: str, predictions_topic: str, *, group: str, model: Any = "river_logreg",
                 scope: str = "partition", labels_topic: str | None = None, state_key: str | bytes | None = None,
                 bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                 idle_timeout_s: float | None = None, records_per_transaction: int = 10_000,
                 transaction_interval_s: float = 0.5, label_ttl_s: float | None = None, max_pending: int = 100_000,
                 rolling_window: int = 500, session_timeout_s: float = 10.0, transaction_timeout_s: float = 10.0,
                 reconnect_timeout_s: float = 60.0, name: str | None = None, seed: int | None = 42,
                 summary_every: int = 1000, **connection: Any):
        if not isinstance(group, str) or not group or not all(c.isalnum() or c in "._-" for c in group):
            raise ConfigError(f"group must be letters, digits, '.', '_' or '-', got {group!r}")
        check_topics(events_topic, predictions_topic, labels_topic)
        self.scope = one_of("scope", scope, SCOPES)
        self.learner = make_learner(model, seed=seed)
        self.events_topic, self.predictions_topic, self.labels_topic = events_topic, predictions_topic, labels_topic
        self.group = group
        self.state_topic = state_topic_name(group)
        self.assignments_topic = assignments_topic_name(group)
        self.lease_topic = lease_topic_name(group)
        self._store = StateTopic(self.state_topic, state_key)
        self.kafka = KafkaSettings.resolve(kafka, bootstrap_servers=bootstrap_servers, **connection)
        self.idle_timeout_s = positive_number("idle_timeout_s", idle_timeout_s, allow_none=True)
        self.records_per_transaction = positive_int("records_per_transaction", records_per_transaction)
        self.transaction_interval_s = positive_number("transaction_interval_s", transaction_interval_s)
        self.label_ttl_s = positive_number("label_ttl_s", label_ttl_s, allow_none=True)
        self.max_pending = positive_int("max_pending", max_pending)
        self.rolling_window = positive_int("rolling_window", rolling_window)
        self.session_timeout_s = positive_number("session_timeout_s", session_timeout_s)
        self.transaction_timeout_s = positive_number("transaction_timeout_s", transaction_timeout_s)
        self.reconnect_timeout_s = positive_number("reconnect_timeout_s", reconnect_timeout_s)
        self.summary_every = positive_int("summary_every", summary_every)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._metrics = live_metrics(self.learner)

        self.assignments: list[dict[str, Any]] = []  # this updater's own, as announced
        self.events = 0  # predicted by this process
        self.transactions = 0  # committed by this process
        self._tasks: dict[int, _Task] = {}
        self._owner: dict[tuple[str, int], _Task] = {}  # (topic, partition) -> the task it is an input of
        self._clients: LiveClients | None = None
        self._reader: Any = None
        self._bounded = BoundedCalls()
        self._kill = KillHook()
        self._state_cost = StateCost()
        self._txn_open = False
        self._earliest_early_commit = 0.0
        # partition scope: joining, or between a revoke and the assignment that ends the rebalance; not idle then (a
        # member that blocks the rebalance, e.g. in a commit stuck after a broker restart, holds the group's work)
        self._rebalancing = False

    @property
    def group_id(self) -> str:
        """The consumer group the updaters share (one per scope)."""
        return f"eventml-{self.group}" + ("-global" if self.scope == "global" else "")

    @property
    def transactional_id(self) -> str:
        """This updater's own (KIP-447: the group generation fences zombies)."""
        return f"eventml-{self.group}-{self.name}"

    # ------------------------------------------------------------------ connecting

    def _connect(self) -> None:
        self._close_clients()
        self._clients = clients = LiveClients(
            self.kafka, self.transactional_id, self.group_id, setup_timeout(self.reconnect_timeout_s),
            producer_config={"transaction.timeout.ms": int(self.transaction_timeout_s * 1000)},
            # range: partition p of the events and of the labels go to the same updater; cooperative-sticky:
            # the lease stays with its owner when a standby joins
            consumer_config={"partition.assignment.strategy": "range" if self.scope == "partition" else
                             "cooperative-sticky",
                             "session.timeout.ms": int(self.session_timeout_s * 1000),
                             "heartbeat.interval.ms": max(100, int(self.session_timeout_s * 1000 / 5))})
        partitions = clients.partitions(self.events_topic)
        if self.labels_topic is not None:
            labels = clients.partitions(self.labels_topic)
            if len(labels) != len(partitions):
                raise ConfigError(
                    f"labels topic {self.labels_topic!r} has {len(labels)} partitions and events topic "
                    f"{self.events_topic!r} has {len(partitions)}: a group of updaters needs both partitioned "
                    "alike (the same number of partitions, labels keyed by event id)")
        self._prediction_partition = 0 if clients.partitions(self.predictions_topic) == [0] else -1
        create_topic(self.state_topic, len(partitions), kafka=self.kafka, topic_config=state_topic_config())
        if len(clients.partitions(self.state_topic)) < len(partitions):
            raise ConfigError(f"state topic {self.state_topic!r} has fewer partitions than {self.events_topic!r}; "
                              "it was made for another events topic: use another group name")
        clients.partitions(self.assignments_topic)
        self._partitions = partitions
        self._reader = rdkafka.consumer(self.kafka, {**RESTORE_CONSUMER_CONFIG, "group.id": f"{self.group_id}-state"})
        if self.scope == "global":
            clients.partitions(self.lease_topic)
            topics = [self.lease_topic]
        else:
            topics = [self.events_topic] + ([self.labels_topic] if self.labels_topic else [])
        clients.consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                   on_lost=self._on_lost)
        self._rebalancing = self.scope == "partition"
        self._empty_polls = 0

    def _close_clients(self) -> None:
        self._drop_tasks()
        clients, reader = self._clients, self._reader
        self._clients = self._reader = None
        if clients is not None:
            clients.close()
        if reader is not None:
            try:
                reader.close()
            except Exception:
                log.debug("closing the state reader failed", exc_info=True)

    def _reconnect(self, error: BaseException) -> None:
        log.warning("Kafka failed (%s); rejoining the group", error)
        if self._clients is not None:
            self._clients.abort_if_needed(error, min(self.reconnect_timeout_s, 5.0))
        self._txn_open = False
        connect_with_backoff(self._connect, self._close_clients, self.reconnect_timeout_s, self.kafka)

    # ------------------------------------------------------------------ rebalances

    def _inputs(self, numbers: list[int]) -> list[InputPartition]:
        return [InputPartition(topic, number, rank)
                for rank, topic in ((EVENTS, self.events_topic), (LABELS, self.labels_topic)) if topic is not None
                for number in numbers]

    def _on_assign(self, consumer: Any, partitions: list) -> None:
        self._rebalancing = False
        if self.scope == "global":
            if not partitions:
                return  # a standby
            # the lease is this updater's: it reads every input partition itself (the group only knows the
            # lease topic, and the offsets it commits are checked against this member's generation)
            self._tasks[0] = self._restore(0, GLOBAL_TASK, self._inputs(self._partitions))
        else:
            for number in sorted({tp.partition for tp in partitions}):
                inputs = self._inputs([number])
                self._tasks[number] = self._restore(number, inputs[0].key, inputs)
        for task in self._tasks.values():
            for where in task.inputs:
                self._owner[where.topic, where.partition] = task
        inputs = [TopicPartition(where.topic, where.partition, where.fetched)
                  for task in self._tasks.values() for where in task.inputs]
        if self.scope == "global":
            consumer.incremental_assign(partitions + inputs)
        else:
            consumer.assign(inputs)
        self._announce("assigned", sorted(self._tasks) if self.scope == "partition" else self._partitions)

    def _on_revoke(self, consumer: Any, partitions: list) -> None:
        self._rebalancing = self.scope == "partition"
        if self._tasks:
            self._announce("revoked", self._owned())  # commits the open transaction with it
        self._unassign(consumer, partitions)

    def _unassign(self, consumer: Any, partitions: list) -> None:
        """Drop the tasks; a global-scope updater also gives up the input partitions it took with the lease."""
        if self.scope == "global":
            consumer.incremental_unassign(partitions + [TopicPartition(topic, number)
                                                        for topic, number in self._owner])
        self._drop_tasks()

    def _on_lost(self, consumer: Any, partitions: list) -> None:
        """The group moved on without this updater (its session timed out): nothing it has may commit."""
        log.warning("updater %s lost partitions %s", self.name, sorted(self._tasks))
        self._rebalancing = self.scope == "partition"
        if self._txn_open:
            try:
                self._clients.producer.abort_transaction(min(self.reconnect_timeout_s, 5.0))
            except KafkaException:
                log.debug("aborting after the lost partitions failed", exc_info=True)
            self._txn_open = False
        self._unassign(consumer, partitions)

    def _owned(self) -> list[int]:
        """The events partitions this updater works on now."""
        return sorted(self._tasks) if self.scope == "partition" else (self._partitions if self._tasks else [])

    def _drop_tasks(self) -> None:
        self._tasks.clear()
        self._owner.clear()

    def _restore(self, number: int, key: str, inputs: list[InputPartition]) -> _Task:
        """Task ``key`` (state in partition ``number`` of the state topic), from the state committed with
        the offsets of its inputs."""
        clients = self._clients
        # the state of exactly the committed offsets (authenticated before it is unpickled), else a refusal
        snapshot = self._store.load(self._reader, key, number, clients.setup_timeout_s,
                                    committed=clients.committed(inputs))
        if snapshot is not None:
            state: UpdaterState = snapshot.state
            state.counts["restarts"] += 1
            if state.scorer.learner.name != self.learner.name:
                raise ConfigError(f"group {self.group!r} learns {state.scorer.learner.name!r}, not "
                                  f"{self.learner.name!r}; use the same model or another group name")
        else:
            state = UpdaterState.fresh(self.learner, self._metrics, self.rolling_window, self.label_ttl_s,
                                       self.max_pending)
        for where in inputs:
            if where.key not in state.offsets:
                state.offsets[where.key] = clients.earliest(where)
            where.fetched = state.offsets[where.key]
        merge = PartitionMerge(inputs, clients.high_watermark, end_of_partition)
        processor = RecordProcessor(state, self.learner.name, self.predictions_topic, clients.send,
                                    self._prediction_partition, keep_unlabelled=self.labels_topic is not None)
        log.info("updater %s resumes %s at %s (%d events so far)", self.name, key, state.offsets,
                 state.counts["events"])
        return _Task(number, key, inputs, merge, state, processor)

    def _announce(self, event: str, partitions: list[int]) -> None:
        """Tell the assignments topic, in a transaction that commits now (with the open one's records)."""
        row = {"time": time.time(), "updater": self.name, "event": event, "partitions": partitions}
        self.assignments.append(row)
        self._begin()
        self._clients.send(self.assignments_topic, orjson.dumps(row), self.name.encode())
        self._commit()

    # ------------------------------------------------------------------ transactions

    def _begin(self) -> None:
        if not self._txn_open:
            self._clients.producer.begin_transaction()
            self._txn_open = True
            self._deadline = time.monotonic() + self.transaction_interval_s

    def _route(self, messages: list) -> bool:
        """Hand polled records to their task's merge; True if there were records."""
        by_task: dict[_Task, list] = {}
        owner = self._owner
        for message in messages:
            task = owner.get((message.topic(), message.partition()))
            if task is not None:
                by_task.setdefault(task, []).append(message)
            elif message.error() is not None:  # a partition given up meanwhile, or an error of no partition
                end_of_partition(message.error())  # raises a fatal one
        got = False
        for task, batch in by_task.items():
            got = task.merge.fill(batch) or got
        return got

    def _take(self, force: bool, room: int) -> Any:
        """``(task, (partition, records))``: the next run of one task's records (at most ``room``, and
        ending where the task's next summary row is due), or None."""
        every = self.summary_every
        for task in self._tasks.values():
            limit = min(MAX_RUN, room, every - task.state.counts["events"] % every)
            picked = task.merge.take(force, limit)
            if picked is not None and picked is not WAIT:
                return task, picked
        return None

    def _next_run(self, timeout_s: float, room: int) -> Any:
        picked = self._take(False, room)
        if picked is None:
            if self._route(self._clients.poll(timeout_s)):  # rebalance callbacks run in here
                self._empty_polls = 0
            else:
                self._empty_polls += 1
            picked = self._take(self._empty_polls >= SILENT_POLLS, room)
        return picked

    def _caught_up(self) -> bool:
        return all(task.merge.caught_up() for task in self._tasks.values())

    def _transaction(self) -> bool:
        """Process records until the open transaction should close; False when the run should end."""
        n = 0
        keep_going = True
        while not self._txn_open or (n < self.records_per_transaction and time.monotonic() < self._deadline):
            if self.stopping.is_set():
                keep_going = False
                break
            wait = 0.1 if not self._txn_open else max(0.005, min(0.1, self._deadline - time.monotonic()))
            picked = self._next_run(wait, max(1, self.records_per_transaction - n))
            if picked is None:
                if self._txn_open and self._caught_up() and time.monotonic() >= self._earliest_early_commit:
                    break
                if (not self._txn_open and not self._rebalancing and self.idle_timeout_s is not None
                        and time.monotonic() - self._last_record_at >= self.idle_timeout_s):
                    if self._fetch_again():  # not idle: records of its partitions were not fetched
                        self._last_record_at = time.monotonic()
                        continue
                    keep_going = False
                    break
                continue
            task, (where, records) = picked
            self._last_record_at = time.monotonic()
            self._begin()
            state = task.state
            state.offsets[where.key] = records[-1].offset() + 1
            task.dirty = True
            if where.rank == EVENTS:
                published = len(task.processor.events(records))
                if published:
                    self.events += published
                    if state.counts["events"] % self.summary_every == 0:
                        state.rows.append(summary_row(state, None))
            else:
                for record in records:
                    task.processor.label(record)
            n += len(records)
            # nothing left to read now: commit soon, so predictions become readable (as in LiveUpdater, a
            # partition with records still buffered is not caught up: no need to ask the others)
            if not where.buf and self._caught_up():
                self._deadline = min(self._deadline, self._earliest_early_commit)
        if self._txn_open:
            self._commit()
        return keep_going

    def _fetch_again(self) -> bool:
        """Before ending on idle: True if an input partition of this updater has records after what its consumer
        read, as the partition's leader says now (``read_committed``: its last stable offset); each such partition is
        fetched again from there. A fetch can stall after a leader change (a broker restart), and a partition handed
        over as the others end has not been fetched yet: ending then would leave its records to no updater."""
        consumer = self._clients.consumer
        inputs = [where for task in self._tasks.values() for where in task.inputs]
        tps = [TopicPartition(where.topic, where.partition) for where in inputs]
        left = []
        for where, tp, position in zip(inputs, tps, consumer.position(tps) if tps else []):
            read = max(position.offset, where.fetched)  # the position is past control records, or not known yet
            end = _watermarks(consumer, tp, time.monotonic() + min(self.reconnect_timeout_s, 10.0))[1]
            if where.buf or end > read:
                left.append(f"{where.key} ({end - read} records from offset {read})")
                if not where.buf:
                    consumer.resume([tp])  # a no-op unless paused
                    consumer.seek(TopicPartition(where.topic, where.partition, read))
        if left:
            log.warning("updater %s: no record for %g s but %s left to read: fetching again instead of ending",
                        self.name, self.idle_timeout_s, ", ".join(left))
        return bool(left)

    def _commit(self) -> None:
        """Write the state of every task that changed, add its offsets, and commit."""
        clients, producer = self._clients, self._clients.producer
        started = time.monotonic()
        offsets = []
        for task in self._tasks.values():
            if not task.dirty:
                continue
            state = task.state
            state.sequence += 1
            for key, value, headers in self._store.records(task.key, task.partition, state.sequence,
                                                           state.offsets, state):
                if not clients.send(self.state_topic, value, key, task.partition, headers):
                    raise EventmlError(f"a state record of {task.key} is too large for the producer")
            offsets.extend(TopicPartition(where.topic, where.partition, state.offsets[where.key])
                           for where in task.inputs)
        self._state_cost.add(time.monotonic() - started)
        self._kill.commits += 1
        self._kill.maybe_die("before_commit")
        metadata = clients.consumer.consumer_group_metadata()
        timeout = self.reconnect_timeout_s

        def commit() -> None:
            ends = time.monotonic() + timeout
            if offsets:
                producer.send_offsets_to_transaction(offsets, metadata, timeout)
            producer.commit_transaction(max(0.1, ends - time.monotonic()))

        self._bounded.call(commit, timeout + GRACE_S)
        self._txn_open = False
        self.transactions += 1
        for task in self._tasks.values():
            task.dirty = False
        self._kill.maybe_die("after_commit")
        self._earliest_early_commit = self._state_cost.next_early_commit()

    # ------------------------------------------------------------------ running

    def run(self) -> dict[str, Any]:
        """Run until ``idle_timeout_s`` or :meth:`stop`; return :meth:`figures`.

        Raises
        ------
        KafkaUnavailableError
            If no broker answers, or one that went away does not come back within ``reconnect_timeout_s``.
        SnapshotError
            If a partition's state in the state topic does not match its committed offsets, or fails
            authentication.
        """
        try:
            try:
                self._connect()
            except CLIENT_ERRORS as error:
                raise KafkaUnavailableError(f"the group updater could not set up its Kafka clients at "
                                            f"{self.kafka.bootstrap_servers or 'the default address'}: {error}") from None
            self._last_record_at = time.monotonic()
            while True:
                try:
                    if not self._transaction():
                        break
                except (*CLIENT_ERRORS, KafkaUnavailableError) as error:
                    self._reconnect(error)
        finally:
            if self._tasks and self._clients is not None and not self._txn_open:
                try:
                    self._announce("revoked", self._owned())
                except (*CLIENT_ERRORS, KafkaUnavailableError):
                    log.debug("announcing the stop failed", exc_info=True)
            self._close_clients()  # leaving the group hands the partitions over at once
            self._bounded.close()
        return self.figures()

    def _result(self) -> dict[str, Any]:
        return self.figures()

    def figures(self) -> dict[str, Any]:
        """This updater's figures: its name, the partitions it works on now, the events it predicted
        and the transactions it committed in this process, and how often its partitions changed."""
        return {"updater": self.name, "group": self.group, "scope": self.scope, "partitions": self._owned(),
                "events": self.events, "transactions": self.transactions,
                "rebalances": sum(row["event"] == "assigned" for row in self.assignments)}

    def summary(self) -> pd.DataFrame:
        """The summary rows of the partitions this updater owns now (a ``partition`` column first)."""
        rows = [{"partition": number, **row} for number, task in sorted(self._tasks.items())
                for row in list(task.state.rows)]
        return pd.DataFrame(rows)


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

"""The committed models of a group of live updaters, read from its state topic: one per events partition.

A group of live updaters (:class:`~eventml.live.group.GroupUpdater`) keeps the state of the task of
events partition ``p`` (``"<events topic>:<p>"``) in partition ``p`` of its compacted state topic
``eventml-<group>-state``, or, with ``scope="global"``, the one task ``"global"`` in partition 0.
:class:`StateTopicWatcher` keeps :attr:`~StateTopicWatcher.current` a :class:`GroupModels`: the
newest committed state of every task, and answers each event from the model of the partition
Kafka's default partitioner gives its record key (:func:`~eventml.kafka.partitioner.partition_for_key`,
murmur2, of :func:`~eventml.events.record_key`: its id, or with ``key="user"`` its ``user`` feature,
as the producers placed the events), or from the global model.

Every ``poll_interval_s`` it asks the end offset of each state partition (one ``ListOffsets``
request each, by a ``read_committed`` consumer: the end of what is committed) and reads a task's
state again only when its partition's end moved; a partition that did not move costs nothing
more. A state is read with :meth:`~eventml.live.state_topic.StateTopic.load` (its HMAC checked
before anything is unpickled, records of aborted or open transactions never seen) and served
only if its offsets are the offsets the group committed for its inputs, read after it (the rule
the updaters restore by: an older, genuine state a writer without the key replayed is refused).
The swap is one reference assignment of a new :class:`GroupModels`: a request reads
:attr:`~StateTopicWatcher.current` once and uses it to the end.

Guaranteed: every model served was the committed state of its task when it was loaded, and was
written by a holder of the state key. Not guaranteed: how soon a commit is served (one poll
interval plus the load, typically 0.2-0.3 s); a partition whose newest state is refused (a forged
record, ``last_error`` says why) keeps its previous model until the group commits it again.

Examples
--------
>>> info = {"group": "sea-models", "scope": "partition", "events_topic": "sea",
...         "state_topic": "eventml-sea-models-state"}
>>> view = GroupModels.empty(info, 3)  # nothing committed yet
>>> view.key_of(Event("e-42", {"user": "bob"})), view.model_for(Event("e-42", {})) is None, view.ready
(2, True, False)
>>> GroupModels.empty({**info, "key": "user"}, 3).key_of(Event("e-42", {"user": "bob"}))  # by the user
0
>>> watcher = StateTopicWatcher("sea", "sea-models", KafkaSettings("127.0.0.1:9092"),
...                             state_key="00112233445566778899aabbccddeeff").start()  # doctest: +SKIP
>>> watcher.current.describe()["models"]["2"]["sequence"]  # doctest: +SKIP
12
"""

from __future__ import annotations

import logging
import time
from typing import Any

from eventml.errors import ConfigError, SnapshotError
from eventml.events import Event, key_feature, record_key
from eventml.kafka import rdkafka
from eventml.kafka.partitioner import partition_for_key
from eventml.kafka.rdkafka import TopicPartition
from eventml.live.group import GLOBAL_TASK, SCOPES, consumer_group_name, state_topic_name
from eventml.live.state_topic import RESTORE_CONSUMER_CONFIG, StateTopic
from eventml.service.watcher import CommittedModel, PollingWatcher
from eventml.validation import one_of, positive_number

__all__ = ["GroupModels", "StateTopicWatcher"]

log = logging.getLogger("eventml.service")
client_log = logging.getLogger("eventml.service.librdkafka")
_METADATA_EVERY_S = 10.0  # how often the events topic's partitions are counted again
_AGREE_WITHIN_S = 2.0  # how long a state and the group's committed offsets may disagree (a commit in between)


class GroupModels:
    """The committed models a request of a group is answered from: ``models[p]`` for events partition
    ``p`` (``models["global"]`` with ``scope="global"``), None where nothing is committed yet.

    Never changed once made: :meth:`with_model` makes the next one.
    """

    def __init__(self, info: dict[str, Any], partitions: int, models: dict[Any, CommittedModel | None]):
        self.info, self.partitions, self.models = info, partitions, models

    @classmethod
    def empty(cls, info: dict[str, Any], partitions: int) -> "GroupModels":
        keys = [GLOBAL_TASK] if info["scope"] == "global" else range(partitions)
        return cls(info, partitions, dict.fromkeys(keys))

    def with_model(self, key: Any, model: CommittedModel) -> "GroupModels":
        return GroupModels(self.info, self.partitions, {**self.models, key: model})

    def resized(self, partitions: int) -> "GroupModels":
        """The same models for an events topic that now has ``partitions`` partitions."""
        if self.info["scope"] == "global":
            return GroupModels(self.info, partitions, self.models)
        return GroupModels(self.info, partitions, {p: self.models.get(p) for p in range(partitions)})

    def key_of(self, event: Event) -> Any:
        """The task that answers ``event``: the partition of its record key (by ``info["key"]``, as the
        producer keyed the events), or ``"global"``."""
        if self.info["scope"] == "global":
            return GLOBAL_TASK
        return partition_for_key(record_key(event.id, event.features, self.info.get("key")), self.partitions)

    def model_for(self, event: Event) -> CommittedModel | None:
        """The committed model of the partition of ``event`` (the global one), or None."""
        return self.models[self.key_of(event)]

    @property
    def ready(self) -> bool:
        """Whether every partition has a committed model."""
        return all(model is not None for model in self.models.values())

    @property
    def sequence(self) -> int | None:
        """The oldest transaction among the served models (None until every partition has one)."""
        return min(model.sequence for model in self.models.values()) if self.ready else None

    def summary(self) -> str:
        """One line: what is served."""
        have = [model.sequence for model in self.models.values() if model is not None]
        span = f" (transactions {min(have)}-{max(have)})" if have else ""
        return f"group {self.info['group']!r}: {len(have)} of {len(self.models)} committed models{span}"

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` answers: the group, and the committed state served for each task."""
        return {**self.info, "partitions": self.partitions,
                "models": {str(key): model.describe() if model else None for key, model in self.models.items()}}

    def health(self) -> dict[str, Any]:
        """Its part of ``GET /healthz``: each task's sequence (None: nothing committed yet)."""
        return {"sequences": {str(key): model.sequence if model else None for key, model in self.models.items()}}


class StateTopicWatcher(PollingWatcher):
    """Keeps :attr:`current` the newest committed models of a group of live updaters.

    Parameters
    ----------
    events_topic
        The group's events topic: its partitions are the tasks, and requests are placed as its
        events are.
    group
        The group's name (``eventml live --group NAME``).
    kafka
        The :class:`~eventml.kafka.settings.KafkaSettings` of the group's cluster.
    scope
        ``"partition"`` (one model per events partition) or ``"global"``, as the group was started.
    state_key
        The secret that authenticates the state (default ``$EVENTML_STATE_KEY``): the group's own.
    key
        The feature the events are keyed by (``em.produce(..., key="user")``): a request is answered
        from the partition of its value, encoded as the producer does; None (or an event without it):
        of its id.
    poll_interval_s
        Seconds between two looks at the state partitions' end offsets.
    load_timeout_s
        How long one look may take to read the states that moved.
    """

    def __init__(self, events_topic: str, group: str, kafka: Any, *, scope: str = "partition",
                 state_key: str | bytes | None = None, key: str | None = None, poll_interval_s: float = 0.2,
                 load_timeout_s: float = 10.0):
        super().__init__(positive_number("poll_interval_s", poll_interval_s))
        if not isinstance(events_topic, str) or not events_topic:
            raise ConfigError(f"events_topic must be the group's events topic, got {events_topic!r}")
        if not isinstance(group, str) or not group:
            raise ConfigError(f"group must be the name the live updaters were started with, got {group!r}")
        self.events_topic, self.group, self.kafka = events_topic, group, kafka
        self.scope = one_of("scope", scope, SCOPES)
        self.load_timeout_s = positive_number("load_timeout_s", load_timeout_s)
        self.store = StateTopic(state_topic_name(group), state_key)
        self.group_id = consumer_group_name(group, self.scope)
        self.info = {"group": group, "scope": self.scope, "events_topic": events_topic,
                     "state_topic": self.store.topic, "key": key_feature(key)}
        self.refused: dict[str, str] = {}  # task -> why its newest state is not served
        self.loads = 0
        self._consumer: Any = None
        self._partitions = 0
        self._partitions_at = float("-inf")
        self._seen: dict[int, int] = {}  # state partition -> its committed end when it was last read
        self._waiting: str | None = None  # why there is nothing to read yet

    # ------------------------------------------------------------------ one look

    def _client(self) -> Any:
        if self._consumer is None:
            # never subscribes, so it never joins the updaters' group; it reads their committed offsets
            self._consumer = rdkafka.consumer(self.kafka, {**RESTORE_CONSUMER_CONFIG, "group.id": self.group_id},
                                              logger=client_log)
        return self._consumer

    def _count_partitions(self, consumer: Any) -> int:
        """The events topic's partitions (0 while it or the state topic does not exist), asked every 10 s."""
        if time.monotonic() - self._partitions_at > _METADATA_EVERY_S or not self._partitions:
            counts = {}
            for topic in (self.events_topic, self.store.topic):
                meta = consumer.list_topics(topic, timeout=self.load_timeout_s).topics.get(topic)
                counts[topic] = len(meta.partitions) if meta is not None and meta.error is None else 0
            self._waiting = None
            if not counts[self.events_topic]:
                self._waiting = f"events topic {self.events_topic!r} does not exist"
            elif not counts[self.store.topic]:
                self._waiting = (f"group {self.group!r} has not started: its state topic {self.store.topic!r} "
                                 "does not exist")
            self._partitions = counts[self.events_topic] if self._waiting is None else 0
            self._partitions_at = time.monotonic()
        return self._partitions

    def _tasks(self, partitions: int) -> list[tuple[Any, str, int]]:
        """``(key, task, state partition)`` of every task of the group."""
        if self.scope == "global":
            return [(GLOBAL_TASK, GLOBAL_TASK, 0)]
        return [(p, f"{self.events_topic}:{p}", p) for p in range(partitions)]

    def poll(self) -> bool:
        """Read again the state of every task whose state partition moved; True if a model was swapped."""
        consumer = self._client()
        partitions = self._count_partitions(consumer)
        if not partitions:
            return False
        view = self.current
        if view is None:
            view = self.current = GroupModels.empty(self.info, partitions)
        elif view.partitions != partitions:
            log.info("events topic %r now has %d partitions; requests are placed by them", self.events_topic,
                     partitions)
            view = self.current = view.resized(partitions)
        swapped = False
        for key, task, number in self._tasks(partitions):
            _, end = consumer.get_watermark_offsets(TopicPartition(self.store.topic, number),
                                                    timeout=self.load_timeout_s, cached=False)
            if self._seen.get(number) == end:
                continue  # nothing committed there since the last read
            refused = dict(self.refused)  # replaced, never changed: GET /healthz reads it from another thread
            try:
                model = self._load(consumer, task, number, view.models.get(key))
            except SnapshotError as exc:
                refused[str(key)] = str(exc)
            else:
                refused.pop(str(key), None)
                if model is not None:
                    view = self.current = view.with_model(key, model)  # the swap: one reference assignment
                    swapped = True
                    self.swaps += 1
                    log.info("serving %s: model version %d (transaction %d)", task, model.model_version,
                             model.sequence)
            self._seen[number], self.refused = end, refused
        if self.refused:
            raise SnapshotError("; ".join(self.refused.values()))
        return swapped

    def _load(self, consumer: Any, task: str, number: int, served: CommittedModel | None) -> CommittedModel | None:
        """The task's newest committed state if it is new, and the group committed exactly its offsets."""
        agree_by = time.monotonic() + _AGREE_WITHIN_S
        while True:
            self.loads += 1
            snapshot = self.store.load(consumer, task, number, self.load_timeout_s)
            if snapshot is None:
                return None  # nothing committed for this task yet
            if served is not None and (snapshot.sequence, snapshot.offsets) == (served.sequence, served.offsets):
                return None  # the partition moved for another task, or an aborted transaction's markers
            # read after the state, the committed offsets are those of its transaction or of a later one
            committed = self._committed(consumer, snapshot.offsets)
            if committed == snapshot.offsets:
                break
            if time.monotonic() >= agree_by:
                raise SnapshotError(f"{self.store.topic!r} partition {number} task {task!r}: the newest state "
                                    f"(sequence {snapshot.sequence}) is for offsets {snapshot.offsets}, not the "
                                    f"offsets group {self.group!r} committed, {committed}: an older state was "
                                    "replayed, or the group has not committed it; it is not served")
            time.sleep(0.05)
        if served is not None and snapshot.sequence < served.sequence:
            log.warning("%s went back from transaction %d to %d (the group started over?); serving it", task,
                        served.sequence, snapshot.sequence)
        return CommittedModel.of_state(snapshot.state, snapshot.sequence, snapshot.offsets,
                                       f"{self.store.topic}:{number} {task}", None)

    def _committed(self, consumer: Any, offsets: dict[str, int]) -> dict[str, int]:
        """The group's committed offsets of the input partitions named in ``offsets``."""
        wanted = [TopicPartition(topic, int(p)) for topic, _, p in (key.rpartition(":") for key in offsets)]
        return rdkafka.committed_offsets(consumer, wanted, self.load_timeout_s)

    # ------------------------------------------------------------------ the rest

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except Exception:  # a client of a broker that went away may fail to close: dropped anyway
                log.debug("closing the state reader failed", exc_info=True)

    def no_model_sentence(self, event: Event | None = None) -> str:
        view = self.current
        key = None
        if view is not None:
            key = view.key_of(event) if event is not None else next(
                (k for k, m in view.models.items() if m is None), None)
        if key is None:
            why = self._waiting or f"group {self.group!r} has committed no state yet"
        else:
            where = "the global model" if key == GLOBAL_TASK else f"partition {key} of {self.events_topic!r}"
            why = f"group {self.group!r} has not committed {where} yet"
            if event is not None and key != GLOBAL_TASK:
                why += f" (event {event.id!r} is placed there)"
        error = f" (last error: {self.last_error})" if self.last_error else ""
        return f"no committed model to serve: {why}{error}; try again once it has committed one"

    def status(self) -> dict[str, Any]:
        return {**super().status(), "loads": self.loads, "refused": self.refused}

"""The committed model of a live updater, the watchers that keep it current, and what they share.

A *watcher* keeps :attr:`~PollingWatcher.current` the newest committed state, looking for a new
one every ``poll_interval_s`` in a daemon thread; the app reads ``current`` once per request and
asks it ``model_for(event)``, so it does not care where the state comes from:

- :class:`ModelWatcher`: the state directory of one live updater (this module);
- :class:`~eventml.service.group_watcher.StateTopicWatcher`: the state topic of a group of live
  updaters, one model per events partition (or one global model).

A live updater writes a snapshot *before* it commits its transaction (see
:mod:`eventml.live.commit`), so a snapshot on disk may belong to a transaction that never
commits (the updater was killed, or the transaction aborted). A snapshot is the committed state
only while the consumer group's committed offsets in Kafka equal the snapshot's offsets: that is
the rule the updater itself restores by (:meth:`eventml.live.LiveUpdater._restore`), and the rule
:class:`ModelWatcher` serves by.

:class:`ModelWatcher` polls, every ``poll_interval_s``, the group's committed offsets (a
``read_committed`` confluent-kafka consumer that never joins the group: it only asks the group
coordinator, so it never moves the updater's offsets nor triggers a rebalance) and the state
directory; when the offsets name a snapshot other than the one being served, it loads that
snapshot, checks that its offsets are the committed ones, and replaces :attr:`ModelWatcher.current`
with one assignment. A request reads :attr:`~ModelWatcher.current` once and uses that
:class:`CommittedModel` to the end, so a swap never fails, tears or delays a request: requests
in flight finish on the model they started with, the next ones get the new one.

Guaranteed: every model served was the updater's committed state at the moment it was loaded;
the served sequence never goes backwards while one updater runs. Not guaranteed: how soon a
commit is served (one poll interval plus the snapshot's load time, typically 0.2-0.3 s); a Kafka
failure keeps the last committed model in service (``last_error`` says why) until Kafka answers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from eventml.errors import SnapshotError
from eventml.events import Event
from eventml.live.snapshots import find_snapshot, load_snapshot
from eventml.live.state import IDENTITY_FILE

__all__ = ["CommittedModel", "PollingWatcher", "ModelWatcher", "group_id_of"]

log = logging.getLogger("eventml.service")
client_log = logging.getLogger("eventml.service.librdkafka")
_METADATA_EVERY_S = 10.0  # how often the input topics' partitions are asked again


@dataclasses.dataclass(frozen=True)
class CommittedModel:
    """One committed state of a live updater, as served.

    ``model_version`` is the number of labels the model has learned (the ``model_version`` of the
    updater's own predictions), ``sequence`` the number of the updater's transaction it was
    committed by, ``offsets`` the next input offset of every partition (``{"topic:partition": n}``,
    equal to the group's committed offsets when it was loaded), ``windows`` the committed
    :class:`~eventml.windows.WindowedFeatures` of an updater with windows (None without): only read.
    """

    scorer: Any  # the committed eventml.scoring.Scorer: the learner, predicting as the updater does
    model: str
    model_version: int
    sequence: int
    offsets: dict[str, int]
    events: int
    metrics: dict[str, float]
    snapshot: str  # where it was read: the snapshot's file name, or the state topic and partition
    written_at: float | None  # epoch seconds: when the updater wrote the snapshot (None: not known)
    served_since: float  # epoch seconds: when this service swapped to it
    models: dict[str, Any] = dataclasses.field(default_factory=dict)  # every model's ModelState, the champion first
    windows: Any = None  # the committed eventml.windows.WindowedFeatures, or None

    @classmethod
    def of_state(cls, state: Any, sequence: int, offsets: dict[str, int], snapshot: str,
                 written_at: float | None) -> "CommittedModel":
        """The served form of a committed :class:`~eventml.live.state.UpdaterState`, served from now."""
        return cls(scorer=state.scorer, model=state.scorer.learner.name, model_version=state.learned,
                   sequence=sequence, offsets=dict(offsets), events=state.counts["events"],
                   metrics=state.scorer.metrics(), snapshot=snapshot, written_at=written_at,
                   served_since=time.time(), models={m.name: m for m in [state.model, *state.models]},
                   windows=state.windows)

    def named(self, name: str) -> "CommittedModel | None":
        """The same committed state answering with model ``name`` (one of :attr:`models`), or None if there is
        no such model; the champion's is this one."""
        if name == self.model:
            return self
        one = self.models.get(name)
        if one is None:
            return None
        return dataclasses.replace(self, scorer=one.scorer, model=name, model_version=one.counts["learned"],
                                   metrics=one.scorer.metrics())

    # the view a request reads (a group's is :class:`~eventml.service.group_watcher.GroupModels`)
    ready = True

    def model_for(self, event: Event) -> "CommittedModel":
        """The model that answers ``event``: this one, for every event."""
        return self

    def features_of(self, event: Event, now: float) -> dict[str, Any]:
        """The features the model is asked with: the event's, and with windows the windowed features the
        live updater would give it now (:meth:`~eventml.windows.WindowedFeatures.features_for`: a peek
        at the committed state, which stays as it is), at its ``ts``, or at ``now`` without one."""
        if self.windows is None:
            return event.features
        ts = now if event.ts is None else event.ts
        return {**event.features, **self.windows.features_for(event.features, ts)}

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` answers."""
        return {"model": self.model, "champion": self.model, "models": list(self.models) or [self.model],
                "model_version": self.model_version, "sequence": self.sequence,
                "offsets": self.offsets, "events": self.events, "metrics": self.metrics,
                "snapshot": self.snapshot, "written_at": self.written_at, "served_since": self.served_since,
                "windows": self.windows.names if self.windows is not None else None}

    def health(self) -> dict[str, Any]:
        """Its part of ``GET /healthz``."""
        return {"sequence": self.sequence, "model_version": self.model_version}

    def summary(self) -> str:
        """One line: what is served."""
        return f"model {self.model} v{self.model_version} (transaction {self.sequence})"


def group_id_of(name: str) -> str:
    """The consumer group of the live updater called ``name`` (see ``LiveUpdater.group_id``)."""
    return f"eventml-live-{name}"


def read_updater_identity(state_dir: Path) -> dict[str, Any] | None:
    """``updater.json`` of a state directory, or None while the updater has not written it."""
    try:
        return json.loads((state_dir / IDENTITY_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{state_dir / IDENTITY_FILE} is unreadable ({exc})") from None


class KafkaCommittedOffsets:
    """Reads a live updater's committed input offsets from its consumer group, without joining it."""

    def __init__(self, kafka: Any, group_id: str, topics: list[str], timeout_s: float = 5.0):
        from eventml.kafka import rdkafka

        self._rdkafka = rdkafka
        self.topics = topics
        self.timeout_s = timeout_s
        self.consumer = rdkafka.consumer(kafka, {
            "group.id": group_id, "enable.auto.commit": False, "isolation.level": "read_committed",
            "reconnect.backoff.max.ms": 1000}, logger=client_log)
        self._partitions: list[Any] = []
        self._partitions_at = float("-inf")

    def _topic_partitions(self) -> list[Any]:
        if time.monotonic() - self._partitions_at > _METADATA_EVERY_S or not self._partitions:
            found = []
            for topic in self.topics:
                meta = self.consumer.list_topics(topic, timeout=self.timeout_s).topics.get(topic)
                if meta is not None and meta.error is None:
                    found.extend(self._rdkafka.TopicPartition(topic, p) for p in sorted(meta.partitions))
            self._partitions, self._partitions_at = found, time.monotonic()
        return self._partitions

    def __call__(self) -> dict[str, int]:
        """``{"topic:partition": next offset}`` of every partition the group committed (empty: none)."""
        tps = self._topic_partitions()
        if not tps:
            return {}
        return self._rdkafka.committed_offsets(self.consumer, tps, self.timeout_s)

    def close(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except Exception:  # a client of a broker that went away may fail to close: dropped anyway
                log.debug("closing the offsets consumer failed", exc_info=True)


class PollingWatcher:
    """What every watcher has: :attr:`current`, a look every ``poll_interval_s`` in a daemon thread,
    the last error, and the counters of ``GET /healthz``. A subclass defines :meth:`poll`,
    :meth:`close` and :meth:`no_model_sentence`.

    :attr:`current` is None until there is state to look at, then an object with ``ready``,
    ``model_for(event)`` (the :class:`CommittedModel` that answers that event, or None),
    ``describe()`` (``GET /model``) and ``health()``; it is replaced, never changed, by one
    assignment.
    """

    def __init__(self, poll_interval_s: float):
        self.poll_interval_s = poll_interval_s
        self.current: Any = None
        self.swaps = 0
        self.polls = 0
        self.last_error: str | None = None
        self.last_poll_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> bool:
        """Look once; swap to newly committed state if there is some. True if it swapped."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the Kafka clients (the watcher's thread has stopped)."""

    def no_model_sentence(self, event: Event | None = None) -> str:
        """Why there is nothing to serve (``event`` from) yet, in one sentence (a 503's detail)."""
        raise NotImplementedError

    def _safe_poll(self) -> None:
        try:
            self.polls += 1
            self.last_poll_at = time.time()
            self.poll()
            self.last_error = None
        except Exception as exc:  # Kafka away, a snapshot pruned under us: try again next time
            self._failed(f"{type(exc).__name__}: {exc}")

    def _failed(self, text: str) -> None:
        if text != self.last_error:
            log.warning("model watcher: %s (the served model stays as it was)", text)
        self.last_error = text

    def start(self) -> "PollingWatcher":
        """Look once now, then every ``poll_interval_s`` in a daemon thread."""
        self._safe_poll()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="eventml-serve-watcher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            self._safe_poll()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.close()

    def status(self) -> dict[str, Any]:
        """The watcher's part of ``GET /healthz``."""
        return {"polls": self.polls, "swaps": self.swaps, "last_poll_at": self.last_poll_at,
                "last_error": self.last_error, "poll_interval_s": self.poll_interval_s}


class ModelWatcher(PollingWatcher):
    """Keeps :attr:`current` the latest committed model of the live updater of ``state_dir``.

    Parameters
    ----------
    state_dir
        The live updater's state directory (its snapshots and ``updater.json``).
    kafka
        The :class:`~eventml.kafka.settings.KafkaSettings` of the updater's cluster.
    poll_interval_s
        Seconds between two looks at Kafka's committed offsets and the folder.
    committed_offsets
        A callable returning the committed offsets (tests and other sources of truth); default:
        the updater's consumer group in Kafka, found from ``updater.json``.
    """

    def __init__(self, state_dir: str | os.PathLike, kafka: Any, poll_interval_s: float = 0.2,
                 committed_offsets: Any = None):
        super().__init__(poll_interval_s)
        self.state_dir = Path(state_dir)
        self.kafka = kafka
        self.identity: dict[str, Any] | None = None
        self._committed = committed_offsets
        self._own_reader = committed_offsets is None

    def _reader(self) -> Any:
        if self._committed is None:
            identity = read_updater_identity(self.state_dir)
            if identity is None:
                return None  # the updater has not started yet
            self.identity = identity
            topics = [t for t in (identity.get("events_topic"), identity.get("labels_topic")) if t]
            self._committed = KafkaCommittedOffsets(self.kafka, group_id_of(identity["name"]), topics)
        return self._committed

    def poll(self) -> bool:
        """Look once; swap to a newly committed snapshot if there is one. True if it swapped."""
        reader = self._reader()
        if reader is None:
            return False
        committed = reader()
        if not committed:
            return False  # nothing committed yet: nothing to serve
        current = self.current
        if current is not None and current.offsets == committed:
            return False
        path = find_snapshot(self.state_dir, committed)
        if path is None:
            # the commit is seen before the folder shows its snapshot (another file system), or the
            # folder is not the updater's: keep serving what was committed before
            raise SnapshotError(f"the committed offsets {committed} have no snapshot in {self.state_dir} yet")
        if current is not None and path.name == current.snapshot:
            return False
        try:
            written_at = path.stat().st_mtime
            snapshot = load_snapshot(path)
        except (FileNotFoundError, SnapshotError):
            if path.exists():
                raise
            log.debug("%s was pruned by a newer commit while being read; looking again", path.name)
            return self.poll()  # the updater committed again meanwhile: the newer snapshot is there
        if snapshot.offsets != committed:
            raise SnapshotError(f"snapshot {path.name} is for offsets {snapshot.offsets}, not the committed {committed}")
        model = CommittedModel.of_state(snapshot.state, snapshot.sequence, snapshot.offsets, path.name, written_at)
        if current is not None and model.sequence < current.sequence:
            log.warning("the committed state went back from transaction %d to %d (a new updater on this "
                        "state directory?); serving it", current.sequence, model.sequence)
        self.current = model  # the swap: one reference assignment
        self.swaps += 1
        log.info("serving %s: model version %d (transaction %d)", path.name, model.model_version, model.sequence)
        return True

    def close(self) -> None:
        if self._own_reader and isinstance(self._committed, KafkaCommittedOffsets):
            self._committed.close()
            self._committed = None

    def no_model_sentence(self, event: Event | None = None) -> str:
        if self.identity is None:
            why = f"no live updater has started in {self.state_dir} yet"
        else:
            why = f"live updater {self.identity['name']!r} has not committed a transaction yet"
        error = f" (last error: {self.last_error})" if self.last_error else ""
        return f"no committed model to serve: {why}{error}; try again once it has committed one"

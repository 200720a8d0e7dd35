"""Where a live updater keeps each task's state: a state directory or a state topic.

Both stores take part in the same numbered commit (:class:`~eventml.live.commit.TransactionCommit`):

- :meth:`~StateStore.write` (step 1) saves a task's state for the offsets it is about to commit,
  before the commit: a snapshot file written atomically (:class:`DirectoryStore`), or records produced
  inside the open transaction (:class:`TopicStore`, so they commit with the offsets or not at all);
- :meth:`~StateStore.committed` (step 3) runs after the commit (the directory deletes older snapshots);
- :meth:`~StateStore.load` reads back the state of exactly the offsets the consumer group committed, and
  refuses, in one sentence, anything else (a snapshot ahead of them belongs to an aborted transaction;
  state read from Kafka is authenticated before it is unpickled).

A directory holds one task (the single updater's, which reads every input partition); a state topic
holds one task per partition of its own (a group's tasks, or the global scope's one task).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from eventml.errors import ConfigError, EventmlError, SnapshotError
from eventml.kafka.settings import KafkaSettings
from eventml.live.snapshots import find_snapshot, list_snapshots, load_snapshot, prune_snapshots, write_snapshot
from eventml.live.state_topic import RESTORE_CONSUMER_CONFIG, StateTopic, state_topic_config

__all__ = ["StateStore", "DirectoryStore", "TopicStore"]

log = logging.getLogger("eventml.live")


class StateStore(Protocol):
    """What the engine asks of a state store (see the module docstring)."""

    def open(self, clients: Any, kafka: KafkaSettings, partitions: int) -> None:
        """Get ready to load and write state for an events topic of ``partitions`` partitions."""

    def load(self, task: Any, committed: dict[str, int], timeout_s: float) -> Any:
        """The :class:`~eventml.live.state.UpdaterState` committed with ``committed``, or None (a fresh
        start); raises :class:`~eventml.errors.SnapshotError` on any mismatch."""

    def write(self, task: Any, send: Any) -> None:
        """Step 1 of a commit: save the task's state (``state.sequence`` already counts this commit)."""

    def committed(self, task: Any) -> None:
        """Step 3 of a commit: the state written in step 1 is now the committed one."""

    def close(self) -> None:
        """Release what :meth:`open` made."""


class DirectoryStore:
    """The state of one task in a folder of snapshots (see :mod:`eventml.live.snapshots`), named after the
    offsets they follow; not fsynced (see there), so after an OS crash a restart may refuse."""

    def __init__(self, folder: str | Path, group_id: str):
        self.folder = Path(folder)
        self.group_id = group_id  # the consumer group whose offsets the snapshots follow, for the messages
        self._written: dict[str, Path] = {}

    def __repr__(self) -> str:
        return f"DirectoryStore({str(self.folder)!r})"

    def open(self, clients: Any, kafka: KafkaSettings, partitions: int) -> None:
        pass

    def load(self, task: Any, committed: dict[str, int], timeout_s: float) -> Any:
        folder = self.folder
        if not committed:
            later = [p for p in list_snapshots(folder) if int(p.name.split("-")[1]) > 1]
            if later:
                raise SnapshotError(
                    f"consumer group {self.group_id!r} has no committed offsets, but {folder} holds "
                    f"snapshot {later[-1].name} of a later transaction: the offsets were deleted or expired. "
                    "Resuming would repeat predictions; use a new state_dir to start over.")
            return None
        path = find_snapshot(folder, committed)
        if path is None:
            raise SnapshotError(
                f"consumer group {self.group_id!r} committed offsets {committed}, but {folder} has no "
                "snapshot for them: the machine stopped (an OS crash or a power loss) before the snapshot reached "
                "the disk, since snapshots are not fsynced, or the state directory is not the one this updater "
                "wrote; resuming from anything else would repeat or skip predictions, so start over with a new "
                "state_dir (the predictions already committed stay in Kafka)")
        snapshot = load_snapshot(path)
        if snapshot.offsets != committed:
            raise SnapshotError(f"snapshot {path} is for offsets {snapshot.offsets}, not the committed {committed}")
        log.info("restored %s", path.name)
        return snapshot.state

    def write(self, task: Any, send: Any) -> None:
        state = task.state
        self._written[task.key] = write_snapshot(self.folder, state.sequence, state.offsets, state)

    def committed(self, task: Any) -> None:
        path = self._written.pop(task.key, None)
        if path is not None:
            prune_snapshots(self.folder, keep=path)

    def close(self) -> None:
        self._written.clear()


class TopicStore:
    """Each task's state in its partition of a compacted state topic, chunked and signed (see
    :mod:`eventml.live.state_topic`), written inside the transaction that commits its offsets."""

    def __init__(self, topic: str, key: str | bytes | None, reader_group: str):
        self.topic = topic
        self.state_topic = StateTopic(topic, key)  # checks the key now: one sentence before anything runs
        self.reader_group = reader_group
        self._reader: Any = None

    def __repr__(self) -> str:
        return f"TopicStore({self.topic!r})"

    def open(self, clients: Any, kafka: KafkaSettings, partitions: int) -> None:
        from eventml.kafka import rdkafka
        from eventml.kafka.topics import create_topic

        create_topic(self.topic, partitions, kafka=kafka, topic_config=state_topic_config())
        if len(clients.partitions(self.topic)) < partitions:
            raise ConfigError(f"state topic {self.topic!r} has fewer partitions than the events topic's "
                              f"{partitions}; it was made for another events topic: use another group name")
        self.close()
        self._reader = rdkafka.consumer(kafka, {**RESTORE_CONSUMER_CONFIG, "group.id": self.reader_group})

    def load(self, task: Any, committed: dict[str, int], timeout_s: float) -> Any:
        # the state of exactly the committed offsets (authenticated before it is unpickled), else a refusal
        snapshot = self.state_topic.load(self._reader, task.key, task.number, timeout_s, committed=committed)
        return None if snapshot is None else snapshot.state

    def write(self, task: Any, send: Any) -> None:
        state = task.state
        for key, value, headers in self.state_topic.records(task.key, task.number, state.sequence, state.offsets,
                                                             state):
            if not send(self.topic, value, key, task.number, headers):
                raise EventmlError(f"a state record of {task.key} is too large for the producer")

    def committed(self, task: Any) -> None:
        pass

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception:
                log.debug("closing the state reader failed", exc_info=True)

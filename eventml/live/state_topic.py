"""Live-updater state kept in a compacted Kafka topic: authenticated, in chunks, any size.

In group mode each input partition is a *task* with its own model. Its state is written to a
compacted *state topic* inside the same Kafka transaction as the task's predictions and input
offsets, so any updater, on any machine, resumes the task where the last committed transaction
left it. This module turns a state into records (:meth:`StateTopic.records`; the caller produces
them in its own transaction) and reads the newest one back (:meth:`StateTopic.load`). It owns no
producer.

Record layout, on state-topic partition ``p`` (a task's records always go to one partition):

=================================  ===================================================================
key                                value
=================================  ===================================================================
``<task>/chunk/000000`` ...        a slice of at most ``chunk_bytes`` of the state's bytes: the line
                                   ``eventml-state 1`` then a pickle of the state
``<task>/manifest`` (last)         ``eventml-state-manifest 1``, a line with the HMAC-SHA256 (hex), then
                                   JSON: ``format``, ``topic``, ``partition``, ``task``, ``sequence``,
                                   ``offsets``, ``size`` and the sha256 of every chunk, in order
=================================  ===================================================================

Headers say what a record is (``eventml-state``: ``chunk`` or ``manifest``), its ``eventml-sequence``
and, for a chunk, its ``eventml-sha256``; they are informative: :meth:`~StateTopic.load` trusts
only the manifest's signed text. Keys are per task and chunk index, so compaction keeps the newest
chunk of each index and the newest manifest; a smaller state leaves older chunks of higher
indices behind, which the manifest does not name.

Security
--------
The HMAC covers the manifest's whole JSON text: the state topic, partition, task, sequence,
offsets, size and chunk digests; the chunk digests then cover every byte that is unpickled.
:meth:`~StateTopic.load` checks the HMAC *before* it reads a chunk, then every chunk's sha256,
and unpickles only then. Guaranteed: a writer to the state topic without the key cannot make an
updater unpickle bytes of their choosing, nor move a task's state to another task, partition or
state topic. Not guaranteed: such a writer can delete state (a tombstone, or a record that fails
the checks, makes the load refuse or find nothing) and can *replay* an older, genuine snapshot of
the same task. Both are caught by comparing the snapshot's offsets with the offsets the consumer
group committed (``load(..., committed=...)`` does it): the transaction that wrote the state
committed exactly those offsets. Anyone with the key can make an updater run code.

Examples
--------
>>> topic = StateTopic("model-state", b"a secret of 16 bytes or more")
>>> records = topic.records("events:0", 0, 1, {"events:0": 500}, {"model": "any picklable state"})
>>> [key for key, value, headers in records]
[b'events:0/chunk/000000', b'events:0/manifest']
>>> snapshot = topic.from_records("events:0", 0, [(i, key, value) for i, (key, value, _) in enumerate(records)])
>>> snapshot.sequence, snapshot.offsets
(1, {'events:0': 500})
>>> print(snapshot.state["model"])
any picklable state
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import pickle
import time
from collections.abc import Iterable
from typing import Any

from eventml.errors import ConfigError, SnapshotError
from eventml.kafka.rdkafka import KafkaException, TopicPartition
from eventml.live.clients import watermarks
from eventml.live.keys import STATE_KEY_ENV, state_key
from eventml.live.snapshots import Snapshot
from eventml.validation import int_in_range

__all__ = ["STATE_KEY_ENV", "FORMAT", "RESTORE_CONSUMER_CONFIG", "StateTopic", "state_key", "state_topic_config"]

#: The state format this eventml writes and reads.
FORMAT = 2  # 1: the state of one model per task
#: The largest chunk: librdkafka's ``message.max.bytes`` and the broker's default ``max.message.bytes``
#: (1 MiB) leave room for the key, headers and batch overhead.
MAX_CHUNK_BYTES = 960 * 1024
#: librdkafka settings of a consumer for :meth:`StateTopic.load` (give it a ``group.id`` too): committed
#: records only, and a short ``fetch.wait.max.ms``, since each window read back from the end starts
#: after the broker answers the fetch librdkafka sent at the end of the last one (its default holds
#: that fetch 500 ms).
RESTORE_CONSUMER_CONFIG = {"isolation.level": "read_committed", "enable.auto.commit": False,
                           "fetch.wait.max.ms": 10}
_PAYLOAD_HEADER = f"eventml-state {FORMAT}\n".encode()
_MANIFEST_HEADER = f"eventml-state-manifest {FORMAT}\n".encode()
_FIRST_WINDOW = 32  # offsets read first, back from the end; doubled until the snapshot is covered
_BATCH = 500


def state_topic_config() -> dict[str, str]:
    """Topic settings for a state topic, for ``create_topic(..., topic_config=state_topic_config())``.

    Compacted, with segments that roll every 10 minutes and a cleaner that runs when a tenth of
    the log is superseded (or after 15 minutes), so a restore reads little more than one snapshot
    per task. Deleted state (tombstones) stays visible for a day. ``max.message.bytes`` keeps the
    broker's default: the chunks fit under it.

    Examples
    --------
    >>> state_topic_config()["cleanup.policy"]
    'compact'
    """
    return {
        "cleanup.policy": "compact",
        "segment.ms": str(10 * 60 * 1000),
        "min.cleanable.dirty.ratio": "0.1",
        "min.compaction.lag.ms": "0",
        "max.compaction.lag.ms": str(15 * 60 * 1000),
        "delete.retention.ms": str(24 * 60 * 60 * 1000),
    }


@dataclasses.dataclass
class _Stretch:
    """What a stretch of the partition holds for one task: the newest manifest record (offset, value;
    None = a tombstone), the newest chunk of each index before it, and of each index in the stretch."""

    manifest: tuple[int, bytes | None] | None = None
    before: dict[int, tuple[int, bytes | None]] = dataclasses.field(default_factory=dict)
    chunks: dict[int, tuple[int, bytes | None]] = dataclasses.field(default_factory=dict)


class StateTopic:
    """Turns a task's state into authenticated records of a state topic, and reads the newest back.

    Parameters
    ----------
    topic
        The state topic (compacted: see :func:`state_topic_config`).
    key
        The HMAC key (see :func:`state_key`); None reads ``$EVENTML_STATE_KEY``. Every updater of a
        group needs the same one.
    chunk_bytes
        The largest record value; a state is split into as many chunks as it needs. At most 960 KiB,
        so records fit the broker's default 1 MiB limit.

    Examples
    --------
    >>> StateTopic("model-state", "00112233445566778899aabbccddeeff")
    StateTopic('model-state', chunk_bytes=524288)
    """

    def __init__(self, topic: str, key: str | bytes | None = None, chunk_bytes: int = 512 * 1024):
        if not isinstance(topic, str) or not topic:
            raise ConfigError(f"topic must be a topic name, got {topic!r}")
        self.topic = topic
        self._key = state_key(key)
        self.chunk_bytes = int_in_range("chunk_bytes", chunk_bytes, 1, MAX_CHUNK_BYTES)

    def __repr__(self) -> str:
        return f"StateTopic({self.topic!r}, chunk_bytes={self.chunk_bytes})"

    def __reduce__(self):
        raise TypeError("a StateTopic is not pickled: it holds the state key")

    # ------------------------------------------------------------------ writing

    def records(self, task: str, partition: int, sequence: int, offsets: dict[str, int],
                state: Any) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
        """The records that keep ``state``: ``(key, value, headers)``, the manifest last.

        Produce them all, in order, to ``partition`` of the state topic, inside the transaction
        that commits ``offsets``, e.g. ``producer.produce(topic, value, key, partition=partition,
        headers=headers)``.

        Parameters
        ----------
        task
            The task's name (e.g. ``"events:3"``), the same on every restart.
        partition
            The state-topic partition the records go to (and are read from).
        sequence
            The number of the transaction (grows by one per commit).
        offsets
            ``{"topic:partition": next offset}`` of the task's input partitions, as committed.
        state
            Any picklable object.

        Examples
        --------
        >>> topic = StateTopic("model-state", b"a secret of 16 bytes or more", chunk_bytes=1024)
        >>> records = topic.records("events:3", 3, 7, {"events:3": 10}, bytes(3000))
        >>> [(key.decode(), len(value)) for key, value, _ in records[:-1]]
        [('events:3/chunk/000000', 1024), ('events:3/chunk/000001', 1024), ('events:3/chunk/000002', 986)]
        """
        _check_task(task)
        partition = int_in_range("partition", partition, 0)
        sequence = int_in_range("sequence", sequence, 0)
        offsets = _check_offsets(offsets)
        payload = _PAYLOAD_HEADER + pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        chunks = [payload[i:i + self.chunk_bytes] for i in range(0, len(payload), self.chunk_bytes)]
        digests = [hashlib.sha256(chunk).hexdigest() for chunk in chunks]
        body = json.dumps({"format": FORMAT, "topic": self.topic, "partition": partition, "task": task,
                           "sequence": sequence, "offsets": offsets, "size": len(payload), "chunks": digests},
                          sort_keys=True, separators=(",", ":")).encode()
        seq = str(sequence).encode()
        out = [(_chunk_key(task, i), chunk, [("eventml-state", b"chunk"), ("eventml-sequence", seq),
                                             ("eventml-sha256", digest.encode())])
               for i, (chunk, digest) in enumerate(zip(chunks, digests))]
        value = _MANIFEST_HEADER + self._sign(body).encode() + b"\n" + body
        out.append((_manifest_key(task), value, [("eventml-state", b"manifest"), ("eventml-sequence", seq)]))
        return out

    def _sign(self, body: bytes) -> str:
        return hmac.new(self._key, _MANIFEST_HEADER + body, hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ reading

    def load(self, consumer: Any, task: str, partition: int, timeout_s: float, *,
             committed: dict[str, int] | None = None) -> Snapshot | None:
        """The newest snapshot of ``task`` in ``partition`` of the state topic, or None if it has none.

        Reads back from the end of the partition, in windows that double until the newest
        manifest of the task and its chunks are covered, so a long uncompacted tail is not read
        from its start. The manifest's HMAC is checked before any chunk is read, every chunk's
        sha256 next, and only then is the state unpickled.

        Parameters
        ----------
        consumer
            A confluent-kafka consumer with ``isolation.level=read_committed`` and no
            subscription, e.g. ``rdkafka.consumer(kafka, {**RESTORE_CONSUMER_CONFIG, "group.id":
            ...})``; with librdkafka's default ``fetch.wait.max.ms`` (500) every window but the
            first, and every load after the first, waits up to 500 ms. Its assignment is replaced,
            and it has none when this returns; nothing is committed.
        task, partition
            As given to :meth:`records`.
        timeout_s
            How long the whole load may take.
        committed
            The offsets the consumer group committed for the task's input partitions, if the
            caller wants them checked (recommended): the load then waits, within ``timeout_s``,
            for the snapshot with exactly these offsets (the transaction that committed them may
            still be writing its markers), and refuses an older one (e.g. a replayed snapshot) or
            no state at all when offsets were committed. ``{}`` means none were committed: then
            any state found is refused as belonging to an earlier run.

        Raises
        ------
        SnapshotError
            If the newest manifest fails authentication, names another task, partition or topic,
            is of another format, if a chunk is missing or does not match its digest, if the
            state cannot be unpickled, if the snapshot's offsets are not ``committed``, or if the
            partition could not be read within ``timeout_s``. The message names the topic and
            partition.
        KafkaException
            If the consumer fails (e.g. the state topic does not exist).
        """
        _check_task(task)
        partition = int_in_range("partition", partition, 0)
        deadline = time.monotonic() + timeout_s
        tp = TopicPartition(self.topic, partition)
        try:
            snapshot = self._load_once(consumer, tp, task, deadline)
            while committed is not None and not _matches(snapshot, committed):
                # the commit of these offsets may have returned before its markers were written: read again
                if time.monotonic() + 0.05 >= deadline:
                    raise SnapshotError(self._mismatch(task, partition, snapshot, committed))
                time.sleep(0.05)
                try:
                    snapshot = self._load_once(consumer, tp, task, deadline)
                except _ReadTimeout:
                    raise SnapshotError(self._mismatch(task, partition, snapshot, committed)) from None
            return snapshot
        finally:
            consumer.unassign()

    def _mismatch(self, task: str, partition: int, snapshot: Snapshot | None, committed: dict[str, int]) -> str:
        where = f"{self._where(partition)} task {task!r}"
        if snapshot is None:
            return (f"{where} has no state, but its consumer group committed offsets {committed}: the state was "
                    "deleted or never written; refusing to start the task from scratch")
        if not committed:
            return (f"{where} has state (sequence {snapshot.sequence}, offsets {snapshot.offsets}) but its consumer "
                    "group committed no offsets: it belongs to an earlier run; delete it or use a new state topic")
        return (f"{where} has state for offsets {snapshot.offsets} (sequence {snapshot.sequence}), not the offsets "
                f"its consumer group committed, {committed}: an older snapshot was replayed, or the state of the "
                "last commit is missing; refusing to resume from it")

    def _load_once(self, consumer: Any, tp: TopicPartition, task: str, deadline: float) -> Snapshot | None:
        low, end = watermarks(consumer, tp, deadline)
        window, stop = _FIRST_WINDOW, end
        manifest, chunks, missing = None, {}, set()
        while stop > low:
            start = max(low, stop - window)
            stretch = _collect(task, self._read(consumer, tp, start, stop, deadline))
            if manifest is None and stretch.manifest is not None:
                offset, value = stretch.manifest
                if value is None:  # deleted
                    return None
                manifest = self._verify(value, task, tp.partition, offset)
                missing = set(range(len(manifest["chunks"])))
                found = stretch.before
            else:
                found = stretch.chunks
            for index in list(missing):
                if index in found:
                    chunks[index] = found[index]
                    missing.discard(index)
            if manifest is not None and not missing:
                break
            stop, window = start, window * 2
        if manifest is None:
            return None
        return self._unpickle(manifest, chunks, task, tp.partition)

    def _read(self, consumer: Any, tp: TopicPartition, start: int, stop: int, deadline: float):
        """The records of the partition in ``[start, stop)``: ``(offset, key, value)``, oldest first."""
        consumer.assign([TopicPartition(tp.topic, tp.partition, start)])
        while True:
            # what the consumer has now, else the first record within a moment (consume(n, timeout) would
            # wait for n records)
            messages = consumer.consume(_BATCH, 0) or consumer.consume(1, max(0.0, min(0.2, deadline - time.monotonic())))
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.fatal():
                        raise KafkaException(error)
                    continue  # end of partition, or a broker gone for a moment (librdkafka retries)
                if message.topic() != tp.topic or message.partition() != tp.partition:
                    continue
                offset = message.offset()
                if offset >= stop:
                    return
                if offset >= start:
                    yield offset, message.key(), message.value()
            # the position passes transaction markers too, so it reaches `stop` with no record there
            if consumer.position([tp])[0].offset >= stop:
                return
            if time.monotonic() >= deadline:
                raise _ReadTimeout(f"{self._where(tp.partition)} could not be read from offset {start} to {stop} "
                                    "within the load's timeout; is the broker up?")

    def from_records(self, task: str, partition: int, records: Iterable[tuple[int, bytes | None, bytes | None]]
                     ) -> Snapshot | None:
        """The newest snapshot of ``task`` among ``records`` read from ``partition``, or None.

        The checks of :meth:`load`, on records read by any client: ``(offset, key, value)`` of
        every committed record of the partition from some offset on, oldest first (a
        ``read_committed`` reader's view).
        """
        _check_task(task)
        stretch = _collect(task, records)
        if stretch.manifest is None or stretch.manifest[1] is None:
            return None
        manifest = self._verify(stretch.manifest[1], task, partition, stretch.manifest[0])
        return self._unpickle(manifest, stretch.before, task, partition)

    # ------------------------------------------------------------------ checking

    def _where(self, partition: int) -> str:
        return f"state topic {self.topic!r} partition {partition}"

    def _verify(self, value: bytes, task: str, partition: int, offset: int) -> dict:
        """The manifest's fields, once its HMAC and what it names are checked; nothing is unpickled."""
        where = f"{self._where(partition)}: the manifest of task {task!r} at offset {offset}"
        head, _, rest = value.partition(b"\n")
        if head + b"\n" != _MANIFEST_HEADER:
            if head.startswith(b"eventml-state-manifest "):
                found = head.decode("ascii", "replace").split()[-1]
                raise SnapshotError(f"{where} has state format {found}, and this eventml reads format {FORMAT}; "
                                    "use the eventml that wrote it, or a new state topic to start over")
            raise SnapshotError(f"{where} is not an eventml state manifest; refusing to unpickle it")
        mac, _, body = rest.partition(b"\n")
        expected = self._sign(body).encode()
        if not hmac.compare_digest(mac, expected):
            raise SnapshotError(f"{where} failed authentication (written without this updater's {STATE_KEY_ENV}, "
                                "or changed since); refusing to unpickle it")
        try:
            manifest = json.loads(body)
            named = (manifest["topic"], manifest["partition"], manifest["task"])
            if not (isinstance(manifest["sequence"], int) and isinstance(manifest["size"], int)
                    and isinstance(manifest["offsets"], dict) and isinstance(manifest["chunks"], list)):
                raise TypeError
        except (ValueError, KeyError, TypeError):  # signed with our key, yet not ours: refuse it all the same
            raise SnapshotError(f"{where} is authentic but unreadable; refusing to unpickle it") from None
        if named != (self.topic, partition, task):
            raise SnapshotError(f"{where} is authentic but belongs to task {named[2]!r} of state topic "
                                f"{named[0]!r} partition {named[1]}; refusing to unpickle it")
        return manifest

    def _unpickle(self, manifest: dict, chunks: dict[int, tuple[int, bytes | None]], task: str,
                  partition: int) -> Snapshot:
        where = f"{self._where(partition)}: the state of task {task!r} (sequence {manifest['sequence']})"
        parts = []
        for index, digest in enumerate(manifest["chunks"]):
            offset, value = chunks.get(index, (None, None))
            if value is None:
                raise SnapshotError(f"{where} is missing chunk {index} of {len(manifest['chunks'])}; "
                                    "refusing to unpickle it")
            if hashlib.sha256(value).hexdigest() != digest:
                raise SnapshotError(f"{where} has a chunk {index} at offset {offset} that does not match its "
                                    "manifest's digest; refusing to unpickle it")
            parts.append(value)
        payload = b"".join(parts)
        if len(payload) != manifest["size"] or not payload.startswith(_PAYLOAD_HEADER):
            raise SnapshotError(f"{where} is not an eventml state of format {FORMAT}; refusing to unpickle it")
        try:
            state = pickle.loads(memoryview(payload)[len(_PAYLOAD_HEADER):])
        except Exception as exc:  # authentic, yet unreadable here (e.g. a class this eventml lacks)
            raise SnapshotError(f"{where} is authentic but cannot be unpickled ({type(exc).__name__}: {exc}); "
                                "use the eventml and learners that wrote it") from None
        return Snapshot(manifest["sequence"], dict(manifest["offsets"]), state)


class _ReadTimeout(SnapshotError):
    """The state topic could not be read within the load's timeout."""


def _matches(snapshot: Snapshot | None, committed: dict[str, int]) -> bool:
    return snapshot.offsets == committed if snapshot is not None else not committed


def _manifest_key(task: str) -> bytes:
    return f"{task}/manifest".encode()


def _chunk_key(task: str, index: int) -> bytes:
    return f"{task}/chunk/{index:06d}".encode()


def _collect(task: str, records: Iterable[tuple[int, bytes | None, bytes | None]]) -> _Stretch:
    """The newest manifest of ``task`` in ``records`` (oldest first) and the chunks around it."""
    manifest_key, chunk_prefix = _manifest_key(task), f"{task}/chunk/".encode()
    stretch = _Stretch()
    for offset, key, value in records:
        if key is None:
            continue
        if key == manifest_key:
            stretch.manifest = (offset, value)
            stretch.before = dict(stretch.chunks)
        elif key.startswith(chunk_prefix):
            index = key[len(chunk_prefix):]
            if index.isdigit():  # not another task's key that starts with this one's prefix
                stretch.chunks[int(index)] = (offset, value)
    return stretch


def _check_task(task: Any) -> None:
    if not isinstance(task, str) or not task:
        raise ConfigError(f"task must be a non-empty string (e.g. 'events:3'), got {task!r}")


def _check_offsets(offsets: Any) -> dict[str, int]:
    if not isinstance(offsets, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in offsets.items()):
        raise ConfigError(f"offsets must be {{'topic:partition': next offset}}, got {offsets!r}")
    return {key: int(value) for key, value in offsets.items()}

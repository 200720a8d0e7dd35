"""Live-updater state in a compacted Kafka topic: records out, the newest authentic snapshot back.

Unit tests run the parsing and the windowed read on in-memory records (a fake consumer that only
hands out records); integration tests write in real transactions to a real broker.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import time
import uuid

import pytest

from eventml.errors import ConfigError, SnapshotError
from eventml.live.state_topic import (MAX_CHUNK_BYTES, RESTORE_CONSUMER_CONFIG, STATE_KEY_ENV, StateTopic,
                                      state_key, state_topic_config)

KEY = b"k" * 32
OTHER_KEY = b"x" * 32


class SideEffect:
    """A pickle whose unpickling writes a file: proof that it was unpickled."""

    def __init__(self, path: pathlib.Path):
        self.path = path

    def __reduce__(self):
        return pathlib.Path.write_text, (self.path, "unpickled")


def numbered(records, start=0, step=1):
    """``(offset, key, value)`` of records as a reader would see them."""
    return [(start + i * step, key, value) for i, (key, value, _) in enumerate(records)]


# ---------------------------------------------------------------------- the key


def test_state_key_comes_from_the_argument_else_the_environment(monkeypatch):
    monkeypatch.setenv(STATE_KEY_ENV, "a passphrase of some length")
    assert state_key() == b"a passphrase of some length"
    assert state_key(b"\x00" * 16) == b"\x00" * 16
    assert state_key("  " + "ab" * 16 + "\n") == bytes.fromhex("ab" * 16)  # hex, as from secrets.token_hex


def test_a_missing_key_says_how_to_set_one(monkeypatch):
    monkeypatch.delenv(STATE_KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=f"set {STATE_KEY_ENV} to the same secret of at least 16 bytes"):
        state_key()


def test_a_short_key_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv(STATE_KEY_ENV, "tiny-secret")
    with pytest.raises(ConfigError) as error:
        state_key()
    assert "tiny-secret" not in str(error.value) and "11 bytes" in str(error.value)
    assert len(state_key("ab" * 15)) == 30  # fewer than 32 hex digits are text
    with pytest.raises(ConfigError, match="is 15 bytes"):
        state_key(bytes(15))


def test_the_key_is_in_no_repr_and_is_never_pickled():
    topic = StateTopic("state", "my-very-secret-state-key")
    assert "secret" not in repr(topic) and "secret" not in str(vars(topic).get("topic"))
    with pytest.raises(TypeError, match="state key"):
        pickle.dumps(topic)


def test_chunk_bytes_must_fit_the_brokers_default_message_size():
    with pytest.raises(ConfigError, match="chunk_bytes"):
        StateTopic("state", KEY, chunk_bytes=2 * 1024 * 1024)
    assert StateTopic("state", KEY, chunk_bytes=MAX_CHUNK_BYTES).chunk_bytes == MAX_CHUNK_BYTES


def test_state_topic_config_is_compacted_and_compacts_soon():
    config = state_topic_config()
    assert config["cleanup.policy"] == "compact"
    assert int(config["segment.ms"]) <= 3_600_000 and float(config["min.cleanable.dirty.ratio"]) <= 0.5
    assert all(isinstance(v, str) for v in config.values())


# ---------------------------------------------------------------------- records and parsing


def test_a_state_comes_back_from_its_chunks_and_manifest():
    topic = StateTopic("state", KEY, chunk_bytes=1000)
    state = {"model": list(range(2000)), "name": "mine"}
    records = topic.records("events:0", 0, 3, {"events:0": 42}, state)
    assert len(records) > 3 and all(len(value) <= 1000 for _, value, _ in records[:-1])
    assert records[-1][0] == b"events:0/manifest"
    assert dict(records[0][2])["eventml-state"] == b"chunk" and dict(records[-1][2])["eventml-state"] == b"manifest"
    snapshot = topic.from_records("events:0", 0, numbered(records))
    assert (snapshot.sequence, snapshot.offsets, snapshot.state) == (3, {"events:0": 42}, state)


def test_the_newest_sequence_wins_and_chunks_of_a_larger_older_state_are_ignored():
    topic = StateTopic("state", KEY, chunk_bytes=500)
    old = topic.records("t", 0, 1, {"in:0": 10}, bytes(5000))  # ~11 chunks
    new = topic.records("t", 0, 2, {"in:0": 20}, b"small")  # one chunk
    snapshot = topic.from_records("t", 0, numbered(old + new))
    assert (snapshot.sequence, snapshot.offsets, snapshot.state) == (2, {"in:0": 20}, b"small")


def test_two_tasks_sharing_a_partition_are_kept_apart():
    topic = StateTopic("state", KEY, chunk_bytes=64)
    a = topic.records("a", 0, 1, {"in:0": 1}, "state of a" * 20)
    b = topic.records("a/chunk/1", 0, 5, {"in:1": 2}, "state of b" * 20)  # a name that starts like a's keys
    interleaved = [r for pair in zip(a, b) for r in pair] + a[len(b):] + b[len(a):]
    assert topic.from_records("a", 0, numbered(interleaved)).state == "state of a" * 20
    assert topic.from_records("a/chunk/1", 0, numbered(interleaved)).state == "state of b" * 20
    assert topic.from_records("c", 0, numbered(interleaved)) is None


def test_a_tombstone_of_the_manifest_means_no_state():
    topic = StateTopic("state", KEY)
    records = numbered(topic.records("t", 0, 1, {}, "x")) + [(9, b"t/manifest", None)]
    assert topic.from_records("t", 0, records) is None


def test_a_state_of_another_key_is_refused_before_anything_is_unpickled(tmp_path):
    proof = tmp_path / "proof"
    forged = StateTopic("state", OTHER_KEY).records("t", 0, 9, {"in:0": 1}, SideEffect(proof))
    with pytest.raises(SnapshotError) as error:
        StateTopic("state", KEY).from_records("t", 0, numbered(forged))
    assert str(error.value) == (
        "state topic 'state' partition 0: the manifest of task 't' at offset 1 failed authentication (written "
        f"without this updater's {STATE_KEY_ENV}, or changed since); refusing to unpickle it")
    assert not proof.exists()
    pickle.loads(forged[0][1][len(b"eventml-state 1\n"):])  # the control: unpickling it has the side effect
    assert proof.exists()


def test_a_chunk_replaced_by_a_hostile_pickle_is_refused_before_it_is_unpickled(tmp_path):
    proof = tmp_path / "proof"
    topic = StateTopic("state", KEY)
    records = topic.records("t", 0, 1, {"in:0": 1}, {"model": 1})
    hostile = b"eventml-state 1\n" + pickle.dumps(SideEffect(proof))
    key, _, headers = records[0]
    with pytest.raises(SnapshotError, match="chunk 0 at offset 0 that does not match its manifest's digest; "
                                            "refusing to unpickle it"):
        topic.from_records("t", 0, numbered([(key, hostile, headers), records[1]]))
    assert not proof.exists()


def test_a_manifest_with_a_changed_byte_fails_authentication():
    topic = StateTopic("state", KEY)
    records = topic.records("t", 0, 1, {"in:0": 100}, "x")
    key, manifest, headers = records[-1]
    changed = manifest.replace(b'"in:0":100', b'"in:0":900')
    assert changed != manifest
    with pytest.raises(SnapshotError, match="failed authentication"):
        topic.from_records("t", 0, numbered([records[0], (key, changed, headers)]))


def test_a_manifest_of_another_task_partition_or_topic_is_refused():
    topic = StateTopic("state", KEY)
    other_task = topic.records("other", 0, 1, {"in:1": 1}, "x")
    moved = [(b"t/chunk/000000", other_task[0][1]), (b"t/manifest", other_task[1][1])]
    with pytest.raises(SnapshotError, match="authentic but belongs to task 'other' of state topic 'state' partition 0"):
        topic.from_records("t", 0, [(i, k, v) for i, (k, v) in enumerate(moved)])
    other_partition = topic.records("t", 1, 1, {"in:1": 1}, "x")
    with pytest.raises(SnapshotError, match="partition 1; refusing to unpickle it"):
        topic.from_records("t", 0, numbered(other_partition))
    other_topic = StateTopic("state-2", KEY).records("t", 0, 1, {"in:1": 1}, "x")
    with pytest.raises(SnapshotError, match="state topic 'state-2' partition 0"):
        topic.from_records("t", 0, numbered(other_topic))


def test_a_missing_chunk_is_refused():
    topic = StateTopic("state", KEY, chunk_bytes=100)
    records = topic.records("t", 0, 1, {}, bytes(1000))
    del records[3]
    with pytest.raises(SnapshotError, match=r"state topic 'state' partition 0: the state of task 't' \(sequence 1\) "
                                            r"is missing chunk 3 of \d+; refusing to unpickle it"):
        topic.from_records("t", 0, numbered(records))


def test_a_manifest_of_another_format_is_refused_with_its_version():
    topic = StateTopic("state", KEY)
    records = topic.records("t", 0, 1, {}, "x")
    key, manifest, headers = records[-1]
    with pytest.raises(SnapshotError, match="has state format 7, and this eventml reads format 2"):
        topic.from_records("t", 0, numbered([records[0], (key, manifest.replace(b"manifest 2", b"manifest 7"), headers)]))


# ---------------------------------------------------------------------- the windowed read, on a fake consumer


class Message:
    def __init__(self, topic, partition, offset, key, value):
        self._t, self._p, self._o, self._k, self._v = topic, partition, offset, key, value

    def error(self):
        return None

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def key(self):
        return self._k

    def value(self):
        return self._v


class FakeConsumer:
    """Hands out the committed records of one partition, with gaps where transaction markers are."""

    def __init__(self, topic, partition, records, end):
        self.topic, self.partition, self.records, self.end = topic, partition, records, end
        self.position_ = None
        self.delivered = 0

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        return 0, self.end

    def assign(self, tps):
        (tp,) = tps
        self.position_ = tp.offset

    def unassign(self):
        self.position_ = None

    def consume(self, n, timeout):
        out = [Message(self.topic, self.partition, o, k, v) for o, k, v in self.records if o >= self.position_][:n]
        self.position_ = out[-1].offset() + 1 if out else self.end
        self.delivered += len(out)
        return out

    def position(self, tps):
        (tp,) = tps
        return [type(tp)(tp.topic, tp.partition, self.position_)]


def transactions(topic, task, sequences, state_of, partition=0, start=0):
    """The records of one transaction per sequence, each followed by a commit marker's offset."""
    out, offset = [], start
    for sequence in sequences:
        for key, value, _ in topic.records(task, partition, sequence, {"in:0": sequence * 10}, state_of(sequence)):
            out.append((offset, key, value))
            offset += 1
        offset += 1  # the commit marker
    return out, offset


def test_load_reads_back_from_the_end_and_not_the_whole_tail():
    topic = StateTopic("state", KEY, chunk_bytes=1000)
    records, end = transactions(topic, "t", range(1, 501), lambda s: bytes(2500) + str(s).encode())  # 4 records each
    consumer = FakeConsumer("state", 0, records, end)
    snapshot = topic.load(consumer, "t", 0, timeout_s=5)
    assert (snapshot.sequence, snapshot.state[-3:]) == (500, b"500")
    assert consumer.delivered < 100 < len(records)
    assert consumer.position_ is None  # unassigned


def test_load_widens_the_window_until_the_chunks_are_covered():
    topic = StateTopic("state", KEY, chunk_bytes=100)
    records, end = transactions(topic, "t", [1, 2], lambda s: bytes(20_000) + bytes([s]))  # ~200 chunks each
    snapshot = topic.load(FakeConsumer("state", 0, records, end), "t", 0, timeout_s=5)
    assert snapshot.sequence == 2 and snapshot.state[-1] == 2


def test_load_finds_a_task_whose_state_is_far_behind_other_tasks_records():
    topic = StateTopic("state", KEY)
    mine, offset = transactions(topic, "mine", [1], lambda s: "my state")
    others, end = transactions(topic, "other", range(1, 300), lambda s: "noise", start=offset)
    assert topic.load(FakeConsumer("state", 0, mine + others, end), "mine", 0, timeout_s=5).state == "my state"
    assert topic.load(FakeConsumer("state", 0, mine + others, end), "absent", 0, timeout_s=5) is None
    assert topic.load(FakeConsumer("state", 0, [], 0), "mine", 0, timeout_s=5) is None


def test_load_refuses_a_snapshot_whose_offsets_are_not_the_committed_ones():
    topic = StateTopic("state", KEY)
    records, end = transactions(topic, "t", [1, 2], lambda s: s)  # offsets {"in:0": 10}, {"in:0": 20}
    consumer = FakeConsumer("state", 0, records, end)
    assert topic.load(consumer, "t", 0, timeout_s=1, committed={"in:0": 20}).sequence == 2
    with pytest.raises(SnapshotError, match=r"has state for offsets \{'in:0': 20\} \(sequence 2\), not the offsets "
                                            r"its consumer group committed, \{'in:0': 30\}"):
        topic.load(consumer, "t", 0, timeout_s=0.2, committed={"in:0": 30})
    with pytest.raises(SnapshotError, match="has no state, but its consumer group committed offsets"):
        topic.load(consumer, "absent", 0, timeout_s=0.2, committed={"in:0": 30})
    with pytest.raises(SnapshotError, match="committed no offsets: it belongs to an earlier run"):
        topic.load(consumer, "t", 0, timeout_s=0.2, committed={})
    assert topic.load(consumer, "absent", 0, timeout_s=0.2, committed={}) is None


# ---------------------------------------------------------------------- against a real broker


@pytest.fixture
def kafka(kafka_bootstrap):
    from eventml.kafka.settings import KafkaSettings

    return KafkaSettings(kafka_bootstrap, environ={})


@pytest.fixture
def state_topic_name(kafka, topic):
    from eventml.kafka.topics import create_topic, delete_topic

    create_topic(topic, partitions=2, kafka=kafka, topic_config=state_topic_config())
    yield topic
    delete_topic(topic, kafka=kafka)


def transactional_producer(kafka):
    from eventml.kafka import rdkafka

    producer = rdkafka.producer(kafka, {"transactional.id": f"state-test-{uuid.uuid4().hex[:8]}", "acks": "all"})
    producer.init_transactions(30)
    return producer


def restore_consumer(kafka):
    from eventml.kafka import rdkafka

    return rdkafka.consumer(kafka, {**RESTORE_CONSUMER_CONFIG, "group.id": f"state-restore-{uuid.uuid4().hex[:8]}"})


def write(producer, topic, partition, records, commit=True):
    producer.begin_transaction()
    for key, value, headers in records:
        producer.produce(topic, value=value, key=key, partition=partition, headers=headers)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.flush(30)
        producer.abort_transaction(30)


@pytest.mark.integration
def test_a_3_mib_state_written_in_a_transaction_is_loaded_whole(kafka, state_topic_name):
    topic = StateTopic(state_topic_name, KEY)
    state = {"weights": os.urandom(3 * 1024 * 1024)}
    records = topic.records("events:1", 1, 1, {"events:1": 1234}, state)
    assert len(records) == 8 and max(len(value) for _, value, _ in records) <= 512 * 1024
    write(transactional_producer(kafka), state_topic_name, 1, records)
    consumer = restore_consumer(kafka)
    try:
        snapshot = topic.load(consumer, "events:1", 1, timeout_s=30, committed={"events:1": 1234})
        assert (snapshot.sequence, snapshot.offsets, snapshot.state) == (1, {"events:1": 1234}, state)
        assert topic.load(consumer, "events:1", 0, timeout_s=30) is None  # another partition
    finally:
        consumer.close()


@pytest.mark.integration
def test_the_newest_committed_sequence_wins_and_an_aborted_one_is_never_loaded(kafka, state_topic_name):
    topic = StateTopic(state_topic_name, KEY, chunk_bytes=64 * 1024)
    producer = transactional_producer(kafka)
    for sequence in (1, 2, 3):
        write(producer, state_topic_name, 0, topic.records("t", 0, sequence, {"in:0": sequence}, bytes(100_000 * sequence)))
    write(producer, state_topic_name, 0, topic.records("t", 0, 4, {"in:0": 4}, bytes(10)), commit=False)
    consumer = restore_consumer(kafka)
    try:
        snapshot = topic.load(consumer, "t", 0, timeout_s=30)
        assert (snapshot.sequence, snapshot.offsets, len(snapshot.state)) == (3, {"in:0": 3}, 300_000)
    finally:
        consumer.close()


@pytest.mark.integration
def test_the_state_of_a_commit_that_just_returned_is_waited_for(kafka, state_topic_name):
    """commit_transaction returns before the broker writes its markers: `committed` makes load wait for them."""
    topic = StateTopic(state_topic_name, KEY)
    producer, consumer = transactional_producer(kafka), restore_consumer(kafka)
    try:
        for sequence in range(1, 6):
            write(producer, state_topic_name, 0, topic.records("t", 0, sequence, {"in:0": sequence}, sequence))
            assert topic.load(consumer, "t", 0, timeout_s=30, committed={"in:0": sequence}).state == sequence
    finally:
        consumer.close()


@pytest.mark.integration
def test_a_forged_manifest_from_a_writer_without_the_key_is_refused(kafka, state_topic_name, tmp_path):
    from eventml.kafka import rdkafka

    proof = tmp_path / "proof"
    topic = StateTopic(state_topic_name, KEY)
    write(transactional_producer(kafka), state_topic_name, 0, topic.records("t", 0, 1, {"in:0": 1}, "genuine"))
    intruder = rdkafka.producer(kafka, {})  # not transactional: read_committed readers see it at once
    for key, value, headers in StateTopic(state_topic_name, OTHER_KEY).records("t", 0, 2, {"in:0": 2}, SideEffect(proof)):
        intruder.produce(state_topic_name, value=value, key=key, partition=0, headers=headers)
    intruder.flush(30)
    consumer = restore_consumer(kafka)
    try:
        with pytest.raises(SnapshotError, match=f"state topic '{state_topic_name}' partition 0: the manifest of task "
                                                "'t' at offset \\d+ failed authentication"):
            topic.load(consumer, "t", 0, timeout_s=30)
    finally:
        consumer.close()
    assert not proof.exists()


@pytest.mark.integration
def test_two_tasks_sharing_a_partition_are_kept_apart_in_kafka(kafka, state_topic_name):
    topic = StateTopic(state_topic_name, KEY, chunk_bytes=1024)
    one, two = transactional_producer(kafka), transactional_producer(kafka)
    for sequence in (1, 2):
        write(one, state_topic_name, 1, topic.records("events:0", 1, sequence, {"events:0": sequence}, "A" * 5000))
        write(two, state_topic_name, 1, topic.records("events:1", 1, sequence + 10, {"events:1": sequence}, "B" * 3000))
    consumer = restore_consumer(kafka)
    try:
        a, b = (topic.load(consumer, task, 1, timeout_s=30) for task in ("events:0", "events:1"))
        assert (a.sequence, a.state, b.sequence, b.state) == (2, "A" * 5000, 12, "B" * 3000)
    finally:
        consumer.close()


class Counting:
    """A consumer that counts the records it hands out."""

    def __init__(self, consumer):
        self.consumer, self.delivered = consumer, 0

    def consume(self, n, timeout):
        messages = self.consumer.consume(n, timeout)
        self.delivered += sum(m.error() is None for m in messages)
        return messages

    def __getattr__(self, name):
        return getattr(self.consumer, name)


@pytest.mark.integration
def test_loading_after_500_sequences_reads_near_the_end(kafka, state_topic_name):
    """500 transactions of a ~50 KB state: the load reads a few windows back from the end (its time is printed)."""
    topic = StateTopic(state_topic_name, KEY)
    producer = transactional_producer(kafka)
    state = {"model": os.urandom(50_000)}
    started = time.perf_counter()
    for sequence in range(1, 501):
        write(producer, state_topic_name, 0, topic.records("t", 0, sequence, {"in:0": sequence}, {**state, "n": sequence}))
    wrote = time.perf_counter() - started
    consumer = Counting(restore_consumer(kafka))
    try:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            snapshot = topic.load(consumer, "t", 0, timeout_s=60, committed={"in:0": 500})
            timings.append(time.perf_counter() - started)
        assert snapshot.state == {**state, "n": 500}
        assert consumer.delivered < 3 * 100  # of 1500 records (and 500 markers)
    finally:
        consumer.close()
    print(f"\nstate topic: 500 transactions of a {len(pickle.dumps(state)) / 1000:.0f} KB state written in "
          f"{wrote:.1f} s; load of the newest: {', '.join(f'{t * 1000:.0f}' for t in timings)} ms")


@pytest.fixture
def own_broker(tmp_path):
    """A broker of this test's own: its log cleaner serves no other test's compacted topics (on the session's
    broker it once had not compacted within 120 s, busy or asleep), and looks for work every 0.5 s."""
    import eventml as em
    from eventml.kafka import free_port
    from eventml.kafka.settings import KafkaSettings

    with em.LocalKafka(port=free_port(), controller_port=free_port(), data_dir=tmp_path / "kafka",
                       config={"log.cleaner.backoff.ms": "500"}) as broker:
        yield KafkaSettings(broker.bootstrap_servers, environ={})


@pytest.mark.integration
def test_the_newest_state_survives_compaction(own_broker, topic):
    """Compaction keeps the newest chunk of each index: the newest manifest's, even after the state shrank and
    transactions were aborted; what it leaves of older, larger states is not named by the manifest."""
    from eventml.kafka.rdkafka import TopicPartition
    from eventml.kafka.topics import create_topic

    kafka = own_broker
    create_topic(topic, kafka=kafka, topic_config={**state_topic_config(), "segment.ms": "100",
                                                   "min.cleanable.dirty.ratio": "0.01"})
    store, producer = StateTopic(topic, KEY, chunk_bytes=1000), transactional_producer(kafka)
    consumer = restore_consumer(kafka)
    tp = TopicPartition(topic, 0)

    def committed_records():
        end = consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        count, deadline = 0, time.monotonic() + 30
        while consumer.position([tp])[0].offset < end and time.monotonic() < deadline:
            count += sum(m.error() is None for m in consumer.consume(1000, 0.2))
        consumer.unassign()
        return count

    try:
        written = 0  # committed records
        for sequence in range(1, 41):
            size = 2500 if sequence < 30 else 800  # three chunks, then one
            for records in (store.records("t", 0, sequence, {"in:0": sequence}, bytes(size)),
                            store.records("u", 0, sequence, {"in:0": sequence}, sequence)):
                write(producer, topic, 0, records)
                written += len(records)
            if sequence % 5 == 0:
                write(producer, topic, 0, store.records("t", 0, 99, {"in:0": 99}, bytes(5000)), commit=False)
            time.sleep(0.12)  # segments roll every 100 ms
        deadline = time.monotonic() + 120
        while committed_records() > written / 4:
            assert time.monotonic() < deadline, "the log cleaner did not compact the state topic within 120 s"
            time.sleep(2)
            write(producer, topic, 0, store.records("v", 0, 1, {}, 0))  # rolls the segment the cleaner may take
        t = store.load(consumer, "t", 0, timeout_s=30, committed={"in:0": 40})
        u = store.load(consumer, "u", 0, timeout_s=30, committed={"in:0": 40})
        assert (t.sequence, t.state, u.state) == (40, bytes(800), 40)
    finally:
        consumer.close()

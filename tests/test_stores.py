"""Integration: the two state stores of the live engine pass the same contract, on a real broker.

Each store is driven as the engine drives it — the live updater's own clients, a real transaction, the
numbered commit (:class:`~eventml.live.commit.TransactionCommit`) — and must: give back the state of
exactly the committed offsets; never the state of a transaction that did not commit; refuse, in one
sentence, state that does not match the committed offsets; and refuse state it did not write.
"""

from __future__ import annotations

import pytest

import eventml as em
from eventml.errors import SnapshotError
from eventml.kafka.settings import KafkaSettings
from eventml.learners import make_learner
from eventml.live.clients import LiveClients
from eventml.live.commit import TransactionCommit
from eventml.live.task import Task
from eventml.live.merge import EVENTS, InputPartition
from eventml.live.snapshots import list_snapshots
from eventml.live.state import UpdaterState
from eventml.live.state_topic import StateTopic
from eventml.live.stores import DirectoryStore, TopicStore

pytestmark = pytest.mark.integration

KEY = b"s" * 32


@pytest.fixture(params=["directory", "topic"])
def harness(request, kafka_bootstrap, topic, tmp_path):
    """A store of each kind with the clients of one live updater, over a one-partition events topic."""
    kafka = KafkaSettings.resolve(None, bootstrap_servers=kafka_bootstrap)
    em.create_topic(topic, 1, bootstrap_servers=kafka_bootstrap)
    ids = f"{topic}-updater"
    clients = LiveClients(kafka, ids, ids, 30.0)
    store = (DirectoryStore(tmp_path / "state", ids) if request.param == "directory"
             else TopicStore(f"{topic}-state", KEY, reader_group=f"{ids}-state"))
    store.open(clients, kafka, 1)
    commit = TransactionCommit(store, timeout_s=30)
    yield request.param, store, clients, commit, topic
    commit.close()
    store.close()
    clients.close()


def make_task(topic, version, offset):
    """A task over partition 0 of ``topic`` whose model learned ``version`` labels, at ``offset``."""
    task = Task(0, f"{topic}:0", [InputPartition(topic, 0, EVENTS)])
    task.state = UpdaterState.fresh(make_learner("river_gnb"), ["accuracy"], 100, offsets={f"{topic}:0": offset})
    task.state.model.counts["learned"] = version
    return task


def committed(clients, task):
    return clients.committed(task.inputs)


def test_a_store_gives_back_the_state_of_exactly_the_committed_offsets(harness):
    kind, store, clients, commit, topic = harness
    assert store.load(make_task(topic, 0, 0), committed(clients, make_task(topic, 0, 0)), 10) is None  # fresh
    for version, offset in ((1, 5), (2, 9)):
        task = make_task(topic, version, offset)
        task.state.sequence = version - 1
        clients.producer.begin_transaction()
        commit(clients.producer, clients.consumer.consumer_group_metadata, [task], clients.send)
    state = store.load(task, committed(clients, task), 10)
    assert committed(clients, task) == {f"{topic}:0": 9}
    assert state.offsets == {f"{topic}:0": 9} and state.learned == 2 and state.sequence == 2


def test_a_store_never_gives_back_the_state_of_an_aborted_transaction(harness):
    kind, store, clients, commit, topic = harness
    task = make_task(topic, 1, 5)
    clients.producer.begin_transaction()
    commit(clients.producer, clients.consumer.consumer_group_metadata, [task], clients.send)
    # the next transaction writes its state (step 1) and dies before its commit
    later = make_task(topic, 2, 9)
    later.state.sequence = 1
    clients.producer.begin_transaction()
    later.state.sequence += 1
    store.write(later, clients.send)
    clients.producer.abort_transaction(10)
    state = store.load(task, committed(clients, task), 10)
    assert state.offsets == {f"{topic}:0": 5} and state.learned == 1
    if kind == "directory":  # the snapshot ahead of the committed offsets is still on disk, and ignored
        assert len(list_snapshots(store.folder)) == 2


def test_a_store_refuses_state_that_is_not_of_the_committed_offsets(harness):
    kind, store, clients, commit, topic = harness
    task = make_task(topic, 1, 5)
    clients.producer.begin_transaction()
    commit(clients.producer, clients.consumer.consumer_group_metadata, [task], clients.send)
    with pytest.raises(SnapshotError, match="offsets") as error:
        # e.g. an older snapshot replayed, or another updater's offsets; refused once the read reaches the end: the
        # timeout is the engine's (setup_timeout_s), a cap (2 s once ran out before a loaded broker answered)
        store.load(task, {f"{topic}:0": 7}, 30)
    assert "\n" not in str(error.value)


def test_a_store_refuses_state_it_did_not_write(harness, tmp_path):
    kind, store, clients, commit, topic = harness
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    task = make_task(topic, 1, 5)
    clients.producer.begin_transaction()
    commit(clients.producer, clients.consumer.consumer_group_metadata, [task], clients.send)
    if kind == "directory":  # a snapshot changed on disk: its checksum no longer holds
        path = list_snapshots(store.folder)[-1]
        data = bytearray(path.read_bytes())
        data[-10] ^= 0xFF
        path.write_bytes(bytes(data))
        match = "damaged \\(wrong digest\\)"
    else:  # state records written in a real transaction by someone without the key, for the committed offsets
        forger = StateTopic(store.topic, b"f" * 32)
        clients.producer.begin_transaction()
        for key, value, headers in forger.records(task.key, 0, 2, {f"{topic}:0": 5}, Payload()):
            clients.send(store.topic, value, key, 0, headers)
        clients.producer.commit_transaction(10)
        match = "authentication"
    with pytest.raises(SnapshotError, match=match):
        store.load(task, committed(clients, task), 30)
    assert not marker.exists()
    assert committed(clients, task) == {f"{topic}:0": 5}

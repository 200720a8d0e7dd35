"""Nothing acknowledged is lost by default: the leader of a topic's partition killed (SIGKILL)
mid-produce on the local three-broker cluster, and every event eventml's producer, with its defaults
(``acks="all"``, idempotence), counted as delivered is read back from the new leader, once, in order."""

from __future__ import annotations

import time

import pytest

import eventml as em

pytestmark = pytest.mark.integration

N = 6000
KILL_AT = 3000  # events sent before the kill: the rest are sent while the partition has no leader


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s:g} s")
        time.sleep(0.01)


def test_a_leader_killed_mid_produce_takes_no_acknowledged_event_with_it(kafka_cluster, topic):
    settings = kafka_cluster.settings
    events = list(em.synthetic("sea", N, seed=23))
    sent = [event.id for event in events]
    em.create_topic(topic, partitions=1, kafka=settings)  # replication factor 3, min.insync.replicas 2
    leader = kafka_cluster.leader(topic, 0)
    acknowledged: list[str] = []  # appended to by kafka-python's I/O thread, in acknowledgement order
    try:
        with em.producer.EventProducer(topic, kafka=settings) as producer:  # eventml's defaults: nothing given
            for i, event in enumerate(events):
                producer.send(event).add_callback(lambda _, event_id=event.id: acknowledged.append(event_id))
                if i % 50 == 49:
                    time.sleep(0.005)  # a stream, not one burst: batches keep going out to the leader
                if i == KILL_AT:
                    wait_for(lambda: len(acknowledged) >= KILL_AT // 2, 60, "half the events sent acknowledged")
                    before_kill = len(acknowledged)
                    assert kafka_cluster.kill_node(leader) is True  # mid-produce: batches in flight, more to come
            # the controllers fence the dead node (9 s without heartbeats), then a new leader takes the writes
            report = producer.flush(timeout_s=90)
        assert kafka_cluster.leader(topic, 0) not in (None, leader)
    finally:
        kafka_cluster.start()  # the fixture's contract: every node up again
    kafka_cluster.wait_until_in_sync(topic)

    read = [event.id for event in em.read_events(topic, kafka=settings, isolation_level="read_committed")]
    kept = set(read)
    assert report.sent == N and report.delivered == len(acknowledged) == len(set(acknowledged))
    assert 0 < before_kill < report.delivered  # acknowledged before the kill, and after it by the new leader
    assert set(acknowledged) <= kept  # every acknowledged event survived its leader
    assert len(read) == len(kept)  # and is there once: retries wrote nothing twice
    assert read == [event_id for event_id in sent if event_id in kept]  # in the order it was sent

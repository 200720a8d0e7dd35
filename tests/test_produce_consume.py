"""Integration: events go through a real broker and come back equal, in order, replayable."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaProducer

import eventml as em
from eventml.events import Event

pytestmark = pytest.mark.integration


def test_produced_events_come_back_equal_and_in_partition_order(kafka_bootstrap, topic):
    em.create_topic(topic, partitions=3)
    sent = list(em.synthetic("agrawal", 3000, seed=7, drift_at=1500))
    report = em.produce(sent, topic, progress=False)
    assert (report.sent, report.delivered, report.failed) == (3000, 3000, 0)

    with em.replay(topic) as consumer:
        pairs = list(consumer.records())
    received = [event for event, _ in pairs]
    assert sorted(received, key=lambda e: e.id) == sorted(sent, key=lambda e: e.id)
    # within each partition the order is the order of sending
    position_in_sent = {e.id: i for i, e in enumerate(sent)}
    for partition in range(3):
        order = [position_in_sent[e.id] for e, pos in pairs if pos.partition == partition]
        assert order == sorted(order) and len(order) > 0


def test_same_key_always_lands_in_the_same_partition(kafka_bootstrap, topic):
    em.create_topic(topic, partitions=4)
    events = [Event(f"user-{i % 5}", {"n": i}) for i in range(100)]
    em.produce(events, topic, progress=False)
    with em.replay(topic) as consumer:
        partitions_of = {}
        for event, pos in consumer.records():
            partitions_of.setdefault(event.id, set()).add(pos.partition)
    assert all(len(parts) == 1 for parts in partitions_of.values())
    assert len(partitions_of) == 5


def test_replay_from_an_offset_returns_the_rest(kafka_bootstrap, topic):
    sent = list(em.synthetic("sea", 500, seed=1))
    em.produce(sent, topic, progress=False)
    got = em.read_events(topic, offset=200)
    assert got == sent[200:]


def test_replay_from_a_timestamp_returns_what_was_written_after_it(kafka_bootstrap, topic):
    first, second = list(em.synthetic("sea", 300, seed=1)), list(em.synthetic("sea", 200, seed=2, id_prefix="late-"))
    em.produce(first, topic, progress=False)
    time.sleep(0.3)
    cut = time.time()
    time.sleep(0.3)
    em.produce(second, topic, progress=False)
    got = em.read_events(topic, timestamp=cut)
    assert [e.id for e in got] == [e.id for e in second]


def test_max_events_and_idle_timeout_end_a_read(kafka_bootstrap, topic):
    em.produce(em.synthetic("sea", 100, seed=3), topic, progress=False)
    assert len(list(em.consumer.consume(topic, from_beginning=True, max_events=40))) == 40
    started = time.monotonic()
    rest = list(em.consumer.consume(topic, offset=90, idle_timeout_s=1.0))
    assert len(rest) == 10
    assert time.monotonic() - started >= 1.0  # it waited for more, then ended


def test_consume_without_start_reads_only_new_events(kafka_bootstrap, topic):
    em.produce(em.synthetic("sea", 50, seed=3), topic, progress=False)
    with em.consumer.EventConsumer(topic, max_events=10, idle_timeout_s=10) as consumer:
        consumer._assign()  # positions at the end now, as a user starting to listen would be
        em.produce(em.synthetic("sea", 10, seed=4, id_prefix="new-"), topic, progress=False)
        got = list(consumer)
    assert [e.id for e in got] == [f"new-{i}" for i in range(10)]


def test_dataframe_round_trip_through_kafka(kafka_bootstrap, topic):
    import pandas as pd

    df = pd.DataFrame({"x": [0.5, None, 2.0], "color": ["red", "blue", None], "y": [1, 0, 1]})
    report = em.produce_dataframe(df, topic, target="y", progress=False)
    assert report.delivered == 3
    back = em.read_dataframe(topic)
    assert back["label"].tolist() == [1, 0, 1]
    assert back["color"].tolist()[:2] == ["red", "blue"]
    assert back["color"].isna().tolist() == [False, False, True]
    assert back["x"].isna().tolist() == [False, True, False]
    assert back["offset"].tolist() == [0, 1, 2]


def test_a_record_from_another_client_in_the_wire_format_is_read(kafka_bootstrap, topic):
    raw = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    raw.send(topic, key=b"k-1", value=b'{"id": "k-1", "features": {"x1": 0.3, "color": "red"}, "label": 1}')
    raw.flush()
    raw.close()
    (event,) = em.read_events(topic)
    assert event.id == "k-1" and event.label == 1 and event.features == {"x1": 0.3, "color": "red"}
    assert event.ts is not None  # the record timestamp stands in for a missing ts


def test_topics_can_be_created_described_and_deleted(kafka_bootstrap, topic):
    assert em.create_topic(topic, partitions=2) is True
    assert em.create_topic(topic, partitions=2) is False
    em.produce(em.synthetic("sea", 10, seed=1), topic, progress=False)
    described = em.describe_topic(topic)
    assert described["partition"].tolist() == [0, 1]
    assert described["records"].sum() == 10
    assert topic in em.list_topics()
    assert em.delete_topic(topic) is True
    assert topic not in em.list_topics()


def test_unreachable_broker_gives_one_sentence(tmp_path):
    with pytest.raises(em.KafkaUnavailableError, match="eventml kafka start"):
        em.producer.EventProducer("t", bootstrap_servers="127.0.0.1:1", request_timeout_ms=1000, max_block_ms=1000)


def test_labels_produced_to_a_topic_come_back_as_labels(kafka_bootstrap, topic):
    from eventml.delay import split_labels

    _, labels = split_labels(em.synthetic("sea", 300, seed=4), (0.5, 3.0), loss=0.1)
    report = em.produce(labels, topic, progress=False)
    assert report.delivered == len(labels)
    assert em.read_labels(topic) == labels


def test_producing_in_the_background_paces_and_reports(kafka_bootstrap, topic):
    started = time.monotonic()
    job = em.produce_in_background(em.synthetic("sea", 200, seed=1), topic, rate=400)
    assert job.running
    report = job.join(timeout_s=30)
    assert time.monotonic() - started >= 0.4  # 200 events at 400/s take half a second at least
    assert report.delivered == 200 and not job.running
    assert [e.id for e in em.read_events(topic)] == [e.id for e in em.synthetic("sea", 200, seed=1)]


def test_a_background_producer_hands_its_error_to_join(kafka_bootstrap, topic):
    job = em.produce_in_background([{"id": "e-1", "features": "not an object"}], topic)
    with pytest.raises(em.EventFormatError, match="features"):
        job.join(timeout_s=30)

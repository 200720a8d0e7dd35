"""Integration: every malformed record lands in <topic>.dlq, unchanged, with its reason and origin,
while every good record is still delivered."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer

import eventml as em
from eventml.consumer import read_dead_letters
from eventml.dlq import dlq_topic, read_headers

pytestmark = pytest.mark.integration

# (value, expected reason): one per way a record can break the wire format
MALFORMED = [
    (b"\xff\xfe not utf-8", "not_utf8"),
    (b"{not json", "not_json"),
    (b"[1, 2, 3]", "not_object"),
    (b'"just a string"', "not_object"),
    (b'{"features": {"x": 1}}', "missing_id"),
    (b'{"id": 7, "features": {"x": 1}}', "bad_id"),
    (b'{"id": "m-1"}', "missing_features"),
    (b'{"id": "m-2", "features": [1, 2]}', "bad_features"),
    (b'{"id": "m-3", "features": {"x": {"nested": 1}}}', "bad_feature_value"),
    (b'{"id": "m-4", "features": {"x": [1]}}', "bad_feature_value"),
    (b'{"id": "m-5", "features": {"x": 1}, "ts": "yesterday"}', "bad_ts"),
    (b'{"id": "m-6", "features": {"x": 1}, "label": {"a": 1}}', "bad_label"),
    (b"", "empty"),
    (None, "empty"),
    (b"null", "empty"),
]


def test_malformed_records_go_to_the_dlq_with_reasons_and_good_ones_are_delivered(kafka_bootstrap, topic):
    raw = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    good_ids = []
    for i, (value, _) in enumerate(MALFORMED):
        good = f'{{"id": "g-{i}", "features": {{"x": {i}}}, "label": {i % 2}}}'.encode()
        raw.send(topic, key=f"g-{i}".encode(), value=good)
        good_ids.append(f"g-{i}")
        raw.send(topic, key=f"bad-{i}".encode(), value=value)
    raw.flush()
    raw.close()

    with em.replay(topic) as consumer:
        events = list(consumer)
        stats = consumer.stats
    assert [e.id for e in events] == good_ids
    assert stats.dead_lettered == len(MALFORMED)
    assert stats.records == 2 * len(MALFORMED)
    expected_reasons: dict[str, int] = {}
    for _, reason in MALFORMED:
        expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
    assert stats.reasons == expected_reasons

    reader = KafkaConsumer(dlq_topic(topic), bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                           consumer_timeout_ms=5000)
    letters = list(reader)
    reader.close()
    assert len(letters) == len(MALFORMED)
    for i, (letter, (value, reason)) in enumerate(zip(letters, MALFORMED)):
        headers = read_headers(letter.headers)
        assert letter.value == value  # unchanged, byte for byte
        assert letter.key == f"bad-{i}".encode()
        assert headers["eventml.error.reason"] == reason
        assert headers["eventml.error.message"]
        assert headers["eventml.source.topic"] == topic
        assert headers["eventml.source.partition"] == "0"
        assert headers["eventml.source.offset"] == str(2 * i + 1)

    table = read_dead_letters(topic)
    assert table["value"].tolist() == [value for value, _ in MALFORMED]
    assert table["reason"].tolist() == [reason for _, reason in MALFORMED]
    assert table["source_offset"].tolist() == [2 * i + 1 for i in range(len(MALFORMED))]


def test_recreating_a_topic_empties_it_and_its_dead_letters(kafka_bootstrap, topic):
    raw = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    raw.send(topic, value=b"{broken")
    raw.send(topic, value=b'{"id": "ok", "features": {}}')
    raw.close()
    assert len(em.read_events(topic)) == 1 and len(read_dead_letters(topic)) == 1
    em.recreate_topic(topic)
    assert em.describe_topic(topic)["records"].sum() == 0
    assert read_dead_letters(topic).empty


def test_without_dead_letters_bad_records_are_still_counted(kafka_bootstrap, topic):
    raw = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    raw.send(topic, value=b"{broken")
    raw.send(topic, value=b'{"id": "ok", "features": {}}')
    raw.flush()
    raw.close()
    with em.replay(topic, dead_letters=False) as consumer:
        assert [e.id for e in consumer] == ["ok"]
        assert consumer.stats.reasons == {"not_json": 1}
    assert dlq_topic(topic) not in em.list_topics()

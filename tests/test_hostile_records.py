"""Integration: a hostile corpus, written by another client (librdkafka), interleaved with good events.
Every reader and the live updater account for every record: delivered + dead-lettered == written,
nothing twice, every dead letter with its reason, its source position and (where it fits) its bytes."""

from __future__ import annotations

import collections

import orjson
import pandas as pd
import pytest
from confluent_kafka import Producer

import eventml as em
from eventml.consumer import read_dead_letters
from eventml.live import LiveUpdater, read_predictions

pytestmark = pytest.mark.integration

OK = "ok"
AS_EVENT, AS_LABEL = 0, 1  # which outcome of a corpus row applies
#: the broker's default limit on a record batch (message.max.bytes); the big record stays just under it
BROKER_LIMIT = 1_048_588
BIG = b'{"id": "big", "features": ' + b"x" * (BROKER_LIMIT - 61 - 30 - 100)


def _event(event_id: str, features: dict, label=None) -> bytes:
    return orjson.dumps({"id": event_id, "features": features, **({} if label is None else {"label": label})})


# (kind, key, value, outcome when read as an event, outcome when read as a label)
HOSTILE = [
    ("empty value", b"k-empty", b"", "empty", "empty"),
    ("null value with a key (tombstone)", b"k-null", None, "empty", "empty"),
    ("null value and null key", None, None, "empty", "empty"),
    ("not UTF-8", b"k-latin", b"\xff\xfe caf\xe9", "not_utf8", "not_utf8"),
    ("UTF-8 byte order mark", b"bom", b"\xef\xbb\xbf" + _event("bom", {"x": 1.5}, 1), OK, OK),
    ("not JSON", b"k-text", b"hello, world", "not_json", "not_json"),
    ("truncated JSON", b"k-trunc", b'{"id": "t-1", "features": {"x": 1', "not_json", "not_json"),
    ("NaN literal", b"k-nan", b'{"id": "n-1", "features": {"x": NaN}, "label": 1}', "not_json", "not_json"),
    ("Infinity literal", b"k-inf", b'{"id": "n-2", "features": {"x": Infinity}}', "not_json", "not_json"),
    ("number beyond a double", b"k-1e400", b'{"id": "n-3", "features": {"x": 1e400}}', "not_json", "not_json"),
    ("trailing garbage", b"k-tail", b'{"id": "n-4", "features": {}} and more', "not_json", "not_json"),
    ("JSON array", b"k-arr", b"[1, 2, 3]", "not_object", "not_object"),
    ("JSON number", b"k-num", b"42", "not_object", "not_object"),
    ("JSON string", b"k-str", b'"an event"', "not_object", "not_object"),
    ("JSON null", b"k-jnull", b"null", "empty", "empty"),
    ("missing id", b"k-noid", b'{"features": {"x": 1}, "label": 1}', "missing_id", "missing_id"),
    ("id a number", b"k-numid", b'{"id": 7, "features": {"x": 1}, "label": 1}', "bad_id", "bad_id"),
    ("id empty", b"k-emptyid", b'{"id": "", "features": {"x": 1}, "label": 1}', "bad_id", "bad_id"),
    ("missing features", b"mf", b'{"id": "mf", "label": 1}', "missing_features", OK),
    ("features an array", b"fa", b'{"id": "fa", "features": [1, 2], "label": 0}', "bad_features", OK),
    ("nested feature value", b"k-nest", b'{"id": "nv", "features": {"x": {"y": 1}}}', "bad_feature_value",
     "missing_label"),
    ("array feature value", b"k-arrv", b'{"id": "av", "features": {"x": [1]}, "label": 1}', "bad_feature_value", OK),
    ("label an object", b"k-lobj", b'{"id": "lo", "features": {"x": 1}, "label": {"a": 1}}', "bad_label",
     "bad_label"),
    ("ts a string", b"k-ts", b'{"id": "ts", "features": {"x": 1}, "label": 1, "ts": "yesterday"}', "bad_ts",
     "bad_ts"),
    ("ts a boolean", b"k-tsb", b'{"id": "tb", "features": {"x": 1}, "label": 1, "ts": true}', "bad_ts", "bad_ts"),
    ("deeply nested arrays", b"k-deep", b'{"id": "deep", "features": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
     "not_json", "not_json"),
    ("huge integer", b"huge", b'{"id": "huge", "features": {"x": 123456789012345678901234567890}, "label": 1}',
     OK, OK),
    ("lone surrogate escape", b"k-sur", b'{"id": "sur", "features": {"c": "\\ud800"}}', "not_json", "not_json"),
    ("surrogate bytes", b"k-surb", b'{"id": "surb", "features": {"c": "\xed\xa0\x80"}}', "not_utf8", "not_utf8"),
    ("tens of thousands of features", b"wide", _event("wide", {f"f{i}": i % 7 for i in range(30_000)}, 0), OK, OK),
    ("empty features", b"ef", b'{"id": "ef", "features": {}}', OK, "missing_label"),
    ("keyless good event", None, _event("keyless", {"x": 0.2, "color": "blue"}, 0), OK, OK),
    ("duplicate id", b"g-3", _event("g-3", {"x": 0.9, "color": "red"}, 1), OK, OK),
    ("a record near the broker's size limit", b"big", BIG, "not_json", "not_json"),
]


def _good(i: int) -> tuple[bytes, bytes]:
    features = {"x": (i * 37 % 100) / 100, "color": ("red", "blue", "green")[i % 3], "flag": i % 2 == 0}
    if i % 4 == 0:
        features["maybe"] = None  # null: missing
    if i % 5 == 0:
        features["sometimes"] = i / 10  # a feature that appears and disappears
    return f"g-{i}".encode(), _event(f"g-{i}", features, int(features["x"] > 0.5))


def write_corpus(servers: str, topic: str) -> list[tuple]:
    """Good events and every hostile record, interleaved, by librdkafka: ``[(offset, kind, key, value, as_event,
    as_label)]`` in offset order."""
    producer = Producer({"bootstrap.servers": servers, "message.max.bytes": 2 * BROKER_LIMIT, "linger.ms": 0})
    rows = []
    for i, (kind, key, value, as_event, as_label) in enumerate(HOSTILE):
        good_key, good_value = _good(i)
        rows.append(("good event", good_key, good_value, OK, OK))
        rows.append((kind, key, value, as_event, as_label))
    for kind, key, value, *_ in rows:
        producer.produce(topic, value, key)
        producer.flush()  # one record per batch: the big one alone stays under the broker's limit
    return [(offset, *row) for offset, row in enumerate(rows)]


def check_dead_letters(servers: str, topic: str, corpus: list[tuple], read_as: int) -> None:
    """The DLQ holds exactly the records rejected when read as events or labels, each once, with reason,
    position and bytes."""
    expected = {offset: row for offset, *row in corpus if row[3 + read_as] != OK}
    dead = read_dead_letters(topic, bootstrap_servers=servers, idle_timeout_s=5)
    assert sorted(dead["source_offset"]) == sorted(expected)  # each rejected record once, no other
    for letter in dead.itertuples():
        kind, key, value, *outcomes = expected[letter.source_offset]
        assert letter.reason == outcomes[read_as], kind
        assert letter.source_topic == topic and letter.source_partition == 0 and letter.message, kind
        # kafka-python cannot write a record with neither key nor value: its copy has an empty key
        assert letter.key == key or (key is None and value is None and letter.key == b""), kind
        if pd.isna(letter.truncated):
            assert letter.value == value, kind  # unchanged, byte for byte
        else:  # too large to copy with its headers: as much as fits
            assert letter.truncated == len(value) and value.startswith(letter.value or b""), kind
    assert dead["truncated"].notna().sum() == 1  # the big record only


def good_ids(corpus: list[tuple], read_as: int) -> list[str]:
    """The ids of the records delivered when read as events or labels, in offset order."""
    return [orjson.loads(value.removeprefix(b"\xef\xbb\xbf"))["id"] for _, _, _, value, *outcomes in corpus
            if outcomes[read_as] == OK]


def test_the_corpus_has_every_kind_the_contract_names():
    assert len(HOSTILE) >= 25 and len({kind for kind, *_ in HOSTILE}) == len(HOSTILE)
    assert len(BIG) > 1_000_000


@pytest.mark.parametrize("reader", ["consume", "read_events", "read_dataframe"])
def test_every_event_reader_delivers_or_dead_letters_each_record_once(kafka_bootstrap, topic, reader):
    corpus = write_corpus(kafka_bootstrap, topic)
    if reader == "consume":
        consumer = em.consumer.EventConsumer(topic, from_beginning=True, idle_timeout_s=3)
        with consumer:
            ids = [event.id for event in consumer]
        stats = consumer.stats
        assert stats.records == len(corpus) and stats.events + stats.dead_lettered == len(corpus)
        assert stats.dead_letters_failed == 0
    elif reader == "read_events":
        ids = [event.id for event in em.read_events(topic)]
    else:
        df = em.read_dataframe(topic)
        ids = df["id"].tolist()
        assert df["offset"].tolist() == [offset for offset, *row in corpus if row[3 + AS_EVENT] == OK]
        assert df.loc[df["id"] == "g-0", "color"].item() == "red"
    assert ids == good_ids(corpus, AS_EVENT)
    check_dead_letters(kafka_bootstrap, topic, corpus, AS_EVENT)


def test_read_labels_delivers_or_dead_letters_each_record_once(kafka_bootstrap, topic):
    corpus = write_corpus(kafka_bootstrap, topic)
    labels = em.read_labels(topic)
    assert [label.id for label in labels] == good_ids(corpus, AS_LABEL)
    check_dead_letters(kafka_bootstrap, topic, corpus, AS_LABEL)


def test_the_consume_command_reads_past_every_hostile_record(kafka_bootstrap, topic, capsys):
    from eventml.cli import main

    corpus = write_corpus(kafka_bootstrap, topic)
    assert main(["consume", "--topic", topic, "--from-beginning", "--idle-timeout", "3"]) == 0
    out = capsys.readouterr().out
    assert all(f'"{event_id}"' in out or event_id in out for event_id in good_ids(corpus, AS_EVENT))


@pytest.mark.parametrize("model", ["river_logreg", "sgd_logreg"])
def test_the_live_updater_predicts_or_dead_letters_each_record_once(kafka_bootstrap, topic, tmp_path, model):
    corpus = write_corpus(kafka_bootstrap, topic)
    updater = LiveUpdater(topic, f"{topic}.pred", model=model, state_dir=tmp_path, bootstrap_servers=kafka_bootstrap,
                          idle_timeout_s=3, records_per_transaction=10)
    stats = updater.run()
    predicted = read_predictions(f"{topic}.pred", bootstrap_servers=kafka_bootstrap)
    expected = good_ids(corpus, AS_EVENT)
    assert collections.Counter(predicted["id"]) == collections.Counter(expected)  # "g-3" twice, the rest once
    assert stats.events == len(expected) and stats.events + stats.dead_letters == len(corpus)
    labelled = [value for _, _, _, value, as_event, _ in corpus if as_event == OK and b'"label"' in value]
    assert stats.model_errors == 0 and stats.labelled == len(labelled) == len(expected) - 1  # all but "ef"
    check_dead_letters(kafka_bootstrap, topic, corpus, AS_EVENT)

"""Delayed labels: river's own delayed evaluation exactly, joins on stored features, label counts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from river import evaluate, metrics

import eventml as em
from eventml.delay import split_labels
from eventml.errors import ConfigError
from eventml.evaluate import label_counts, prequential
from eventml.events import Event, Label
from eventml.learners import CLASSIFICATION, make_learner

RIVER_METRICS = {"accuracy": metrics.Accuracy, "log_loss": metrics.LogLoss}


@pytest.fixture(scope="module")
def sea():
    return list(em.synthetic("sea", 2000, seed=5))


@pytest.fixture(scope="module")
def irregular(sea):
    """The sea events with irregular event times (gaps of 0.1 to 3 s)."""
    rng = random.Random(11)
    ts, out = 1000.0, []
    for event in sea:
        ts += rng.uniform(0.1, 3.0)
        out.append(dataclasses.replace(event, ts=ts))
    return out


def river_score(events, name, metric, **qa):
    """river's progressive_val_score of a fresh copy of the named model, with moment/delay."""
    dataset = [(e.features, e.label) for e in events]
    model = make_learner(name, seed=42).model
    return evaluate.progressive_val_score(dataset=dataset, model=model, metric=metric, **qa).get()


def final(df, learner, column):
    return df.loc[df["learner"] == learner, column].iloc[-1]


def by_ts(events):
    """A river moment reading each event's ts (river passes the dataset's own dicts)."""
    ts_of = {id(e.features): e.ts for e in events}
    return lambda x: ts_of[id(x)]


@pytest.mark.parametrize("delay", [1, 25, 400])
def test_int_delay_equals_river_delayed_progressive_val_score(sea, delay):
    names = ["river_logreg", "river_gnb"]
    df = prequential(sea, names, metrics=("accuracy", "log_loss"), delay=delay, every=500)
    for name in names:
        for metric in ("accuracy", "log_loss"):
            assert final(df, name, metric) == river_score(sea, name, RIVER_METRICS[metric](), delay=delay)
    # event i's label is due at i + delay: the last `delay` labels are still waiting at the end
    assert label_counts(df) == {"on_time": len(sea) - delay, "at_end": delay, "late": 0, "expired": 0, "never": 0,
                                "unknown_id": 0, "duplicate": 0}
    assert df["step"].iloc[-1] == len(sea)
    # the counts are columns, so far at each row: a label is due `delay` events after its event
    rows = df[df["learner"] == names[0]]
    assert (rows["labels_on_time"] == rows["events"] - delay).iloc[:-1].all()
    assert rows["labels_at_end"].tolist() == [0] * (len(rows) - 1) + [delay]


def test_delay_changes_the_figures(sea):
    now = prequential(sea, "river_logreg", metrics=("accuracy",))
    late = prequential(sea, "river_logreg", metrics=("accuracy",), delay=400)
    assert final(late, "river_logreg", "accuracy") != final(now, "river_logreg", "accuracy")


def test_random_delay_is_randint_per_labelled_event_and_equals_river(sea):
    rng = random.Random(7)
    draws = iter([rng.randint(0, 60) for _ in sea])  # the documented distribution, drawn independently
    expected = river_score(sea, "river_logreg", metrics.Accuracy(), delay=lambda x, y: next(draws))
    df = prequential(sea, "river_logreg", metrics=("accuracy",), delay=(0, 60), seed=7)
    assert final(df, "river_logreg", "accuracy") == expected


def test_callable_delay_gets_the_event(sea):
    df = prequential(sea, "river_gnb", metrics=("accuracy",), delay=lambda e: int(e.id[2:]) % 10)
    # recomputed with river from the same rule, applied in stream order
    delays = iter([int(e.id[2:]) % 10 for e in sea])
    expected = river_score(sea, "river_gnb", metrics.Accuracy(), delay=lambda x, y: next(delays))
    assert final(df, "river_gnb", "accuracy") == expected


@pytest.mark.parametrize("delay", [30.0, dt.timedelta(seconds=30), 0])
def test_delay_on_event_time_equals_river_with_moment(irregular, delay):
    seconds = delay.total_seconds() if isinstance(delay, dt.timedelta) else delay
    expected = river_score(irregular, "river_logreg", metrics.LogLoss(), moment=by_ts(irregular), delay=seconds)
    df = prequential(irregular, "river_logreg", metrics=("log_loss",), moment="ts", delay=delay)
    assert final(df, "river_logreg", "log_loss") == expected
    # a label is revealed before a later event at or after its due time; the last event has none
    waiting = sum(e.ts + seconds > irregular[-1].ts for e in irregular[:-1]) + 1
    assert label_counts(df)["at_end"] == waiting


def test_random_delay_on_event_time_is_uniform_seconds(irregular):
    rng = random.Random(3)
    draws = iter([rng.uniform(0.0, 50.0) for _ in irregular])
    expected = river_score(irregular, "river_gnb", metrics.Accuracy(), moment=by_ts(irregular),
                           delay=lambda x, y: next(draws))
    df = prequential(irregular, "river_gnb", metrics=("accuracy",), moment="ts", delay=(0.0, 50.0), seed=3)
    assert final(df, "river_gnb", "accuracy") == expected


def test_labels_stream_joined_by_id_equals_river_with_the_same_delays(irregular):
    rng = random.Random(9)
    delays = [rng.uniform(0.5, 40.0) for _ in irregular]
    unlabelled = [dataclasses.replace(e, label=None) for e in irregular]
    labels = [Label(e.id, e.label, ts=e.ts + d) for e, d in zip(irregular, delays)]
    random.Random(1).shuffle(labels)  # any order: they are merged by ts
    df = prequential(unlabelled, "river_logreg", metrics=("accuracy",), labels=labels)
    it = iter(delays)
    expected = river_score(irregular, "river_logreg", metrics.Accuracy(), moment=by_ts(irregular),
                           delay=lambda x, y: next(it))
    assert final(df, "river_logreg", "accuracy") == expected
    last_ts = irregular[-1].ts
    after_the_end = sum(label.ts >= last_ts for label in labels)
    assert after_the_end > 0
    assert label_counts(df)["on_time"] == len(irregular) - after_the_end
    assert label_counts(df)["at_end"] == after_the_end


class Recorder:
    """A learner that records the features it predicted on and learned from."""

    name = "recorder"
    task = CLASSIFICATION

    def __init__(self):
        self.log = []

    def predict_proba_one(self, x):
        self.log.append(("predict", dict(x)))
        return {0: 0.5, 1: 0.5}

    def predict_one(self, x):
        return 0

    def learn_one(self, x, y):
        self.log.append(("learn", dict(x), y))

    def clone(self):
        return Recorder()


def test_delayed_learning_uses_the_features_seen_at_prediction_time(sea):
    events = [dataclasses.replace(e, features={**e.features, "pos": i}) for i, e in enumerate(sea[:300])]
    recorder = Recorder()
    prequential(events, [recorder], metrics=("log_loss",), delay=(0, 40), seed=1)
    predicted = {}
    for entry in recorder.log:
        if entry[0] == "predict":
            predicted[entry[1]["pos"]] = entry[1]
        else:
            _, x, y = entry
            assert x == predicted[x["pos"]]  # learned after its prediction, from the same features
            assert y == events[x["pos"]].label
    assert sum(entry[0] == "learn" for entry in recorder.log) == len(events)


def test_an_id_seen_again_before_its_label_keeps_the_first_features():
    events = [Event("a", {"v": 1.0}, ts=1.0), Event("b", {"v": 5.0}, ts=2.0), Event("a", {"v": 2.0}, ts=3.0),
              Event("c", {"v": 0.0}, ts=9.0)]
    labels = [Label("a", 1, ts=4.0), Label("b", 0, ts=4.5)]
    recorder = Recorder()
    df = prequential(events, [recorder], metrics=("log_loss",), labels=labels)
    learned = [entry[1:] for entry in recorder.log if entry[0] == "learn"]
    assert learned == [({"v": 1.0}, 1), ({"v": 5.0}, 0)]
    assert label_counts(df)["duplicate"] == 1


def test_label_counts_on_time_late_never_unknown_and_duplicate():
    events = [Event(f"e-{i}", {"x": float(i % 2)}, ts=float(i)) for i in range(10)]
    labels = [Label(f"e-{i}", i % 2, ts=i + 0.5) for i in range(6)]  # e-6..e-9 never labelled
    labels += [Label("e-7", 1, ts=20.0)]  # 13 s after its event: late with max_wait=5
    labels += [Label("e-0", 0, ts=3.0), Label("nope", 1, ts=4.0)]  # a second label, an unknown id
    labels += [Label("e-9", 1, ts=2.0)]  # before its event is seen: unknown at that time
    df = prequential(events, "river_gnb", metrics=("accuracy",), labels=labels, max_wait=5)
    assert label_counts(df) == {"on_time": 6, "at_end": 0, "late": 1, "expired": 0, "never": 3, "unknown_id": 2,
                                "duplicate": 1}
    assert df["step"].iloc[-1] == 6


def test_labels_later_than_max_wait_are_counted_not_learned(sea):
    rng = random.Random(4)
    draws = [rng.randint(0, 30) for _ in sea]
    late = sum(d > 10 for d in draws)
    df = prequential(sea, "river_gnb", metrics=("accuracy",), delay=(0, 30), seed=4, max_wait=10)
    counts = label_counts(df)
    assert counts["late"] == late > 0
    assert counts["on_time"] + counts["at_end"] == df["step"].iloc[-1] == len(sea) - late


def test_event_labels_with_a_labels_stream_are_used_at_once():
    events = [Event("a", {"x": 1.0}, label=1, ts=1.0), Event("b", {"x": 0.0}, ts=2.0)]
    df = prequential(events, "river_gnb", metrics=("accuracy",), labels=[Label("a", 1, ts=1.5),
                                                                          Label("b", 0, ts=2.5)])
    assert label_counts(df)["on_time"] == 1 and label_counts(df)["duplicate"] == 1
    assert label_counts(df)["at_end"] == 1  # b's label comes after the last event


@pytest.mark.parametrize("kwargs, message", [
    ({"delay": -1}, "delay must be an int >= 0"),
    ({"delay": "soon"}, "delay must be an int >= 0"),
    ({"delay": 1.5}, "delay must be an int >= 0"),
    ({"delay": dt.timedelta(seconds=1)}, "moment='ts'"),
    ({"delay": (5, 1)}, r"\(low, high\) integers with 0 <= low <= high"),
    ({"delay": (0.5, 2)}, r"\(low, high\) integers"),
    ({"delay": 1, "moment": "time"}, "unknown moment 'time'; accepted: None"),
    ({"delay": -1.0, "moment": "ts"}, "delay must be a number >= 0"),
    ({"delay": 1, "labels": []}, "either delay= .* or labels="),
    ({"delay": 1, "max_wait": 2.5}, "max_wait counts events"),
    ({"labels": [Label("a", 1)]}, "label for 'a' has no ts"),
    ({"labels": [("a", 1)]}, "must be eventml.events.Label"),
])
def test_bad_delay_settings_are_config_errors_naming_the_parameter(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        prequential([Event("a", {"x": 1.0}, label=1, ts=1.0)], "river_gnb", **kwargs)


def test_event_time_needs_ts_on_every_event():
    with pytest.raises(ConfigError, match="event 'b' has no ts"):
        prequential([Event("a", {"x": 1.0}, 1, ts=1.0), Event("b", {"x": 1.0}, 1)], "river_gnb",
                    delay=1.0, moment="ts")


def test_delay_callable_must_return_a_valid_delay():
    with pytest.raises(ConfigError, match="delay callable must return an int >= 0 .* event 'a'"):
        prequential([Event("a", {"x": 1.0}, label=1)], "river_gnb", delay=lambda e: -2)


@pytest.mark.integration
def test_labels_read_back_from_kafka_join_like_labels_in_memory(kafka_bootstrap, topic, irregular):
    from kafka import KafkaProducer

    from eventml.consumer import read_dead_letters
    from eventml.events import encode_label

    events = irregular[:800]
    delays = [random.Random(i).uniform(0.5, 20.0) for i in range(len(events))]
    labels = [Label(e.id, e.label, ts=e.ts + d) for e, d in zip(events, delays)]
    unlabelled = [dataclasses.replace(e, label=None) for e in events]
    assert em.produce(unlabelled, topic, progress=False).delivered == len(events)
    labels_topic = f"{topic}.labels"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for label in labels:
        producer.send(labels_topic, key=label.id.encode(), value=encode_label(label))
    producer.send(labels_topic, key=b"bad", value=b'{"id": "e-1"}')  # no label: dead-lettered
    producer.flush()
    producer.close()
    read = em.read_labels(labels_topic)
    assert read == labels
    assert read_dead_letters(labels_topic)["reason"].tolist() == ["missing_label"]
    from_kafka = prequential(em.replay(topic), "river_logreg", metrics=("accuracy",), labels=read)
    in_memory = prequential(unlabelled, "river_logreg", metrics=("accuracy",), labels=labels)
    assert final(from_kafka, "river_logreg", "accuracy") == final(in_memory, "river_logreg", "accuracy")
    assert label_counts(from_kafka) == label_counts(in_memory)


def test_split_labels_holds_each_label_back_by_a_delay_in_range_and_loses_the_given_share():
    source = list(em.synthetic("sea", 4000, seed=5))
    events, labels = split_labels(source, (2.0, 8.0), loss=0.25, seed=3)
    assert [e.id for e in events] == [e.id for e in source]
    assert all(e.label is None for e in events)
    assert [e.features for e in events] == [e.features for e in source]
    by_id = {e.id: e for e in source}
    assert all(2.0 <= label.ts - by_id[label.id].ts <= 8.0 for label in labels)
    assert all(label.label == by_id[label.id].label for label in labels)
    assert [label.ts for label in labels] == sorted(label.ts for label in labels)
    assert len({label.id for label in labels}) == len(labels)
    assert 0.22 < 1 - len(labels) / len(source) < 0.28  # binomial(4000, 0.25): 3.5 standard deviations
    assert split_labels(source, (2.0, 8.0), loss=0.25, seed=3) == (events, labels)
    _, fixed = split_labels(source[:10], 1.5)
    assert [label.ts - e.ts for label, e in zip(fixed, source)] == [1.5] * 10


@pytest.mark.parametrize("kwargs, message", [
    (dict(delay_s=(5.0, 1.0)), "low <= high"),
    (dict(delay_s=-1.0), "delay_s must be a number >= 0"),
    (dict(delay_s=1.0, loss=1.5), "loss must be a share from 0 to 1"),
])
def test_split_labels_rejects_bad_settings_by_name(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        split_labels(em.synthetic("sea", 10), **kwargs)

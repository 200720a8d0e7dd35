"""Windowed features offline: the keyed transactions source, prequential(windows=) and read_dataframe(windows=)."""

from __future__ import annotations

import pandas as pd
import pytest

import eventml as em
from eventml.errors import ConfigError, SourceError
from eventml.sources import make_source, transactions
from eventml.windows import Window, add_windows

#: the windows of the fraud examples: bursts, amounts unusual for the user, new merchants
FRAUD_WINDOWS = [Window("user", "amount", ["count", "mean", "max"], over="15min"),
                 Window("user", "amount", ["mean", "std"], last=20),
                 Window("user", "merchant", "nunique", over="15min"),
                 Window("user", None, "since_last", last=1)]


def test_the_transactions_source_is_seeded_and_fraud_comes_in_bursts_of_one_user():
    events = list(transactions(5000, seed=3))
    assert events == list(make_source("transactions", 5000, seed=3)) != list(transactions(5000, seed=4))
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    fraud = [e for e in events if e.label == 1]
    assert 0.03 < len(fraud) / len(events) < 0.12
    in_burst = list(add_windows(events, Window("user", None, "count", over="5min")))
    bursts = [e.features["count_5min_by_user"] for e in in_burst if e.label == 1]
    normal = [e.features["count_5min_by_user"] for e in in_burst if e.label == 0]
    assert sum(c > 0 for c in bursts) / len(bursts) > 0.6 > 0.1 > sum(c > 0 for c in normal) / len(normal)
    with pytest.raises(SourceError, match="fraud_share must be"):
        list(transactions(10, fraud_share=2))


def test_a_learner_with_windowed_features_beats_the_same_learner_without_them_by_a_clear_margin():
    def run(windows):
        df = em.prequential(transactions(8000, seed=1), "river_logreg", metrics=("f1", "roc_auc"), every=8000,
                            measure_memory=False, windows=windows)
        return df.iloc[-1]

    without, with_windows = run(None), run(FRAUD_WINDOWS)
    assert with_windows["f1"] > without["f1"] + 0.3
    assert with_windows["roc_auc"] > without["roc_auc"] + 0.15


def test_prequential_adds_the_windowed_features_in_stream_order_as_the_learner_sees_them():
    seen = []

    class Recorder:
        """A river-style classifier that keeps what it is asked about."""

        def predict_proba_one(self, x):
            seen.append(dict(x))
            return {}

        def learn_one(self, x, y):
            pass

    from river.base import Classifier

    recorder = type("Recorder", (Recorder, Classifier), {})()
    events = list(transactions(300, seed=2))
    em.prequential(events, {"recorder": recorder}, metrics=("accuracy",), windows=FRAUD_WINDOWS[:1],
                   measure_memory=False)
    present = [{k: v for k, v in e.features.items() if v is not None} for e in add_windows(events, FRAUD_WINDOWS[:1])]
    assert seen == present  # a river learner leaves the missing values out
    assert "amount_count_15min_by_user" in seen[-1] and "amount_count_15min_by_user" not in events[-1].features


def test_a_target_window_is_refused_with_delayed_labels():
    target = Window("user", None, "mean", last=10, target=True)
    with pytest.raises(ConfigError, match="a target window .* not with delay= or labels="):
        em.prequential(transactions(10), "river_logreg", delay=5, windows=[target])


def test_read_dataframe_adds_the_windowed_features_of_events_keyed_by_user(kafka_bootstrap, topic):
    em.create_topic(topic, partitions=3, bootstrap_servers=kafka_bootstrap)
    events = list(transactions(1500, seed=5))
    report = em.produce(events, topic, key="user", bootstrap_servers=kafka_bootstrap, progress=False)
    assert report.delivered == 1500
    # the read merges the partitions by record time, as the live updater does; records sent in the same
    # millisecond are ordered by partition, so the stream's clock runs up to a few minutes ahead of a
    # partition's events: a lateness of an hour covers it
    windows = [Window("user", "amount", ["count", "mean", "max"], over="15min", lateness="1h"),
               Window("user", "merchant", "nunique", over="15min", lateness="1h"), *FRAUD_WINDOWS[1::2]]
    df = em.read_dataframe(topic, windows=windows, bootstrap_servers=kafka_bootstrap)
    assert df.groupby("user")["partition"].nunique().max() == 1  # a user's events share a partition
    assert df["partition"].nunique() == 3
    expected = {e.id: e.features for e in add_windows(events, windows)}  # in the source's own order
    names = [n for w in windows for n in w.names]
    for row in df[["id", *names]].itertuples(index=False):
        want = expected[row.id]
        for name, value in zip(names, row[1:]):
            assert value == pytest.approx(want[name], rel=1e-12) if want[name] is not None else pd.isna(value)


def test_a_wrong_key_of_the_producer_names_it():
    with pytest.raises(ConfigError, match="key must be the name of a feature .* got 3"):
        em.producer.EventProducer("any", key=3)


def test_a_wrong_windows_argument_names_it():
    with pytest.raises(ConfigError, match="windows must be eventml.windows.Window objects"):
        list(add_windows(transactions(3), ["user:amount:count:1h"]))

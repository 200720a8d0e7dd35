"""Tests of eventml.sources: seeded synthetic streams, drift, datasets, data frames, pacing."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from eventml.errors import EventmlError, SourceError
from eventml.events import Event, decode_event, encode_event
from eventml.sources import (
    SOURCES,
    dataset,
    from_csv,
    from_dataframe,
    make_source,
    rate_limited,
    source_names,
    synthetic,
)

SYNTHETIC = ["agrawal", "hyperplane", "sea", "sine", "stagger"]
DATASETS = {"phishing": (1250, {0, 1}), "bananas": (5300, {0, 1}), "breast_cancer": (569, {0, 1}), "iris": (150, {0, 1, 2})}


def xy(events: list[Event]) -> tuple[list[list], list]:
    return [list(e.features.values()) for e in events], [e.label for e in events]


# ----------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("name", SYNTHETIC)
@pytest.mark.parametrize("drift_at", [None, 50])
def test_same_seed_gives_identical_events(name, drift_at):
    first = list(synthetic(name, 200, seed=7, drift_at=drift_at))
    second = list(synthetic(name, 200, seed=7, drift_at=drift_at))
    assert first == second


@pytest.mark.parametrize("name", SYNTHETIC)
def test_different_seed_gives_different_events(name):
    a = [e.features for e in synthetic(name, 50, seed=1)]
    b = [e.features for e in synthetic(name, 50, seed=2)]
    assert a != b


def test_events_have_sequential_ids_and_evenly_spaced_timestamps():
    events = list(synthetic("sea", 5, start_ts=100.0, interval_s=0.5, id_prefix="s-"))
    assert [e.id for e in events] == ["s-0", "s-1", "s-2", "s-3", "s-4"]
    assert [e.ts for e in events] == [100.0, 100.5, 101.0, 101.5, 102.0]


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_events_are_plain_python_and_valid_on_the_wire(name):
    for event in make_source(name, 20):
        assert all(isinstance(k, str) for k in event.features)
        assert all(type(v) in (int, float, str, bool, type(None)) for v in event.features.values())
        assert type(event.label) is int
        assert decode_event(encode_event(event)) == event


def test_sea_labels_follow_the_first_threshold_before_the_drift_and_the_second_after():
    k = 1000
    events = list(synthetic("sea", 2000, seed=3, drift_at=k))

    def labelled_by(threshold, stretch):
        return all(e.label == int(e.features["0"] + e.features["1"] > threshold) for e in stretch)

    assert labelled_by(8, events[: k - 5])
    assert labelled_by(9.5, events[k + 5 :])
    assert not labelled_by(8, events[k + 5 :])


def test_no_drift_keeps_the_first_concept_throughout():
    events = list(synthetic("sea", 3000, seed=3))
    assert all(e.label == int(e.features["0"] + e.features["1"] > 8) for e in events)


@pytest.mark.parametrize(
    "name, model",
    [
        ("sea", lambda: LogisticRegression(max_iter=1000)),
        ("hyperplane", lambda: LogisticRegression(max_iter=1000)),
        ("sine", lambda: DecisionTreeClassifier(max_depth=8, random_state=0)),
        ("agrawal", lambda: DecisionTreeClassifier(max_depth=8, random_state=0)),
        ("stagger", lambda: DecisionTreeClassifier(max_depth=8, random_state=0)),
    ],
)
@pytest.mark.parametrize("seed", [1, 42])
def test_model_fitted_before_the_drift_loses_accuracy_after_it(name, model, seed):
    k = 3000  # far enough in that river's own ConceptDriftStream would overflow
    events = list(synthetic(name, k + 1000, seed=seed, drift_at=k))
    fitted = model().fit(*xy(events[: k - 1000]))
    before = fitted.score(*xy(events[k - 1000 : k - 5]))
    after = fitted.score(*xy(events[k + 5 :]))
    assert after < before - 0.08, (before, after)


def test_wide_drift_mixes_both_concepts_around_the_drift_point():
    k = 2000
    events = list(synthetic("sine", 4000, seed=5, drift_at=k, drift_width=1000))
    # Sine function 1 reverses function 0, so each label says which concept made the event.
    new = [e.label != int(e.features["0"] < math.sin(e.features["1"])) for e in events]
    share = [sum(new[i : i + 500]) / 500 for i in (0, k - 250, 3500)]
    assert share[0] < 0.1 and 0.3 < share[1] < 0.7 and share[2] > 0.9, share


def test_abrupt_drift_late_in_a_long_stream_does_not_overflow():
    events = list(synthetic("sea", 20_000, drift_at=19_000))
    assert len(events) == 20_000


def test_endless_stream_when_n_events_is_none():
    stream = synthetic("sea", None)
    assert [next(stream).id for _ in range(3)] == ["e-0", "e-1", "e-2"]


@pytest.mark.parametrize("drift_at", [0, -1, 1000, 1500, 2.5, "10"])
def test_drift_at_outside_the_stream_is_rejected(drift_at):
    with pytest.raises(SourceError, match=r"drift_at must be an integer from 1 to 999"):
        synthetic("sea", 1000, drift_at=drift_at)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_events": 0}, "n_events must be an integer >= 1"),
        ({"n_events": -5}, "n_events must be an integer >= 1"),
        ({"n_events": 10, "drift_width": 0}, "drift_width must be an integer >= 1"),
        ({"n_events": 10, "drift_width": -3}, "drift_width must be an integer >= 1"),
    ],
)
def test_bad_parameters_are_rejected_with_the_accepted_values(kwargs, message):
    with pytest.raises(SourceError, match=message):
        make_source("sea", **kwargs)


def test_unknown_source_error_lists_the_known_names_sorted():
    with pytest.raises(SourceError) as info:
        make_source("foo", 10)
    assert str(info.value) == (
        "unknown source 'foo'; known sources: "
        "agrawal, bananas, breast_cancer, hyperplane, iris, phishing, sea, sine, stagger, transactions"
    )
    assert isinstance(info.value, EventmlError)


def test_drift_is_rejected_for_datasets():
    with pytest.raises(SourceError, match="drift_at only applies to synthetic sources"):
        make_source("iris", 100, drift_at=50)


def test_source_names_are_sorted_registry_keys():
    assert source_names() == sorted(SOURCES) == sorted(SYNTHETIC + list(DATASETS) + ["transactions"])


# ----------------------------------------------------------------------------- datasets


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_dataset_gives_all_its_events_and_labels(name):
    size, labels = DATASETS[name]
    events = list(dataset(name))
    assert len(events) == size
    assert {e.label for e in events} == labels
    assert len({e.id for e in events}) == size


def test_dataset_keeps_shipped_order_and_truncates_to_n_events():
    first = list(dataset("phishing", 10))
    assert [e.features for e in first] == [e.features for e in list(dataset("phishing"))[:10]]


def test_dataset_shuffle_is_a_deterministic_permutation():
    shipped = [e.features for e in dataset("iris")]
    a = [e.features for e in dataset("iris", shuffle_seed=1)]
    b = [e.features for e in dataset("iris", shuffle_seed=1)]
    assert a == b != shipped
    assert sorted(map(str, a)) == sorted(map(str, shipped))


def test_dataset_rejects_more_events_than_it_has():
    with pytest.raises(SourceError, match=r"n_events must be an integer from 1 to 150 \(the size of 'iris'\)"):
        dataset("iris", 151)


# ----------------------------------------------------------------------------- data frames and CSV


def test_from_dataframe_turns_nan_into_none_and_numpy_into_python():
    df = pd.DataFrame({"x": [1.5, np.nan], "n": np.array([1, 2], dtype=np.int64), "c": ["a", None]})
    events = list(from_dataframe(df))
    assert [e.features for e in events] == [{"x": 1.5, "n": 1, "c": "a"}, {"x": None, "n": 2, "c": None}]
    assert type(events[0].features["n"]) is int
    assert [e.id for e in events] == ["e-0", "e-1"]
    assert all(e.label is None and e.ts is None for e in events)


def test_from_dataframe_reads_target_id_and_ts_columns():
    df = pd.DataFrame({"key": [10, 11], "when": [5.0, 6.0], "x": [0.1, 0.2], "y": [True, False]})
    events = list(from_dataframe(df, target="y", id_column="key", ts_column="when"))
    assert events == [Event("10", {"x": 0.1}, 1, 5.0), Event("11", {"x": 0.2}, 0, 6.0)]


def test_from_dataframe_reads_datetime_ts_as_epoch_seconds():
    df = pd.DataFrame({"when": pd.to_datetime(["1970-01-01 00:00:10"]), "x": [1]})
    assert next(from_dataframe(df, ts_column="when")).ts == 10.0


@pytest.mark.parametrize("role", ["target", "id_column", "ts_column"])
def test_from_dataframe_names_a_missing_column_and_lists_the_columns(role):
    df = pd.DataFrame({"a": [1], "b": [2]})
    with pytest.raises(SourceError, match=r"'nope' is not in the data; its columns are: a, b"):
        from_dataframe(df, **{role: "nope"})


def test_from_dataframe_rejects_rows_without_an_id():
    df = pd.DataFrame({"key": ["a", None], "x": [1, 2]})
    with pytest.raises(SourceError, match="id column 'key' is empty"):
        from_dataframe(df, id_column="key")


def test_from_csv_round_trip(tmp_path):
    path = tmp_path / "events.csv"
    pd.DataFrame({"id": ["a", "b"], "x": [0.5, None], "color": ["red", "blue"], "label": [0, 1]}).to_csv(
        path, index=False
    )
    events = list(from_csv(path, target="label", id_column="id"))
    assert events == [Event("a", {"x": 0.5, "color": "red"}, 0), Event("b", {"x": None, "color": "blue"}, 1)]


def test_from_csv_missing_file_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="cannot read CSV file"):
        from_csv(tmp_path / "missing.csv")


# ----------------------------------------------------------------------------- pacing


def test_rate_limited_paces_events():
    started = time.perf_counter()
    events = list(rate_limited(synthetic("sea", 50), 500))
    assert len(events) == 50
    assert time.perf_counter() - started >= 0.09  # event 49 is due 49/500 = 0.098 s after the first


def test_make_source_applies_the_rate():
    started = time.perf_counter()
    assert len(list(make_source("sea", 21, rate=200))) == 21
    assert time.perf_counter() - started >= 0.09  # 20/200 = 0.1 s


def test_no_rate_means_no_pacing():
    events = list(synthetic("sea", 10))
    assert list(rate_limited(events, None)) == events


@pytest.mark.parametrize("rate", [0, -1, float("nan"), "fast", True])
def test_non_positive_rate_is_rejected(rate):
    with pytest.raises(SourceError, match="rate must be a positive number"):
        rate_limited([], rate)

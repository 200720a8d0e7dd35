"""Drift detection inside prequential: positions, records, policies, errors."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from river import drift as river_drift
from river import evaluate, metrics

import eventml as em
from eventml.drift import DriftWatch, drift_table, error_of
from eventml.errors import ConfigError
from eventml.evaluate import prequential
from eventml.learners import make_learner

K = 3000  # true drift position of the streams below


@pytest.fixture(scope="module")
def agrawal():
    return list(em.synthetic("agrawal", 4500, drift_at=K, seed=1))


@pytest.fixture(scope="module")
def sea():
    return list(em.synthetic("sea", 5000, drift_at=K, seed=2))


@pytest.mark.parametrize("source", ["sea", "agrawal"])
def test_adwin_detections_fall_shortly_after_the_true_drift(request, source):
    events = request.getfixturevalue(source)
    names = ["river_gnb", "river_logreg", "batch_logreg"]
    df = prequential(events, names, metrics=("accuracy",), drift="adwin", measure_memory=False)
    table = drift_table(df)
    for name in names:
        first = table.loc[table["learner"] == name, "events"].min()
        # nothing before the change; found within 500 events after it (ADWIN checks every 32)
        assert K < first <= K + 500, (name, first)


def test_page_hinkley_detects_the_drift_after_it_happens(agrawal):
    df = prequential(agrawal, ["river_gnb", "river_hoeffding"], metrics=("accuracy",), drift="page_hinkley",
                     measure_memory=False)
    table = drift_table(df)
    assert set(table["learner"]) == {"river_gnb", "river_hoeffding"}
    assert (table.groupby("learner")["events"].min().between(K + 1, K + 500)).all()


def test_each_detection_has_a_row_of_its_own_that_the_table_lists(sea):
    df = prequential(sea, ["river_gnb", "river_logreg"], metrics=("accuracy",), drift="adwin", every=500,
                     measure_memory=False)
    table = drift_table(df)
    assert len(table) > 0 and list(table.columns) == ["learner", "detector", "step", "events"]
    assert set(table["detector"]) == {"adwin"}
    assert (table["step"] == table["events"]).all()  # no delay: every event is labelled at once
    assert table["step"].is_monotonic_increasing  # in the order they happened
    # a row every 500 labelled events, plus one at each detection between them
    for learner, rows in df.groupby("learner"):
        hits = set(table.loc[table["learner"] == learner, "step"])
        assert set(rows["step"]) == set(range(500, len(sea) + 1, 500)) | hits
        assert rows.loc[rows["step"] % 500 != 0, "detection"].notna().all()
    # the cumulative drifts column counts the detections up to each result row
    for row in df.itertuples():
        assert row.drifts == ((table["learner"] == row.learner) & (table["step"] <= row.step)).sum()
    # columns survive what pandas does to a table: a CSV round trip gives the same detections
    again = pd.read_csv(io.StringIO(df.to_csv(index=False)))
    assert drift_table(again).to_dict("records") == table.to_dict("records")


def test_detection_positions_with_delayed_labels_count_events_read(sea):
    df = prequential(sea, "river_gnb", metrics=("accuracy",), drift="adwin", delay=100, measure_memory=False)
    first = drift_table(df).iloc[0]
    # a label is scored 100 events after its prediction, so at a detection 100 more events were read
    assert first["events"] == first["step"] + 100
    assert K < first["step"] <= K + 500


def test_recording_drifts_does_not_change_the_metrics(sea):
    plain = prequential(sea, "river_logreg", metrics=("accuracy",))
    watched = prequential(sea, "river_logreg", metrics=("accuracy",), drift="page_hinkley")
    assert watched["accuracy"].iloc[-1] == plain["accuracy"].iloc[-1]
    river = evaluate.progressive_val_score([(e.features, e.label) for e in sea],
                                           make_learner("river_logreg").model, metrics.Accuracy())
    assert watched["accuracy"].iloc[-1] == river.get()
    assert "drifts" not in plain.columns and drift_table(plain).empty


def test_a_detector_object_is_cloned_per_learner_and_left_untouched(sea):
    detector = river_drift.ADWIN(delta=0.01)
    df = prequential(sea, ["river_gnb", "river_logreg"], metrics=("accuracy",), drift=detector)
    assert detector.n_detections == 0 and detector.width == 0
    assert set(drift_table(df)["detector"]) == {"ADWIN"}
    assert set(drift_table(df)["learner"]) == {"river_gnb", "river_logreg"}


def rolling_after_drift(df, name):
    """Accuracy over the 1000 labelled events after the true drift."""
    return df.loc[(df["learner"] == name) & (df["step"] == K + 1000), "rolling_accuracy"].item()


@pytest.mark.parametrize("name, policy", [("river_gnb", "reset"), ("batch_logreg_all", "refit")])
def test_a_policy_recovers_faster_than_none_after_the_drift(agrawal, name, policy):
    # GaussianNB keeps 3000 events of statistics and a batch model refit on everything so far
    # keeps the old concept: both adapt slowly. A 1000-event accuracy has a standard error
    # of about 0.016, so a gain of 0.15 is far beyond noise and needs a working policy.
    kwargs = dict(metrics=("accuracy",), rolling_window=1000, every=500, measure_memory=False)
    without = prequential(agrawal, name, drift="adwin", **kwargs)
    with_policy = prequential(agrawal, name, drift="adwin", on_drift=policy, **kwargs)
    assert rolling_after_drift(with_policy, name) > rolling_after_drift(without, name) + 0.15
    assert with_policy["drifts"].iloc[-1] >= 1


def test_reset_swaps_in_a_fresh_learner_and_keeps_the_given_one(agrawal):
    learner = make_learner("river_gnb")
    prequential(agrawal, [learner], metrics=("accuracy",), drift="adwin", on_drift="reset")
    # the given object learned until the drift; the evaluation went on with a fresh clone
    assert K < sum(learner.model.class_counts.values()) < len(agrawal)


def test_refit_falls_back_to_reset_for_learners_without_a_window(agrawal):
    df = prequential(agrawal, ["river_gnb", "sgd_logreg"], metrics=("accuracy",), drift="adwin",
                     on_drift="refit", rolling_window=1000, every=500, measure_memory=False)
    reset = prequential(agrawal, ["river_gnb", "sgd_logreg"], metrics=("accuracy",), drift="adwin",
                        on_drift="reset", rolling_window=1000, every=500, measure_memory=False)
    assert df.equals(reset.assign(predict_seconds=df["predict_seconds"], learn_seconds=df["learn_seconds"]))


def test_refit_keeps_only_the_last_refit_window_events(agrawal):
    learner = make_learner("batch_logreg_all")
    df = prequential(agrawal, [learner], metrics=("accuracy",), drift="adwin", on_drift="refit",
                     refit_window=150, measure_memory=False)
    last = drift_table(df)["step"].iloc[-1]
    # at the detection the window kept 150 events, then learned that event and every later one
    assert len(learner.xs_) == 150 + len(agrawal) - last + 1


def test_errors_fed_to_the_detector():
    assert error_of(True, 1, 1, None) == 0.0 and error_of(True, 0, 1, None) == 1.0
    assert error_of(True, 1, None, {0: 0.9, 1: 0.1}) == 1.0  # label derived from the probabilities
    assert error_of(False, 2.0, -1.0, None) == 3.0
    assert error_of(True, 1, None, {}) is None  # no prediction yet: not fed


def test_a_drop_of_the_error_is_not_a_drift():
    watch = DriftWatch(river_drift.ADWIN(), "adwin")
    assert not any(watch.update(e) for e in [1.0] * 300 + [0.0] * 1000)
    watch = DriftWatch(river_drift.ADWIN(), "adwin")
    assert any(watch.update(e) for e in [0.0] * 300 + [1.0] * 1000)


@pytest.mark.parametrize("kwargs, message", [
    ({"drift": "kswin"}, "unknown drift detector 'kswin'; known detectors: adwin, page_hinkley"),
    ({"drift": 3}, "drift must be one of adwin, page_hinkley, None, or a detector"),
    ({"drift": "adwin", "on_drift": "retrain"}, "unknown on_drift policy 'retrain'; accepted: None, 'reset', 'refit'"),
    ({"on_drift": "reset"}, "on_drift='reset' needs a drift detector"),
    ({"drift": "adwin", "on_drift": "refit", "refit_window": 0}, "refit_window must be a positive integer"),
])
def test_bad_drift_settings_are_config_errors_listing_the_accepted_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        prequential([], "river_gnb", **kwargs)

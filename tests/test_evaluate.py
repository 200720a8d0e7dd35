"""Prequential evaluation: one pass, many learners, and river's own figures exactly."""

from __future__ import annotations

import dataclasses

import pytest
from river import datasets, evaluate, metrics, naive_bayes, utils

import eventml as em
from eventml.errors import ConfigError, EventmlError, ModelError
from eventml.evaluate import accuracy_between, metric_names, prequential
from eventml.scoring import Scorer
from eventml.events import Event
from eventml.learners import make_learner

RIVER_METRICS = {
    "accuracy": metrics.Accuracy,
    "log_loss": metrics.LogLoss,
    "f1": metrics.F1,
    "roc_auc": metrics.ROCAUC,
    "mae": metrics.MAE,
    "rmse": metrics.RMSE,
    "r2": metrics.R2,
}


@pytest.fixture(scope="module")
def sea():
    return list(em.synthetic("sea", 3000, seed=1))


@pytest.fixture(scope="module")
def friedman():
    rows = datasets.synth.Friedman(seed=1).take(1500)
    return [Event(f"e-{i}", {str(k): v for k, v in x.items()}, y) for i, (x, y) in enumerate(rows)]


def river_score(events, name, metric):
    """river's own progressive validation of a fresh copy of the named model."""
    dataset = [(e.features, e.label) for e in events]
    model = make_learner(name, seed=42).model
    return evaluate.progressive_val_score(dataset=dataset, model=model, metric=metric).get()


def final(df, learner, column):
    return df.loc[df["learner"] == learner, column].iloc[-1]


@pytest.mark.parametrize("name", ["river_logreg", "river_gnb"])
@pytest.mark.parametrize("metric", ["accuracy", "log_loss"])
def test_prequential_equals_river_progressive_val_score_exactly(sea, name, metric):
    df = prequential(sea, [name], metrics=("accuracy", "log_loss"), every=1000)
    assert final(df, name, metric) == river_score(sea, name, RIVER_METRICS[metric]())


def test_every_classification_metric_and_model_equals_river_in_one_pass(sea):
    names = ["river_logreg", "river_gnb", "river_hoeffding", "river_arf"]
    events = sea[:1500]
    df = prequential(events, names, every=500)
    for name in names:
        for metric in ("accuracy", "f1", "log_loss", "roc_auc"):
            assert final(df, name, metric) == river_score(events, name, RIVER_METRICS[metric]()), (name, metric)


@pytest.mark.parametrize("name", ["river_linreg", "river_hoeffding_reg"])
def test_regression_metrics_equal_river(friedman, name):
    df = prequential(friedman, name, every=500)
    assert not {"accuracy", "labels_on_time", "drifts"} & set(df.columns)
    for metric in ("mae", "rmse", "r2"):
        assert final(df, name, metric) == river_score(friedman, name, RIVER_METRICS[metric]())


def test_rolling_metric_equals_river_rolling_metric(sea):
    df = prequential(sea, ["river_logreg"], metrics=("accuracy", "log_loss"), rolling_window=250)
    for metric in ("accuracy", "log_loss"):
        expected = river_score(sea, "river_logreg", utils.Rolling(RIVER_METRICS[metric], window_size=250))
        assert final(df, "river_logreg", f"rolling_{metric}") == expected


def test_one_row_per_learner_every_n_labelled_events_and_at_the_end(sea):
    df = prequential(sea[:2500], ["river_gnb", "batch_logreg", "sgd_logreg"], metrics=("accuracy",), every=1000)
    assert df["step"].tolist() == [1000] * 3 + [2000] * 3 + [2500] * 3
    assert df["learner"].tolist() == ["river_gnb", "batch_logreg", "sgd_logreg"] * 3
    assert list(df.columns) == ["step", "events", "learner", "accuracy", "rolling_accuracy",
                                "predict_seconds", "learn_seconds", "memory_bytes"]
    assert (df[["predict_seconds", "learn_seconds"]] > 0).all().all()
    assert (df["memory_bytes"] > 0).all()
    # the cumulative times never go down
    for _, rows in df.groupby("learner"):
        assert rows["predict_seconds"].is_monotonic_increasing and rows["learn_seconds"].is_monotonic_increasing


def test_no_extra_end_row_when_the_stream_ends_on_a_result_row(sea):
    df = prequential(sea[:2000], "river_gnb", metrics=("accuracy",), every=1000)
    assert df["step"].tolist() == [1000, 2000]


def test_each_family_beats_the_majority_class_in_prequential(sea):
    majority = max(sum(e.label == c for e in sea) for c in (0, 1)) / len(sea)
    df = prequential(sea, ["river_logreg", "batch_logreg", "sgd_logreg"], metrics=("accuracy",))
    last = df[df["step"] == len(sea)].set_index("learner")["accuracy"]
    assert (last > majority + 0.15).all(), last


def test_unlabelled_events_are_predicted_but_not_scored_or_learned(sea):
    events = sea[:1000]
    mixed = []
    for e in events:
        mixed.append(e)
        mixed.append(dataclasses.replace(e, id=e.id + "-u", label=None))
    df = prequential(mixed, ["river_logreg"], metrics=("accuracy",), every=400)
    assert df["step"].tolist() == [400, 800, 1000]
    assert df["events"].tolist() == [799, 1599, 2000]  # a result row follows its labelled event
    assert final(df, "river_logreg", "accuracy") == river_score(events, "river_logreg", metrics.Accuracy())


def test_learners_are_trained_in_place(sea):
    learner = make_learner("river_gnb")
    prequential(sea[:100], [learner], metrics=("accuracy",))
    assert learner.model.predict_proba_one(sea[0].features) != {}


def test_learner_names_can_be_set_with_a_dict(sea):
    df = prequential(sea[:200], {"a": "river_gnb", "b": make_learner("river_gnb")}, metrics=("accuracy",))
    assert df["learner"].tolist() == ["a", "b"]
    assert df["accuracy"].iloc[0] == df["accuracy"].iloc[1]


def test_no_labelled_events_still_gives_one_row_per_learner():
    events = [Event("e-0", {"x": 1.0}), Event("e-1", {"x": 2.0})]
    df = prequential(events, ["river_gnb", "batch_logreg"], metrics=("accuracy",))
    assert df["step"].tolist() == [0, 0] and df["events"].tolist() == [2, 2]


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        prequential([], "river_gnb", metrics=("auc",))
    assert ", ".join(metric_names()) in str(info.value)


def test_task_mismatches_and_repeated_names_are_config_errors():
    with pytest.raises(ConfigError, match="mix classification and regression"):
        prequential([], ["river_gnb", "river_linreg"])
    with pytest.raises(ConfigError, match="do not apply to classification"):
        prequential([], "river_gnb", metrics=("mae",))
    with pytest.raises(ConfigError, match="not: river_gnb"):
        prequential([], "river_gnb", task="regression")
    with pytest.raises(ConfigError, match="repeated: river_gnb"):
        prequential([], ["river_gnb", "river_gnb"])
    with pytest.raises(ConfigError, match="unknown learner"):
        prequential([], "nope")


@pytest.mark.integration
def test_prequential_over_a_kafka_replay_equals_river_in_memory(kafka_bootstrap, topic):
    events = list(em.synthetic("sea", 2000, seed=4))
    report = em.produce(events, topic, progress=False)
    assert report.delivered == len(events)
    df = prequential(em.replay(topic), ["river_logreg", "river_gnb"], metrics=("accuracy", "log_loss"),
                     every=500)
    assert df["step"].iloc[-1] == len(events)
    for name in ("river_logreg", "river_gnb"):
        for metric in ("accuracy", "log_loss"):
            assert final(df, name, metric) == river_score(events, name, RIVER_METRICS[metric]())


def test_accuracy_between_equals_the_share_correct_in_the_stretch():
    events = list(em.synthetic("sine", 3000, seed=4, drift_at=1500))
    df = prequential(events, ["river_gnb"], metrics=("accuracy",), every=500)
    model = make_learner("river_gnb")
    correct = []
    for event in events:  # river's order by hand: predict, score, learn
        correct.append(model.predict_one(event.features) == event.label)
        model.learn_one(event.features, event.label)
    stretch = accuracy_between(df, 1500, 2500)
    assert stretch["river_gnb"] == pytest.approx(sum(correct[1500:2500]) / 1000, abs=1 / 1000)
    with pytest.raises(ConfigError, match="steps of result rows"):
        accuracy_between(df, 1500, 1700)


# ----------------------------------------------------------------------------- a learner that raises


class BoomOnPredict(naive_bayes.GaussianNB):
    """A user's model that cannot predict an event with the feature "boom"."""

    def predict_proba_one(self, x):
        if "boom" in x:
            raise ZeroDivisionError("boom while predicting")
        return super().predict_proba_one(x)


class BoomOnLearn(naive_bayes.GaussianNB):
    """A user's model that cannot learn from an event with the feature "boom"."""

    def learn_one(self, x, y):
        if "boom" in x:
            raise ZeroDivisionError("boom while learning")
        super().learn_one(x, y)


def with_boom_at(events, index):
    boom = dataclasses.replace(events[index], features={**events[index].features, "boom": 1.0})
    return events[:index] + [boom] + events[index + 1:]


PATHS = {
    "at_once": {},
    "delay": {"delay": 5},
    "drift": {"drift": "adwin"},
    "labels": "labels",
}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("stage, model", [("predict", BoomOnPredict), ("learn", BoomOnLearn)])
def test_a_learner_that_raises_stops_prequential_with_one_model_error(sea, path, stage, model):
    events = with_boom_at(sea[:300], 123)
    kwargs = PATHS[path]
    if kwargs == "labels":  # labels joined by id, 3 s after their event
        events = [dataclasses.replace(e, ts=float(i)) for i, e in enumerate(events)]
        kwargs = {"labels": [em.Label(e.id, e.label, e.ts + 3.0) for e in events]}
        events = [dataclasses.replace(e, label=None) for e in events]
    with pytest.raises(ModelError) as info:
        prequential(events, {"gnb": "river_gnb", "mine": model()}, metrics=("accuracy",), **kwargs)
    error = info.value
    assert (error.learner, error.event_id, error.stage) == ("mine", events[123].id, stage)
    assert isinstance(error.error, ZeroDivisionError) and error.__cause__ is error.error
    assert isinstance(error, EventmlError)
    verb = "predict" if stage == "predict" else "learn from"
    assert str(error) == (f"learner 'mine' failed to {verb} event {events[123].id!r}: "
                          f"ZeroDivisionError: boom while {stage}ing")


def test_a_scorer_offers_the_same_error_to_every_loop():
    track = Scorer(make_learner(BoomOnLearn(), name="mine"), ["accuracy"], 10)
    assert track.predict_event("e-1", {"boom": 1.0}) == (None, None)
    with pytest.raises(ModelError, match="learner 'mine' failed to learn from event 'e-1'"):
        track.learn("e-1", {"boom": 1.0}, 1)
    track.learn("e-2", {"x": 1.0}, 1)
    assert track.predict_event("e-3", {"x": 1.0}) == (1, None)
    track = Scorer(make_learner(BoomOnPredict(), name="mine"), ["accuracy"], 10)
    with pytest.raises(ModelError, match="learner 'mine' failed to predict event 'e-4': ZeroDivisionError"):
        track.predict_event("e-4", {"boom": 1.0})

"""The learner protocol over river, windowed scikit-learn refits and micro-batched partial_fit."""

from __future__ import annotations

import collections
import pickle

import pytest
from river import datasets, linear_model, naive_bayes, preprocessing
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier

import eventml as em
from eventml.errors import ConfigError
from eventml.events import Event
from eventml.learners import (
    MicroBatchPartialFit,
    RiverLearner,
    WindowedBatch,
    learner_names,
    make_learner,
)

CLASSIFIERS = ["river_logreg", "river_gnb", "river_hoeffding", "river_arf", "batch_logreg", "batch_logreg_all",
               "batch_forest", "sgd_logreg"]
REGRESSORS = ["river_linreg", "river_hoeffding_reg", "batch_linreg", "sgd_linreg"]


@pytest.fixture(scope="module")
def sea():
    return list(em.synthetic("sea", 2000, seed=1))


@pytest.fixture(scope="module")
def friedman():
    rows = datasets.synth.Friedman(seed=1).take(2000)
    return [Event(f"e-{i}", {str(k): v for k, v in x.items()}, y) for i, (x, y) in enumerate(rows)]


def test_learner_names_are_the_registry_sorted():
    assert learner_names() == sorted(CLASSIFIERS + REGRESSORS)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_each_classifier_beats_the_majority_class_test_then_train(name, sea):
    learner = make_learner(name, seed=1)
    correct = seen_majority = 0
    counts = collections.Counter()
    for event in sea:
        correct += learner.predict_one(event.features) == event.label
        if counts:
            seen_majority += counts.most_common(1)[0][0] == event.label
        learner.learn_one(event.features, event.label)
        counts[event.label] += 1
    assert learner.task == "classification"
    assert correct / len(sea) > seen_majority / len(sea) + 0.15


@pytest.mark.parametrize("name", REGRESSORS)
def test_each_regressor_beats_the_running_mean_test_then_train(name, friedman):
    learner = make_learner(name, seed=1)
    error = baseline = total = 0.0
    for i, event in enumerate(friedman):
        y_pred = learner.predict_one(event.features)
        if i:
            error += abs((y_pred or 0.0) - event.label)
            baseline += abs(total / i - event.label)
        learner.learn_one(event.features, event.label)
        total += event.label
    assert learner.task == "regression"
    assert error < 0.9 * baseline


def _probas(learner, events):
    return [learner.predict_proba_one(e.features) if learner.task == "classification"
            else learner.predict_one(e.features) for e in events]


def _train(learner, events):
    for event in events:
        learner.learn_one(event.features, event.label)
    return learner


def _stream(name, sea, friedman):
    return friedman if name in REGRESSORS else sea


@pytest.mark.parametrize("name", CLASSIFIERS + REGRESSORS)
def test_clone_is_unfitted_with_the_same_parameters(name, sea, friedman):
    events = _stream(name, sea, friedman)
    trained = _train(make_learner(name, seed=5), events[:600])
    before = _probas(trained, events[600:700])
    clone = trained.clone()
    fresh = make_learner(name, seed=5)
    assert repr(clone) == repr(fresh)
    assert clone.name == trained.name
    assert _probas(clone, events[600:700]) == _probas(fresh, events[600:700])
    # the clone learns like a fresh learner, and the original is untouched
    assert _probas(_train(clone, events[:600]), events[600:700]) == before
    assert _probas(trained, events[600:700]) == before


@pytest.mark.parametrize("name", CLASSIFIERS + REGRESSORS)
def test_pickle_round_trip_gives_the_same_predictions(name, sea, friedman):
    events = _stream(name, sea, friedman)
    learner = _train(make_learner(name, seed=2), events[:650])  # mid-batch and mid-window
    copy = pickle.loads(pickle.dumps(learner))
    assert _probas(copy, events[650:800]) == _probas(learner, events[650:800])
    # and both keep learning identically
    _train(copy, events[650:900])
    _train(learner, events[650:900])
    assert _probas(copy, events[900:1000]) == _probas(learner, events[900:1000])


@pytest.mark.parametrize("name", CLASSIFIERS + REGRESSORS)
def test_same_seed_gives_identical_predictions(name, sea, friedman):
    events = _stream(name, sea, friedman)
    one = _train(make_learner(name, seed=3), events[:800])
    two = _train(make_learner(name, seed=3), events[:800])
    assert _probas(one, events[800:1000]) == _probas(two, events[800:1000])


def test_seed_reaches_random_learners():
    assert make_learner("river_arf", seed=7).model.seed == 7
    assert make_learner("sgd_logreg", seed=7).estimator.random_state == 7
    assert make_learner("batch_forest", seed=7).estimator.random_state == 7


def test_unknown_learner_name_lists_the_known_names_sorted():
    with pytest.raises(ConfigError) as info:
        make_learner("river_svm")
    message = str(info.value)
    assert "'river_svm'" in message
    assert ", ".join(sorted(learner_names())) in message


def test_objects_are_wrapped_by_family_and_named():
    river = make_learner(naive_bayes.GaussianNB(), name="gnb")
    assert isinstance(river, RiverLearner) and river.name == "gnb"
    batch = make_learner(LogisticRegression())
    assert isinstance(batch, WindowedBatch) and batch.name == "window_LogisticRegression"
    partial = MicroBatchPartialFit(SGDClassifier())
    assert make_learner(partial) is partial
    with pytest.raises(ConfigError, match="cannot use"):
        make_learner(42)


class MyLogReg(linear_model.LogisticRegression):
    """A user's own river model, defined outside river."""


class MyScaledRidge(linear_model.LinearRegression):
    """A user's river regressor with its own __init__."""

    def __init__(self, l2=0.1):
        super().__init__(l2=l2)


class MyForest(RandomForestClassifier):
    """A user's own scikit-learn estimator."""


class MyLearner:
    """A learner of the eventml protocol, from nowhere in particular."""

    name, task = "mine", "classification"

    def predict_proba_one(self, x):
        return {}

    def predict_one(self, x):
        return None

    def learn_one(self, x, y):
        pass

    def clone(self):
        return MyLearner()


def test_a_river_subclass_defined_outside_river_is_a_river_learner(sea):
    learner = make_learner(MyLogReg(), name="mine")
    assert isinstance(learner, RiverLearner) and type(learner.model) is MyLogReg
    assert learner.task == "classification" and learner.name == "mine"
    _train(learner, sea[:500])
    assert learner.predict_one(sea[600].features) in (0, 1)
    regressor = make_learner(MyScaledRidge())
    assert regressor.task == "regression" and regressor.name == "MyScaledRidge"


def test_a_river_pipeline_ending_in_a_user_model_is_a_river_learner(sea):
    pipeline = preprocessing.StandardScaler() | MyLogReg()
    learner = make_learner(pipeline)
    assert isinstance(learner, RiverLearner) and learner.model is pipeline
    assert learner.task == "classification"
    _train(learner, sea[:200])


def test_a_scikit_learn_subclass_is_a_windowed_batch(sea):
    learner = make_learner(MyForest(n_estimators=5, random_state=0))
    assert isinstance(learner, WindowedBatch) and learner.name == "window_MyForest"
    assert learner.task == "classification"
    _train(learner, sea[:300])
    assert learner.n_fits_ == 3


def test_an_eventml_protocol_object_is_used_as_it_is():
    mine = MyLearner()
    assert make_learner(mine, name="renamed") is mine and mine.name == "renamed"


@pytest.mark.parametrize("obj", [42, object(), {"learn_one": None}, naive_bayes.GaussianNB])
def test_an_object_that_is_no_learner_gets_a_one_sentence_config_error(obj):
    with pytest.raises(ConfigError) as info:
        make_learner(obj)
    message = str(info.value)
    assert message.count(". ") == 0 and "\n" not in message
    assert message.startswith("cannot use ")


def test_a_river_estimator_that_neither_classifies_nor_regresses_is_refused_by_name():
    with pytest.raises(ConfigError, match="expected a river classifier or regressor"):
        make_learner(preprocessing.StandardScaler())


def test_windowed_batch_predicts_the_majority_before_the_first_fit():
    learner = WindowedBatch(LogisticRegression(), window=100, refit_every=10)
    assert learner.predict_one({"x": 1.0}) is None
    assert learner.predict_proba_one({"x": 1.0}) == {}
    for y in [1, 0, 1, 1]:
        learner.learn_one({"x": float(y)}, y)
    assert learner.fitted_ is None
    assert learner.predict_one({"x": 0.0}) == 1
    assert learner.predict_proba_one({"x": 0.0}) == {1: 0.75, 0: 0.25}


def test_windowed_batch_waits_for_two_classes_then_refits_every_n():
    learner = WindowedBatch(LogisticRegression(), window=50, refit_every=10)
    for _ in range(15):
        learner.learn_one({"x": 1.0}, "a")  # one class only: no fit, no crash
    assert learner.fitted_ is None and learner.predict_one({"x": 1.0}) == "a"
    learner.learn_one({"x": -1.0}, "b")  # the retry fits at once
    assert learner.n_fits_ == 1
    for i in range(100):
        learner.learn_one({"x": 1.0 if i % 2 else -1.0}, "a" if i % 2 else "b")
    assert learner.n_fits_ == 11
    assert len(learner.xs_) == 50
    assert learner.predict_one({"x": -1.0}) == "b"


def test_windowed_batch_without_window_fits_on_everything(sea):
    learner = _train(WindowedBatch(LogisticRegression(), window=None, refit_every=100), sea[:500])
    assert len(learner.xs_) == 500 and learner.n_fits_ == 5


def test_windowed_batch_learns_from_categorical_strings_and_missing_values():
    learner = WindowedBatch(LogisticRegression(), window=200, refit_every=50)
    colors = ["red", "green", "blue"]
    for i in range(300):
        color = colors[i % 3]
        learner.learn_one({"color": color, "x": None if i % 7 == 0 else 0.0}, int(color == "red"))
    assert learner.vectors_.feature_names_ == ["color=blue", "color=green", "color=red", "x"]
    assert learner.predict_one({"color": "red"}) == 1
    assert learner.predict_one({"color": "blue"}) == 0
    assert learner.predict_one({"color": "purple", "new": "feature"}) in (0, 1)


def test_micro_batch_predictions_between_batches_use_the_last_fit(sea):
    learner = MicroBatchPartialFit(SGDClassifier(loss="log_loss", random_state=0), batch_size=100)
    _train(learner, sea[:300])
    assert learner.n_batches_ == 3
    probe = _probas(learner, sea[1000:1050])
    _train(learner, sea[300:399])  # 99 buffered: no partial_fit yet
    assert learner.n_batches_ == 3 and _probas(learner, sea[1000:1050]) == probe
    learner.learn_one(sea[399].features, sea[399].label)
    assert learner.n_batches_ == 4 and _probas(learner, sea[1000:1050]) != probe


def test_micro_batch_discovers_classes_and_restarts_on_a_new_one():
    learner = MicroBatchPartialFit(SGDClassifier(random_state=0), batch_size=4)
    for y in ["a", "a", "a", "a"]:
        learner.learn_one({"x": 1.0}, y)
    assert learner.n_batches_ == 0 and learner.predict_one({"x": 1.0}) == "a"  # waits for 2 classes
    for x, y in [(-1.0, "b"), (-1.0, "b"), (1.0, "a"), (-1.0, "b")]:
        learner.learn_one({"x": x}, y)
    assert learner.classes_ == ["a", "b"] and learner.n_batches_ == 1
    for x, y in [(5.0, "c"), (1.0, "a"), (-1.0, "b"), (5.0, "c")]:
        learner.learn_one({"x": x}, y)
    assert learner.classes_ == ["a", "b", "c"] and learner.n_restarts_ == 1
    assert set(learner.predict_proba_one({"x": 0.0})) == {"a", "b", "c"}


def test_micro_batch_with_given_classes_predicts_all_of_them():
    learner = MicroBatchPartialFit(SGDClassifier(loss="log_loss", random_state=0), batch_size=2, classes=[0, 1, 2])
    learner.learn_one({"x": 1.0}, 0)
    learner.learn_one({"x": -1.0}, 1)
    assert learner.n_batches_ == 1
    assert sorted(learner.predict_proba_one({"x": 0.0})) == [0, 1, 2]


def test_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="window"):
        WindowedBatch(LogisticRegression(), window=0)
    with pytest.raises(ConfigError, match="refit_every"):
        WindowedBatch(LogisticRegression(), refit_every=0)
    with pytest.raises(ConfigError, match="partial_fit"):
        MicroBatchPartialFit(LogisticRegression())
    with pytest.raises(ConfigError, match="batch_size"):
        MicroBatchPartialFit(SGDClassifier(), batch_size=0)


@pytest.mark.parametrize("name", ["sgd_logreg", "batch_logreg"])
def test_binary_logistic_shortcut_gives_scikit_learns_probabilities_bit_for_bit(name):
    events = list(em.synthetic("sea", 1500, seed=8))
    learner = make_learner(name)
    for event in events[:1000]:
        learner.learn_one(event.features, event.label)
    assert learner.logistic_ is not None
    for event in events[1000:]:
        row = learner.vectors_.transform([event.features])
        if getattr(learner, "scaler_", None) is not None:
            row = learner.scaler_.transform(row)
        expected = learner.fitted_.predict_proba(row)[0].tolist()
        assert list(learner.predict_proba_one(event.features).values()) == expected


def test_models_other_than_binary_logistic_keep_scikit_learns_own_predict():
    learner = make_learner("batch_forest")
    for event in em.synthetic("sea", 600, seed=8):
        learner.learn_one(event.features, event.label)
    assert learner.fitted_ is not None and learner.logistic_ is None

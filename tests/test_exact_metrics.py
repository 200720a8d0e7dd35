"""The exact metric pairs give river's own figures, bit for bit, on any stream of predictions."""

from __future__ import annotations

import pickle
import random

import pytest
from river import metrics, utils

from eventml.exact_metrics import AccuracyPair, LogLossPair, RiverPair, log_loss, metric_pair
from eventml.learners import make_learner
from eventml.scoring import Scorer

CLASSES = {
    "bool": [False, True],
    "binary_int": [0, 1],
    "multiclass": [0, 1, 2, 3],
    "strings": ["cat", "dog", "ant"],
}


def random_proba(rng: random.Random, classes: list) -> dict:
    """Probabilities as learners give them, and the odd ones: one class, a missing class, 0 and 1."""
    shape = rng.random()
    if shape < 0.1:
        return {rng.choice(classes): 1.0}  # single-class
    if shape < 0.2:
        return {c: rng.choice([0.0, 1.0, 1e-17, 1 - 1e-17]) for c in classes}  # clamped at both ends
    present = [c for c in classes if rng.random() < 0.8] or classes[:1]  # the true class may be missing
    weights = [rng.random() for _ in present]
    total = sum(weights)
    return {c: w / total for c, w in zip(present, weights)}


def stream(seed: int, classes: list, n: int = 600) -> list[tuple]:
    rng = random.Random(seed)
    return [(rng.choice(classes), rng.choice(classes), random_proba(rng, classes)) for _ in range(n)]


@pytest.mark.parametrize("window", [1, 2, 7, 100])
@pytest.mark.parametrize("kind", list(CLASSES))
def test_accuracy_pair_equals_river_accuracy_and_rolling_accuracy_after_every_update(kind, window):
    pair, cumulative = AccuracyPair(window), metrics.Accuracy()
    rolling = utils.Rolling(metrics.Accuracy, window_size=window)
    assert pair.get_cumulative() == cumulative.get() and pair.get_rolling() == rolling.get()
    for y, label, _ in stream(window, CLASSES[kind]):
        pair.update(y, label)
        cumulative.update(y, label)
        rolling.update(y, label)
        assert pair.cumulative.get() == cumulative.get()
        assert pair.rolling.get() == rolling.get()


@pytest.mark.parametrize("window", [1, 2, 7, 100])
@pytest.mark.parametrize("kind", list(CLASSES))
def test_log_loss_pair_equals_river_log_loss_and_rolling_log_loss_after_every_update(kind, window):
    pair, cumulative = LogLossPair(window), metrics.LogLoss()
    rolling = utils.Rolling(metrics.LogLoss, window_size=window)
    assert pair.get_cumulative() == cumulative.get() and pair.get_rolling() == rolling.get()
    for y, _, proba in stream(window + 1000, CLASSES[kind]):
        pair.update(y, proba)
        cumulative.update(y, proba)
        rolling.update(y, proba)
        assert pair.cumulative.get() == cumulative.get()
        assert pair.rolling.get() == rolling.get()


@pytest.mark.parametrize("name", ["accuracy", "log_loss", "f1"])
@pytest.mark.parametrize("kind", ["bool", "multiclass"])
def test_update_run_equals_update_one_at_a_time_bit_for_bit(kind, name):
    """Runs of any length, with "no prediction yet" (None, {}) and unscorable predictions among them."""
    rng = random.Random(5)
    whole = stream(17, CLASSES[kind], n=900)
    one, runs = metric_pair(name, 50), metric_pair(name, 50)
    start = 0
    while start < len(whole):
        run = whole[start:start + rng.choice([1, 2, 37, 200])]
        start += len(run)
        ys, preds = [y for y, _, _ in run], [proba if one.wants_proba else label for _, label, proba in run]
        for k in range(len(preds)):
            if rng.random() < 0.05:
                preds[k] = rng.choice([None, {}, {True: "not a number"}])
        failed: dict = {}
        runs.update_run(ys, preds, failed)
        for k, (y, y_pred) in enumerate(zip(ys, preds)):
            if y_pred is None or y_pred == {}:
                continue
            try:
                one.update(y, y_pred)
            except Exception:
                assert k in failed
            else:
                assert k not in failed
        assert (runs.get_cumulative(), runs.get_rolling()) == (one.get_cumulative(), one.get_rolling())


def test_log_loss_takes_a_bare_probability_and_clamps_it_like_river():
    river_metric = metrics.LogLoss()
    for y, p in [(True, 0.0), (False, 1.0), (True, 0.3), (False, 0.3), (1, 1e-300), ("x", 0.5)]:
        assert log_loss(y, p) == river_metric._eval(y, p)


def test_a_failing_update_changes_nothing_as_in_river():
    pair = LogLossPair(3)
    pair.update(True, {True: 0.7})
    before = (pair.n, pair.mean, list(pair.ring), pair.window_n, pair.window_mean)
    with pytest.raises(TypeError):
        pair.update(True, {True: "not a number"})
    with pytest.raises(TypeError):
        metrics.LogLoss().update(True, {True: "not a number"})
    assert (pair.n, pair.mean, list(pair.ring), pair.window_n, pair.window_mean) == before


def test_other_metrics_are_river_objects_updated_together():
    pair = metric_pair("f1", 5)
    assert isinstance(pair, RiverPair) and isinstance(pair.cumulative, metrics.F1)
    assert not pair.wants_proba and metric_pair("roc_auc", 5).wants_proba
    assert not metric_pair("mae", 5, classifier=False).wants_proba
    assert isinstance(metric_pair("accuracy", 5, classifier=True), AccuracyPair)


@pytest.mark.parametrize("kind", ["bool", "multiclass"])
def test_a_scorer_scores_like_river_with_none_and_empty_predictions_left_out(kind):
    """Scorer.update against river's objects fed by hand, with river's rule for 'no prediction yet'."""
    names = ["accuracy", "log_loss", "f1", "roc_auc"] if kind == "bool" else ["accuracy", "log_loss"]
    scorer = Scorer(make_learner("river_logreg"), names, rolling_window=25)
    river_metrics = {"accuracy": metrics.Accuracy, "log_loss": metrics.LogLoss, "f1": metrics.F1,
                     "roc_auc": metrics.ROCAUC}
    cumulative = {n: river_metrics[n]() for n in names}
    rolling = {n: utils.Rolling(river_metrics[n], window_size=25) for n in names}
    rng = random.Random(7)
    for y, label, proba in stream(3, CLASSES[kind], n=800):
        if rng.random() < 0.1:
            label, proba = None, {}
        elif rng.random() < 0.05:
            label, proba = None, None
        scorer.update(y, label, proba)
        for n in names:
            y_pred = label if cumulative[n].requires_labels else proba
            if y_pred is not None and y_pred != {}:
                cumulative[n].update(y, y_pred)
                rolling[n].update(y, y_pred)
        expected = {**{n: m.get() for n, m in cumulative.items()},
                    **{f"rolling_{n}": m.get() for n, m in rolling.items()}}
        assert scorer.metrics() == expected


def test_a_scorer_with_exact_pairs_pickles_and_goes_on_counting_the_same():
    scorer = Scorer(make_learner("river_gnb"), ["accuracy", "log_loss"], rolling_window=4)
    data = stream(11, CLASSES["bool"], n=50)
    for y, label, proba in data[:30]:
        scorer.update(y, label, proba)
    copy = pickle.loads(pickle.dumps(scorer))
    for y, label, proba in data[30:]:
        scorer.update(y, label, proba)
        copy.update(y, label, proba)
    assert copy.metrics() == scorer.metrics()
    assert copy.cumulative[0].get() == scorer.metrics()["accuracy"]
    assert copy.rolling[1].get() == scorer.metrics()["rolling_log_loss"]

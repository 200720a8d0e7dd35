"""The per-event step shared by offline evaluation and the live updater, and its metrics.

A :class:`Scorer` holds one learner and its metrics. For each event it predicts (before
learning); when the event's label is known, the prediction made then is scored and the learner
learns from the features kept then. :func:`eventml.evaluate.prequential` runs many scorers over
a stream; :class:`eventml.live.LiveUpdater` runs one over Kafka, so live equals offline by
construction. The metrics are river's, cumulative and rolling: accuracy and log loss through
:mod:`eventml.exact_metrics` (river's figures exactly, at a fraction of the cost), the others
river's own metric objects.

Examples
--------
>>> import eventml as em
>>> from eventml.learners import make_learner
>>> scorer = Scorer(make_learner("river_gnb"), ["accuracy"], rolling_window=100)
>>> for event in em.synthetic("sea", 1000, seed=1):
...     label, proba = scorer.predict(event.features)
...     scorer.update(event.label, label, proba)
...     scorer.learn(event.id, event.features, event.label)
>>> print(round(scorer.metrics()["accuracy"], 3))
0.924
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Sequence
from typing import Any

from eventml.errors import ConfigError, ModelError
from eventml.exact_metrics import METRIC_TASKS, NO_PREDICTION, metric_pair
from eventml.lazy import attach

METRICS: dict[str, tuple[str, Any]]  # eventml.exact_metrics.METRICS, imported on first use (see the end)
from eventml.learners import CLASSIFICATION, REGRESSION
from eventml.validation import positive_int, subset_of

__all__ = ["METRICS", "DEFAULT_METRICS", "metric_names", "check_metrics", "Scorer"]

DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    CLASSIFICATION: ("accuracy", "f1", "log_loss", "roc_auc"),
    REGRESSION: ("mae", "rmse", "r2"),
}


def metric_names() -> list[str]:
    """The metric names a :class:`Scorer` (and :func:`~eventml.evaluate.prequential`) accepts, sorted.

    Examples
    --------
    >>> print(", ".join(metric_names()))
    accuracy, f1, log_loss, mae, r2, rmse, roc_auc
    """
    return sorted(METRIC_TASKS)


def check_metrics(metrics: Iterable[str] | str | None, task: str) -> list[str]:
    """The metric names to use for ``task``: ``metrics``, or the task's defaults when None.

    Raises
    ------
    ConfigError
        For an unknown metric (listing the known ones), one that does not fit the task, an
        empty list or a repeat.

    Examples
    --------
    >>> check_metrics(None, "regression")
    ['mae', 'rmse', 'r2']
    """
    chosen = list(DEFAULT_METRICS[task] if metrics is None else ([metrics] if isinstance(metrics, str) else metrics))
    subset_of("metric", chosen, METRIC_TASKS)
    wrong = [m for m in chosen if METRIC_TASKS[m] != task]
    if wrong:
        raise ConfigError(f"metric(s) {', '.join(wrong)} do not apply to {task}; "
                          f"use {', '.join(DEFAULT_METRICS[task])}")
    if not chosen or len(set(chosen)) != len(chosen):
        raise ConfigError(f"metrics must be a non-empty list without repeats, got {chosen!r}")
    return chosen


def memory_bytes(learner: Any) -> int:
    """A learner's own size estimate (``memory_bytes``), else the length of its pickle."""
    size = getattr(learner, "memory_bytes", None)
    return int(size) if size is not None else len(pickle.dumps(learner))


class Scorer:
    """One learner under evaluation: how it predicts, its metrics, and its time.

    Like river, a classifier is asked for probabilities by the metrics that do not need labels
    (log loss, ROC AUC) and for a label by the others; when both are needed and the learner's
    ``predict_one`` is the argmax of ``predict_proba_one`` (river's default and eventml's
    scikit-learn learners), the probabilities are computed once and the label derived from
    them. A prediction of ``None`` (or ``{}``), before the learner has learned anything, is not
    scored, as in river.

    :meth:`predict` lets what the learner raises through (the hot loops wrap it themselves, which
    costs nothing while nothing raises); :meth:`predict_event` and :meth:`learn` raise
    :class:`~eventml.errors.ModelError` naming the learner, the event and the stage.

    Parameters
    ----------
    learner
        An eventml learner (see :func:`eventml.learners.make_learner`).
    metrics
        Metric names (see :func:`metric_names`), checked with :func:`check_metrics`.
    rolling_window
        Scored predictions in the window of the rolling metrics (a positive integer).

    Raises
    ------
    ConfigError
        For a ``rolling_window`` that is not a positive integer.
    """

    def __init__(self, learner: Any, metrics: list[str], rolling_window: int):
        self.learner = learner
        self.names = list(metrics)
        rolling_window = positive_int("rolling_window", rolling_window)
        classifier = learner.task == CLASSIFICATION
        self.pairs = [metric_pair(m, rolling_window, classifier=classifier) for m in self.names]
        self.wants_proba = [pair.wants_proba for pair in self.pairs]
        self.need_proba = any(self.wants_proba)
        self.need_label = not all(self.wants_proba)
        self.derive_label = self.need_proba and self.need_label and getattr(learner, "label_from_proba", False)
        self.predict_seconds = 0.0
        self.learn_seconds = 0.0
        self.watch: Any = None  # an eventml.drift.DriftWatch, when prequential watches for drift
        self.drifts = 0

    @property
    def cumulative(self) -> list[Any]:
        """Each metric over every scored prediction, in the order of ``names``: objects with ``get()``."""
        return [pair.cumulative for pair in self.pairs]

    @property
    def rolling(self) -> list[Any]:
        """Each metric over the last ``rolling_window`` scored predictions: objects with ``get()``."""
        return [pair.rolling for pair in self.pairs]

    def predict(self, x: dict) -> tuple[Any, Any]:
        """``(label, proba)`` for features ``x``, each ``None`` when no metric needs it."""
        learner = self.learner
        if self.derive_label:  # the live updater's case: the label from the probabilities
            proba = learner.predict_proba_one(x)
            return (max(proba, key=proba.get) if proba else None), proba
        proba = learner.predict_proba_one(x) if self.need_proba else None
        if self.need_label:
            label = learner.predict_one(x)
        else:
            label = None
        return label, proba

    def failed(self, event_id: str, stage: str, error: BaseException) -> ModelError:
        """The error to raise (``from error``) when the learner raised at ``stage`` on an event."""
        return ModelError(self.learner.name, event_id, stage, error)

    def predict_event(self, event_id: str, x: dict) -> tuple[Any, Any]:
        """:meth:`predict`, raising :class:`~eventml.errors.ModelError` if the learner raises."""
        try:
            return self.predict(x)
        except Exception as exc:
            raise self.failed(event_id, "predict", exc) from exc

    def learn(self, event_id: str, x: dict, y: Any) -> None:
        """``learner.learn_one(x, y)``, raising :class:`~eventml.errors.ModelError` if it raises."""
        try:
            self.learner.learn_one(x, y)
        except Exception as exc:
            raise self.failed(event_id, "learn", exc) from exc

    def update(self, y: Any, label: Any, proba: Any) -> None:
        """Score a prediction made earlier against its label ``y``; what a metric raises is raised (the
        metrics before it in ``names`` have scored the prediction, the ones after it have not)."""
        for pair in self.pairs:
            y_pred = proba if pair.wants_proba else label
            if y_pred is not None and y_pred != NO_PREDICTION:  # river skips "no prediction yet" the same way
                pair.update(y, y_pred)

    def update_run(self, ys: Sequence[Any], labels: Sequence[Any], probas: Sequence[Any]) -> dict[int, BaseException]:
        """:meth:`update` of each prediction in turn, without raising: ``{k: exception}`` for each ``k``
        a metric could not score, and the metrics after it in ``names`` did not score it either, as
        :meth:`update` leaves them. A prediction of ``None`` or ``{}`` (before the learner has learned
        anything) is not scored, as in river."""
        failed: dict[int, BaseException] = {}
        for pair in self.pairs:
            pair.update_run(ys, probas if pair.wants_proba else labels, failed)
        return failed

    def metrics(self) -> dict[str, float]:
        """The metrics now: ``{name: cumulative}`` then ``{"rolling_" + name: rolling}``."""
        pairs = self.pairs
        out = {name: pair.get_cumulative() for name, pair in zip(self.names, pairs)}
        out.update((f"rolling_{name}", pair.get_rolling()) for name, pair in zip(self.names, pairs))
        return out

    def row(self, step: int, n_events: int, measure_memory: bool) -> dict[str, Any]:
        """One result row of :func:`~eventml.evaluate.prequential`'s table."""
        row: dict[str, Any] = {"step": step, "events": n_events, "learner": self.learner.name, **self.metrics(),
                               "predict_seconds": self.predict_seconds, "learn_seconds": self.learn_seconds,
                               "memory_bytes": memory_bytes(self.learner) if measure_memory else None}
        if self.watch is not None:
            row["drifts"] = self.drifts
        return row


#: river's metric classes, imported on first use (see :func:`eventml.exact_metrics.river_metric`)
__getattr__, __dir__ = attach(__name__, {"METRICS": "eventml.exact_metrics"})

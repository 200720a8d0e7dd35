"""Champion and challengers: which of several models answers, and the rule that promotes a challenger.

Several models learn from the same stream. One of them, the *champion*, gives the answer (the live
updater's predictions topic, the service's default model); the others, *challengers*, predict and learn
in its shadow. A :class:`Promotion` rule states when a challenger takes over: its rolling metric over the
last ``window`` scored labels beats the champion's by ``margin``, with at least ``min_labels`` labels
scored since the last change. :class:`Champion` applies the rule, label by label, and is the one piece of
code that decides, offline (:func:`eventml.prequential` with ``promotion=``) and live
(:class:`eventml.live.LiveUpdater` with ``models=`` and ``promotion=``): the same labels in the same
order give the same promotions at the same events.

Guaranteed: the decision depends only on the labels and each model's predictions, in the order they are
scored (the rolling figures are :mod:`eventml.exact_metrics`' pairs, river's figures exactly), and a
model's figure counts only its scored predictions (one it failed on, or gave no prediction for, is left
out, as in river). Not guaranteed: a promotion as soon as a challenger is better; it waits for the
margin and ``min_labels``.

Examples
--------
>>> rule = Promotion(metric="accuracy", window=4, margin=0.2, min_labels=4)
>>> champion = Champion(["old", "new"], rule)
>>> for n, (y, old, new) in enumerate([(1, 0, 1), (0, 1, 0), (1, 1, 1), (0, 1, 0), (1, 0, 1)], start=1):
...     promoted = champion.scored(y, [(old, None), (new, None)], events=n)
...     if promoted:
...         print(promoted["model"], promoted["previous"], promoted["events"], promoted["scores"])
new old 4 {'old': 0.25, 'new': 1.0}
>>> champion.name
'new'
"""

from __future__ import annotations

import dataclasses
from typing import Any

from eventml.errors import ConfigError
from eventml.exact_metrics import METRIC_TASKS, NO_PREDICTION, metric_pair, river_metric
from eventml.validation import is_number, one_of, positive_int

__all__ = ["Promotion", "Champion", "PROMOTION_COLUMNS", "challengers_topic", "champions_topic", "promotion_table"]


def challengers_topic(predictions_topic: str) -> str:
    """Where a live updater publishes its challengers' predictions (each naming its model in ``model``).

    >>> challengers_topic("sea-predictions")
    'sea-predictions.challengers'
    """
    return f"{predictions_topic}.challengers"


def champions_topic(predictions_topic: str) -> str:
    """Where a live updater publishes its promotions, one record each (see :meth:`Champion.scored`)."""
    return f"{predictions_topic}.champions"


@dataclasses.dataclass(frozen=True)
class Promotion:
    """The rule by which a challenger becomes the champion.

    After each scored label, once at least ``min_labels`` labels were scored since the last change (or the
    start), the challenger with the best rolling ``metric`` over its last ``window`` scored predictions is
    promoted if it beats the champion's by more than ``margin`` (higher is better for accuracy, F1, ROC AUC
    and R2; lower for log loss, MAE and RMSE). A tie goes to the model listed first. The promotion takes
    effect from the next event.

    Parameters
    ----------
    metric
        A metric name of :func:`eventml.evaluate.metric_names` that fits the models' task.
    window
        Scored predictions in each model's rolling figure.
    margin
        How much better (in the metric's units, >= 0) the challenger must be.
    min_labels
        Labels scored since the last change (or the start) before a promotion may happen.

    Examples
    --------
    >>> Promotion(metric="accuracy", window=500, margin=0.02, min_labels=200)
    Promotion(metric='accuracy', window=500, margin=0.02, min_labels=200)
    >>> Promotion(metric="mse")
    Traceback (most recent call last):
    ...
    eventml.errors.ConfigError: unknown metric 'mse'; known metrics: accuracy, f1, log_loss, mae, r2, rmse, roc_auc
    """

    metric: str = "accuracy"
    window: int = 500
    margin: float = 0.02
    min_labels: int = 200

    def __post_init__(self) -> None:
        one_of("metric", self.metric, sorted(METRIC_TASKS))
        positive_int("window", self.window)
        positive_int("min_labels", self.min_labels)
        if not is_number(self.margin) or not self.margin >= 0:
            raise ConfigError(f"margin must be a number >= 0, got {self.margin!r}")

    @property
    def higher_is_better(self) -> bool:
        """Whether a higher figure of the metric is better."""
        return river_metric(self.metric)().bigger_is_better

    def to_dict(self) -> dict[str, Any]:
        """The rule as a flat dict (for a results JSON or a promotion record)."""
        return dataclasses.asdict(self)


def check_promotion(promotion: Any, names: list[str]) -> Promotion | None:
    """``promotion`` if it is a :class:`Promotion` (needing two models or more) or None (shadow only: the first
    model stays the champion); a :class:`~eventml.errors.ConfigError` naming the parameter otherwise."""
    if promotion is None:
        return None
    if not isinstance(promotion, Promotion):
        raise ConfigError(f"promotion must be an eventml.promotion.Promotion or None (shadow only), got {promotion!r}")
    if len(names) < 2:
        raise ConfigError(f"promotion needs two models or more (a champion and a challenger), got {names}")
    return promotion


class Champion:
    """Which model is the champion now, and the figures the rule decides on (see the module docstring).

    Parameters
    ----------
    names
        The models' names, in their order; the first is the champion at the start.
    rule
        A :class:`Promotion`, or None: the first model stays the champion (shadow only), nothing is scored.
    classifier
        Whether the models are classifiers (probability metrics get probabilities only then).

    Attributes
    ----------
    index
        The champion's position in ``names``.
    labels
        Labels scored since the last change (or the start).
    promotions
        Every promotion so far, as :meth:`scored` returned it.
    """

    def __init__(self, names: list[str], rule: Promotion | None, classifier: bool = True):
        self.names = list(names)
        self.rule = rule
        self.index = 0
        self.labels = 0
        self.promotions: list[dict[str, Any]] = []
        self._pairs = ([metric_pair(rule.metric, rule.window, None, classifier) for _ in names]
                       if rule is not None else [])
        self._scored = [0] * len(self.names)  # scored predictions per model
        self._higher = rule.higher_is_better if rule is not None else True

    @property
    def name(self) -> str:
        """The champion's name."""
        return self.names[self.index]

    def figures(self) -> dict[str, float | None]:
        """Each model's rolling figure of the rule's metric (None before its first scored prediction)."""
        return {name: (pair.get_rolling() if n else None)
                for name, pair, n in zip(self.names, self._pairs, self._scored)}

    def scored(self, y: Any, predictions: list, events: int) -> dict[str, Any] | None:
        """One label: score each model's prediction ``(label, proba)`` against ``y`` (None for a model that
        has none for it), then apply the rule; return the promotion, or None.

        ``events`` is the number of events seen so far (this label's event included, or the events before a
        label that came later), recorded in the promotion.
        """
        rule = self.rule
        if rule is None:
            return None
        scored = self._scored
        for i, (pair, predicted) in enumerate(zip(self._pairs, predictions)):
            if predicted is not None:
                y_pred = predicted[1] if pair.wants_proba else predicted[0]
                if y_pred is not None and y_pred != NO_PREDICTION:
                    pair.update(y, y_pred)
                    scored[i] += 1
        self.labels += 1
        if self.labels < rule.min_labels:
            return None
        figures = self.figures()
        held = figures[self.name]
        if held is None:
            return None
        sign = 1.0 if self._higher else -1.0
        best, best_gain = None, rule.margin
        for i, figure in enumerate(figures.values()):
            if i != self.index and figure is not None and sign * (figure - held) > best_gain:
                best, best_gain = i, sign * (figure - held)
        if best is None:
            return None
        promotion = {"events": events, "labels": self.labels, "model": self.names[best], "previous": self.name,
                     "metric": rule.metric, "scores": figures}
        self.index, self.labels = best, 0
        self.promotions.append(promotion)
        return promotion


PROMOTION_COLUMNS = ["events", "labels", "model", "previous", "metric", "score", "previous_score"]
"""The columns of :func:`promotion_table`, the same for a live updater's promotions and an offline run's."""


def promotion_table(promotions: Any) -> Any:
    """The promotions as a DataFrame, one row each: ``events`` (events seen when it was decided), ``labels``
    (scored since the previous change), ``model`` (promoted), ``previous`` (the champion it replaced),
    ``metric``, ``score`` and ``previous_score`` (the two rolling figures that decided), then whatever else
    the records carry (a live promotion's ``id``, ``topic``, ``partition``, ``offset`` and ``ts``).

    ``promotions`` is a list of promotion records (:attr:`Champion.promotions`,
    :meth:`eventml.live.LiveUpdater.promotions`, what :func:`eventml.consumer.read_promotions` reads) or a
    result table of :func:`eventml.prequential` run with ``promotion=`` (its rows with ``promoted_from``).

    Examples
    --------
    >>> print(promotion_table([{"events": 40, "labels": 30, "model": "b", "previous": "a", "metric": "accuracy",
    ...                         "scores": {"a": 0.5, "b": 0.75}}]).to_string(index=False))
     events  labels model previous   metric  score  previous_score
         40      30     b        a accuracy   0.75             0.5
    """
    import pandas as pd

    if isinstance(promotions, pd.DataFrame):
        if "promoted_from" not in promotions:
            raise ConfigError("promotion_table needs a prequential result run with promotion= (a promoted_from "
                              "column) or a list of promotion records")
        rows = promotions[promotions["promoted_from"].notna()]
        return pd.DataFrame({"events": rows["promotion_events"].astype(int),
                             "labels": rows["promotion_labels"].astype(int), "model": rows["learner"],
                             "previous": rows["promoted_from"], "metric": rows["promotion_metric"],
                             "score": rows["promotion_score"], "previous_score": rows["promotion_previous_score"]},
                            columns=PROMOTION_COLUMNS).reset_index(drop=True)
    rows = [{**{k: v for k, v in p.items() if k != "scores"}, "score": p["scores"][p["model"]],
             "previous_score": p["scores"][p["previous"]]} for p in promotions]
    extra = [k for row in rows[:1] for k in row if k not in PROMOTION_COLUMNS]
    return pd.DataFrame(rows, columns=PROMOTION_COLUMNS + extra)

"""Metric pairs: one metric, cumulative and rolling, updated together, with river's figures exactly.

A :class:`~eventml.scoring.Scorer` keeps each metric twice, over all scored predictions and over
the last ``window`` of them (river's ``metrics.X()`` and ``utils.Rolling(metrics.X, window)``).
River's objects pay for their generality on every update (a confusion matrix of dicts, a window
of argument tuples, a second evaluation of the loss to revert it). For the two metrics the live
updater always tracks, accuracy and log loss, :class:`AccuracyPair` and :class:`LogLossPair` keep
the same numbers with river's own float arithmetic, operation for operation, so ``get()``
returns bit for bit what river's objects return (``tests/test_exact_metrics.py`` compares them on
random streams). Every other metric is river's own, wrapped by :class:`RiverPair`.

Guaranteed: for the same ``(y_true, y_pred)`` updates, each figure equals river's ``get()``
exactly, while fewer than 2**53 predictions are scored. Not guaranteed: a learner that changes a
probability dict after returning it; river evaluates the loss of the oldest prediction again
when it leaves the window, these pairs remember the loss it had when it was scored.

Examples
--------
>>> pair = metric_pair("log_loss", window=2)
>>> for y, proba in [(True, {True: 0.9, False: 0.1}), (False, {True: 0.2, False: 0.8}),
...                  (True, {True: 0.6, False: 0.4})]:
...     pair.update(y, proba)
>>> print(round(pair.cumulative.get(), 6), round(pair.rolling.get(), 6))
0.279777 0.366985
"""

from __future__ import annotations

import collections
import importlib
import math
from collections.abc import Sequence
from typing import Any, Callable

from eventml.learners.base import CLASSIFICATION, REGRESSION

__all__ = ["METRICS", "METRIC_TASKS", "Figure", "AccuracyPair", "LogLossPair", "RiverPair", "metric_pair",
           "river_metric"]

_RIVER_NAMES = {
    "accuracy": (CLASSIFICATION, "Accuracy"),
    "f1": (CLASSIFICATION, "F1"),  # binary: positive class True (== 1)
    "log_loss": (CLASSIFICATION, "LogLoss"),
    "roc_auc": (CLASSIFICATION, "ROCAUC"),  # binary, river's approximation
    "mae": (REGRESSION, "MAE"),
    "rmse": (REGRESSION, "RMSE"),
    "r2": (REGRESSION, "R2"),
}
METRIC_TASKS: dict[str, str] = {name: task for name, (task, _) in _RIVER_NAMES.items()}
"""Metric name -> task: every metric eventml scores (known without importing river's metrics)."""
METRICS: dict[str, tuple[str, Callable[[], Any]]]
"""Metric name -> (task, river metric class), made on first use (it imports :mod:`river.metrics`)."""


def river_metric(name: str) -> Callable[[], Any]:
    """River's class of metric ``name`` (imports :mod:`river.metrics`, which imports SciPy's statistics:
    about half a second, which the pairs of accuracy and log loss do without).

    Examples
    --------
    >>> river_metric("mae").__name__
    'MAE'
    """
    return getattr(importlib.import_module("river.metrics"), _RIVER_NAMES[name][1])


def __getattr__(name: str) -> Any:
    if name == "METRICS":
        metrics = {metric: (task, river_metric(metric)) for metric, task in METRIC_TASKS.items()}
        globals()["METRICS"] = metrics
        return metrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_P_MIN, _P_MAX = 1e-15, 1 - 1e-15  # river's ClassificationMetric._clamp_proba bounds
_log = math.log
NO_PREDICTION: dict = {}  # what a model predicts before it has learned anything, with None; never changed


class Figure:
    """A read-only view of one figure of a pair, read like a river metric: ``get()``.

    Parameters
    ----------
    pair
        The pair it reads.
    rolling
        True for the rolling figure, False for the cumulative one.
    """

    __slots__ = ("pair", "rolling")

    def __init__(self, pair: Any, rolling: bool):
        self.pair = pair
        self.rolling = rolling

    def get(self) -> float:
        """The figure now."""
        return self.pair.get_rolling() if self.rolling else self.pair.get_cumulative()

    def __repr__(self) -> str:
        kind = "rolling" if self.rolling else "cumulative"
        return f"{type(self.pair).__name__}.{kind}: {self.get()}"


class AccuracyPair:
    """Accuracy over all scored predictions and over the last ``window``.

    Equals ``river.metrics.Accuracy`` and ``river.utils.Rolling(river.metrics.Accuracy, window)``:
    river counts hits and predictions in floats that only ever hold whole numbers, so integer
    counts divide to the same float; no prediction gives 0.0, as in river.

    Parameters
    ----------
    window
        Scored predictions in the rolling window (a positive integer).

    Examples
    --------
    >>> pair = AccuracyPair(window=2)
    >>> for y, label in [(1, 1), (0, 1), (1, 1)]:
    ...     pair.update(y, label)
    >>> print(pair.get_cumulative(), pair.get_rolling())
    0.6666666666666666 0.5
    """

    wants_proba = False
    __slots__ = ("window", "n", "hits", "ring", "window_hits")

    def __init__(self, window: int):
        self.window = window
        self.n = 0
        self.hits = 0
        self.ring: collections.deque[int] = collections.deque()  # 1 for a hit, 0 for a miss, oldest first
        self.window_hits = 0

    def update(self, y_true: Any, y_pred: Any) -> None:
        """Score one predicted label (river's test: ``y_true == y_pred``)."""
        hit = 1 if y_true == y_pred else 0
        self.n += 1
        self.hits += hit
        ring = self.ring
        ring.append(hit)
        if len(ring) > self.window:
            self.window_hits += hit - ring.popleft()
        else:
            self.window_hits += hit

    def update_run(self, ys: Sequence[Any], preds: Sequence[Any], failed: dict[int, BaseException]) -> None:
        """:meth:`update` of each predicted label in turn, the same arithmetic kept in local variables:
        ``preds[k]`` against ``ys[k]``, except each ``k`` in ``failed`` and "no prediction yet" (``None``
        or ``{}``); one that cannot be compared is added to ``failed`` and changes nothing."""
        n, hits, window_hits, window = self.n, self.hits, self.window_hits, self.window
        ring = self.ring
        append, popleft, size = ring.append, ring.popleft, len(ring)
        for k, y_pred in enumerate(preds):
            if y_pred is None or (not y_pred and y_pred == NO_PREDICTION) or (failed and k in failed):
                continue
            try:
                hit = 1 if ys[k] == y_pred else 0
            except Exception as exc:
                failed[k] = exc
                continue
            n += 1
            hits += hit
            append(hit)
            if size == window:  # full: the oldest leaves
                window_hits += hit - popleft()
            else:
                size += 1
                window_hits += hit
        self.n, self.hits, self.window_hits = n, hits, window_hits

    def get_cumulative(self) -> float:
        """Accuracy over every scored prediction (0.0 before the first)."""
        return self.hits / self.n if self.n else 0.0

    def get_rolling(self) -> float:
        """Accuracy over the last ``window`` scored predictions (0.0 before the first)."""
        return self.window_hits / len(self.ring) if self.ring else 0.0

    @property
    def cumulative(self) -> Figure:
        return Figure(self, False)

    @property
    def rolling(self) -> Figure:
        return Figure(self, True)


def log_loss(y_true: Any, y_pred: Any) -> float:
    """River's ``LogLoss._eval``: the loss of one prediction, the same float.

    ``y_pred`` is a dict of probabilities (the one of ``True`` is read, 0 if missing) or the
    probability of ``True``; it is clamped to ``[1e-15, 1 - 1e-15]``.

    Examples
    --------
    >>> print(round(log_loss(True, {True: 0.8, False: 0.2}), 6), round(log_loss(1, {0: 1.0}), 3))
    0.223144 34.539
    """
    p_true = y_pred.get(True, 0.0) if isinstance(y_pred, dict) else y_pred
    p_true = max(min(p_true, _P_MAX), _P_MIN)
    if y_true:
        return -math.log(p_true)
    return -math.log(1 - p_true)


class LogLossPair:
    """Log loss over all scored predictions and over the last ``window``.

    Equals ``river.metrics.LogLoss`` and ``river.utils.Rolling(river.metrics.LogLoss, window)``:
    the same loss per prediction (:func:`log_loss`) and river's running mean, ``stats.Mean``,
    step for step (``n += 1.0; mean += (1.0 / n) * (x - mean)``, and its revert when a
    prediction leaves the window).

    Parameters
    ----------
    window
        Scored predictions in the rolling window (a positive integer).

    Examples
    --------
    >>> pair = LogLossPair(window=1)
    >>> pair.update(True, {True: 0.5, False: 0.5}); pair.update(False, {True: 0.5, False: 0.5})
    >>> print(round(pair.get_cumulative(), 6), round(pair.get_rolling(), 6))
    0.693147 0.693147
    """

    wants_proba = True
    __slots__ = ("window", "n", "mean", "ring", "window_n", "window_mean")

    def __init__(self, window: int):
        self.window = window
        self.n = 0.0
        self.mean = 0.0
        self.ring: collections.deque[float] = collections.deque()  # the loss of each prediction in the window
        self.window_n = 0.0
        self.window_mean = 0.0

    def update(self, y_true: Any, y_pred: Any) -> None:
        """Score one prediction's probabilities."""
        # log_loss(y_true, y_pred) inlined, with min and max spelled out as the comparisons they make
        p_true = y_pred.get(True, 0.0) if isinstance(y_pred, dict) else y_pred
        if _P_MAX < p_true:
            p_true = _P_MAX
        if _P_MIN > p_true:
            p_true = _P_MIN
        loss = -_log(p_true) if y_true else -_log(1 - p_true)
        n = self.n + 1.0
        self.n = n
        self.mean += (1.0 / n) * (loss - self.mean)
        ring = self.ring
        window_mean = self.window_mean
        if len(ring) == self.window:  # river's Rolling: revert the oldest first (Mean.revert), then update
            window_n = self.window_n - 1.0
            oldest = ring.popleft()
            window_mean = window_mean - (1.0 / window_n) * (oldest - window_mean) if window_n else 0.0
        else:
            window_n = self.window_n
        ring.append(loss)
        window_n += 1.0
        self.window_n = window_n
        self.window_mean = window_mean + (1.0 / window_n) * (loss - window_mean)

    def update_run(self, ys: Sequence[Any], preds: Sequence[Any], failed: dict[int, BaseException]) -> None:
        """:meth:`update` of each prediction's probabilities in turn, the same arithmetic kept in local
        variables: ``preds[k]`` against ``ys[k]``, except each ``k`` in ``failed`` and "no prediction yet"
        (``None`` or ``{}``); one whose loss cannot be computed is added to ``failed`` and changes
        nothing."""
        n, mean, window_n, window_mean, window = self.n, self.mean, self.window_n, self.window_mean, self.window
        ring = self.ring
        append, popleft = ring.append, ring.popleft
        for k, y_pred in enumerate(preds):
            if y_pred is None or (not y_pred and y_pred == NO_PREDICTION) or (failed and k in failed):
                continue
            try:  # log_loss(y_true, y_pred) inlined, with min and max spelled out as the comparisons they make
                p_true = y_pred.get(True, 0.0) if isinstance(y_pred, dict) else y_pred
                if _P_MAX < p_true:
                    p_true = _P_MAX
                if _P_MIN > p_true:
                    p_true = _P_MIN
                loss = -_log(p_true) if ys[k] else -_log(1 - p_true)
            except Exception as exc:
                failed[k] = exc
                continue
            n += 1.0
            mean += (1.0 / n) * (loss - mean)
            if window_n == window:  # river's Rolling: revert the oldest first (Mean.revert), then update
                window_n -= 1.0
                oldest = popleft()
                window_mean = window_mean - (1.0 / window_n) * (oldest - window_mean) if window_n else 0.0
            append(loss)
            window_n += 1.0
            window_mean = window_mean + (1.0 / window_n) * (loss - window_mean)
        self.n, self.mean, self.window_n, self.window_mean = n, mean, window_n, window_mean

    def get_cumulative(self) -> float:
        """Mean log loss over every scored prediction (0.0 before the first)."""
        return self.mean

    def get_rolling(self) -> float:
        """Mean log loss over the last ``window`` scored predictions (0.0 before the first)."""
        return self.window_mean

    @property
    def cumulative(self) -> Figure:
        return Figure(self, False)

    @property
    def rolling(self) -> Figure:
        return Figure(self, True)


class RiverPair:
    """Any river metric, cumulative and rolling: river's own objects, updated together.

    Parameters
    ----------
    metric_class
        A river metric class (``river.metrics.F1``, ...).
    window
        Scored predictions in the rolling window (a positive integer).
    wants_proba
        True if the metric is given probabilities, False for labels (or regression values).

    Examples
    --------
    >>> from river import metrics
    >>> pair = RiverPair(metrics.MAE, window=1, wants_proba=False)
    >>> pair.update(1.0, 3.0); pair.update(1.0, 2.0)
    >>> print(pair.get_cumulative(), pair.get_rolling())
    1.5 1.0
    """

    __slots__ = ("cumulative", "rolling", "wants_proba")

    def __init__(self, metric_class: Callable[[], Any], window: int, wants_proba: bool):
        from river import utils as river_utils

        self.cumulative = metric_class()
        self.rolling = river_utils.Rolling(metric_class, window_size=window)
        self.wants_proba = wants_proba

    def update(self, y_true: Any, y_pred: Any) -> None:
        """Score one prediction in both of river's objects."""
        self.cumulative.update(y_true=y_true, y_pred=y_pred)
        self.rolling.update(y_true=y_true, y_pred=y_pred)

    def update_run(self, ys: Sequence[Any], preds: Sequence[Any], failed: dict[int, BaseException]) -> None:
        """:meth:`update` of each prediction in turn, except each ``k`` in ``failed`` and "no prediction
        yet" (``None`` or ``{}``); one river raises on is added to ``failed``."""
        update = self.update
        for k, y_pred in enumerate(preds):
            if y_pred is None or (not y_pred and y_pred == NO_PREDICTION) or (failed and k in failed):
                continue
            try:
                update(ys[k], y_pred)
            except Exception as exc:
                failed[k] = exc

    def get_cumulative(self) -> float:
        return self.cumulative.get()

    def get_rolling(self) -> float:
        return self.rolling.get()


EXACT_PAIRS: dict[str, type] = {"accuracy": AccuracyPair, "log_loss": LogLossPair}
"""Metric name -> the pair that reproduces river's figures without river's objects."""


def metric_pair(name: str, window: int, metric_class: Callable[[], Any] | None = None,
                classifier: bool = True) -> Any:
    """The pair that tracks metric ``name`` over everything and over the last ``window``.

    Parameters
    ----------
    name
        A metric name of :data:`METRICS`.
    window
        Scored predictions in the rolling window (a positive integer).
    metric_class
        River's class of the metric, for the metrics without an exact pair (:func:`river_metric` when
        None).
    classifier
        Whether the learner is a classifier (only then do probability metrics get probabilities).

    Examples
    --------
    >>> type(metric_pair("accuracy", 10)).__name__, type(metric_pair("f1", 10)).__name__
    ('AccuracyPair', 'RiverPair')
    """
    if classifier and name in EXACT_PAIRS:
        return EXACT_PAIRS[name](window)
    if metric_class is None:
        metric_class = river_metric(name)
    return RiverPair(metric_class, window, classifier and not metric_class().requires_labels)

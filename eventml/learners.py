"""One learner protocol over river models, windowed scikit-learn refits and micro-batched
scikit-learn ``partial_fit``.

Every learner has a ``name``, a ``task`` (``"classification"`` or ``"regression"``) and four
methods, in river's style:

- ``predict_proba_one(x) -> {label: probability}`` (``{}`` when there is nothing to say yet),
- ``predict_one(x)`` (``None`` when there is nothing to say yet),
- ``learn_one(x, y)``,
- ``clone()``: a fresh, unfitted learner with the same parameters.

``x`` is an event's ``features`` dict, with any value the wire format allows: numbers,
strings (categories), booleans (numbers) and nulls (missing). Every named learner learns from
all of them. The three families are

- :class:`RiverLearner`: a river model or pipeline, used as it is, with nulls left out and,
  for models that need numbers, strings one-hot encoded;
- :class:`WindowedBatch`: a scikit-learn estimator refit every ``refit_every`` events on the
  last ``window`` events;
- :class:`MicroBatchPartialFit`: a scikit-learn estimator with ``partial_fit``, fed in
  micro-batches.

:func:`make_learner` builds one by name (see :func:`learner_names`) or wraps an object.

Examples
--------
>>> import eventml as em
>>> from eventml.learners import make_learner
>>> model = make_learner("river_logreg")
>>> for event in em.synthetic("sea", 500, seed=1):
...     model.learn_one(event.features, event.label)
>>> print(round(model.predict_proba_one({"0": 9.0, "1": 9.0, "2": 5.0})[1], 2))
0.93
"""

from __future__ import annotations

import collections
import math
import pickle
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
from scipy.special import expit

from eventml.errors import ConfigError

__all__ = [
    "Learner",
    "RiverLearner",
    "WindowedBatch",
    "MicroBatchPartialFit",
    "LEARNERS",
    "learner_names",
    "make_learner",
]

CLASSIFICATION = "classification"
REGRESSION = "regression"


@runtime_checkable
class Learner(Protocol):
    """What every eventml learner offers (river's online protocol plus a name and a task)."""

    name: str
    task: str

    def predict_proba_one(self, x: dict) -> dict: ...

    def predict_one(self, x: dict) -> Any: ...

    def learn_one(self, x: dict, y: Any) -> None: ...

    def clone(self) -> "Learner": ...


# ----------------------------------------------------------------------------- river


_NUMBER_TYPES = frozenset((int, float, bool))  # fast path: a set lookup per value, x passed unchanged


class RiverLearner:
    """A river model or pipeline, with a name, fed every value the wire format allows.

    Feature values reach the model as follows:

    - **numbers** (``int``, ``float``) and **booleans** are passed as they are (a boolean is
      the number 0 or 1 to river);
    - **null** (``None``) means missing: the feature is left out of the dict the model sees,
      river's own convention for a missing value;
    - **strings** are categories. With ``one_hot=False`` they are passed as they are, for
      models that take them natively (river's Hoeffding trees and forests split on them as
      nominal attributes). With ``one_hot=True`` a string ``v`` of feature ``f`` becomes the
      indicator ``"f=v": 1.0``, and every other category of ``f`` this learner has learned
      from becomes ``"f=<category>": 0.0``, as river's ``OneHotEncoder`` does: a
      standardising step and Gaussian naive Bayes need the zeros (an indicator that is always
      1 carries no information). Only ``learn_one`` adds categories; predicting never changes
      the learner. A category first seen while predicting is passed as its indicator (the
      model knows nothing about it yet). When ``f`` is null or absent, none of its
      indicators is sent: the category is missing, like any other missing feature;
    - anything else is passed as it is.

    When every value is an ``int``, ``float`` or ``bool`` (checked by type: one set look-up
    per value, about 0.2 µs for a few features) the features dict is passed to the model
    unchanged, so on numeric streams evaluating a ``RiverLearner`` gives exactly what river
    gives for the model. Otherwise a new dict is built; the event's own dict is never changed.

    Parameters
    ----------
    model
        A river classifier or regressor (or a pipeline ending in one); kept as it is in
        ``model``.
    name
        Name in result tables; defaults to the model's class name.
    one_hot
        Turn string values into indicator features (see above), for models that need
        numbers (linear models, Gaussian naive Bayes, the Hoeffding tree regressor's linear
        leaves). The categories seen (``categories_``) are part of the learner's state:
        they are pickled with it and forgotten by :meth:`clone`. Memory and time per event
        grow with the number of categories of a feature: a feature with thousands of
        distinct strings (an id) is better left out.

    Examples
    --------
    >>> from river import naive_bayes
    >>> learner = RiverLearner(naive_bayes.GaussianNB(), name="gnb", one_hot=True)
    >>> for x, color, y in [(1.0, "red", 0), (2.0, "red", 0), (5.0, "blue", 1), (6.0, None, 1)]:
    ...     learner.learn_one({"x": x, "color": color}, y)
    >>> print(learner.predict_one({"x": 5.5, "color": "blue"}), learner.predict_one({"x": 1.5}))
    1 0
    >>> print(learner.categories_)
    {'color': {'red': 'color=red', 'blue': 'color=blue'}}
    """

    # Class-level defaults: a learner pickled before these options existed loads as it was.
    one_hot = False
    categories_: dict[Any, dict[str, str]] | None = None

    def __init__(self, model: Any, name: str | None = None, *, one_hot: bool = False):
        from river import base, compose

        if not isinstance(one_hot, bool):
            raise ConfigError(f"one_hot must be True or False, got {one_hot!r}")
        self.model = model
        self.name = name or type(model).__name__
        if isinstance(model, base.Classifier):
            self.task = CLASSIFICATION
        elif isinstance(model, base.Regressor):
            self.task = REGRESSION
        else:
            raise ConfigError(f"{self.name}: expected a river classifier or regressor, got {model!r}")
        self.one_hot = one_hot
        self.categories_ = {} if one_hot else None  # feature -> {category: indicator name}
        final = list(model.steps.values())[-1] if isinstance(model, compose.Pipeline) else model
        # True when predict_one is river's default argmax of predict_proba_one, so an evaluator
        # that needs both can compute the probabilities once and stay exact.
        self.label_from_proba = (
            self.task == CLASSIFICATION and type(final).predict_one is base.Classifier.predict_one
        )

    def _features(self, x: dict, learn: bool = False) -> dict:
        """``x`` without its nulls and, with ``one_hot``, with its strings as indicators."""
        categories = self.categories_ if self.one_hot else None
        out = {}
        for k, v in x.items():
            if v is None:
                continue
            if categories is None or not isinstance(v, str):
                out[k] = v
                continue
            known = categories.get(k)
            if learn and (known is None or v not in known):
                if known is None:
                    known = categories[k] = {}
                known[v] = f"{k}={v}"
            if known:
                for indicator in known.values():
                    out[indicator] = 0.0
            out[f"{k}={v}"] = 1.0
        return out

    def predict_proba_one(self, x: dict) -> dict:
        if self.task != CLASSIFICATION:
            return {}
        if not _NUMBER_TYPES.issuperset(map(type, x.values())):
            x = self._features(x)
        return self.model.predict_proba_one(x)

    def predict_one(self, x: dict) -> Any:
        if not _NUMBER_TYPES.issuperset(map(type, x.values())):
            x = self._features(x)
        return self.model.predict_one(x)

    def learn_one(self, x: dict, y: Any) -> None:
        if not _NUMBER_TYPES.issuperset(map(type, x.values())):
            x = self._features(x, learn=True)
        self.model.learn_one(x, y)

    def clone(self) -> "RiverLearner":
        """A fresh, unfitted copy with the same parameters (river's ``clone``; no categories)."""
        return RiverLearner(self.model.clone(), name=self.name, one_hot=self.one_hot)

    @property
    def memory_bytes(self) -> int:
        """River's own estimate (``model._raw_memory_usage``: a walk of the object graph)."""
        return int(self.model._raw_memory_usage)

    def __repr__(self) -> str:
        return f"RiverLearner({self.model!r}, name={self.name!r}, one_hot={self.one_hot!r})"


# ----------------------------------------------------------------------------- scikit-learn helpers


def _usable(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


class _DictVectors:
    """Feature dicts to dense vectors, like scikit-learn's ``DictVectorizer``.

    Numbers (and booleans) become one column each; a string value ``v`` of feature ``f``
    becomes the indicator column ``"f=v"``. ``None`` and NaN count as missing (0). Columns
    are sorted by name; features or categories unseen at :meth:`fit` are ignored.
    """

    def fit(self, xs: list[dict]) -> "_DictVectors":
        names = set()
        for x in xs:
            for k, v in x.items():
                if isinstance(v, str):
                    names.add(f"{k}={v}")
                elif _usable(v):
                    names.add(str(k))
        self.feature_names_ = sorted(names)
        self.index_ = {name: i for i, name in enumerate(self.feature_names_)}
        return self

    def transform(self, xs: list[dict]) -> np.ndarray:
        index = self.index_
        out = np.zeros((len(xs), len(index)))
        for row, x in enumerate(xs):
            for k, v in x.items():
                if isinstance(v, str):
                    col = index.get(f"{k}={v}")
                    if col is not None:
                        out[row, col] = 1.0
                elif _usable(v):
                    col = index.get(str(k))
                    if col is not None:
                        out[row, col] = float(v)
        return out


def _task_of(estimator: Any) -> str:
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return CLASSIFICATION
    if is_regressor(estimator):
        return REGRESSION
    raise ConfigError(f"expected a scikit-learn classifier or regressor, got {estimator!r}")


def _py(value: Any) -> Any:
    """numpy scalars to plain Python (labels compare and serialise like the events' labels)."""
    return value.item() if isinstance(value, np.generic) else value


def _binary_logistic(model: Any, scaler: Any = None) -> tuple | None:
    """``(mean, scale, coef, intercept)`` of a fitted binary logistic model, optionally behind a
    ``StandardScaler`` (its own, or the first step of a two-step pipeline), so that
    ``P(classes_[1]) = expit(((row - mean) / scale) @ coef + intercept)`` with the very
    operations scikit-learn uses; None for any other model.

    scikit-learn checks its input on every call, which costs about 100 µs for one row, 20
    times the arithmetic; predicting one event at a time, this is most of a linear model's time.
    """
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if isinstance(model, Pipeline) and scaler is None and len(model.steps) == 2:
        scaler, model = model.steps[0][1], model.steps[1][1]
    logistic = isinstance(model, LogisticRegression) or (isinstance(model, SGDClassifier) and model.loss == "log_loss")
    if not logistic or len(model.classes_) != 2 or type(scaler) not in (type(None), StandardScaler):
        return None
    mean = getattr(scaler, "mean_", None) if scaler is not None and scaler.with_mean else None
    scale = getattr(scaler, "scale_", None) if scaler is not None and scaler.with_std else None
    return mean, scale, model.coef_.T, model.intercept_


class _SklearnLearner:
    """Shared parts of the scikit-learn families: fallback before the first fit, predictions."""

    name: str
    task: str
    estimator: Any

    @property
    def label_from_proba(self) -> bool:
        """``predict_one`` is the first most probable class of ``predict_proba_one``."""
        return self.task == CLASSIFICATION

    def _reset(self) -> None:
        self.class_counts_: collections.Counter = collections.Counter()
        self.n_seen_ = 0
        self.y_sum_ = 0.0
        self.fitted_: Any = None
        self.vectors_: _DictVectors | None = None
        self.logistic_: tuple | None = None  # see _binary_logistic

    def _count(self, y: Any) -> None:
        self.n_seen_ += 1
        if self.task == CLASSIFICATION:
            self.class_counts_[y] += 1
        else:
            self.y_sum_ += float(y)

    def _fallback_proba(self) -> dict:
        total = sum(self.class_counts_.values())
        return {c: n / total for c, n in self.class_counts_.items()} if total else {}

    def _fallback_value(self) -> Any:
        if self.task == CLASSIFICATION:
            return self.class_counts_.most_common(1)[0][0] if self.class_counts_ else None
        return self.y_sum_ / self.n_seen_ if self.n_seen_ else None

    def predict_proba_one(self, x: dict) -> dict:
        if self.task != CLASSIFICATION:
            return {}
        if self.fitted_ is None:
            return self._fallback_proba()
        if self.logistic_ is not None:
            return self._logistic_proba(x)
        row = self._row(x)
        if hasattr(self.fitted_, "predict_proba"):
            proba = self.fitted_.predict_proba(row)[0]
            return {_py(c): float(p) for c, p in zip(self.fitted_.classes_, proba)}
        predicted = _py(self.fitted_.predict(row)[0])
        return {_py(c): float(c == predicted) for c in self.fitted_.classes_}

    def _logistic_proba(self, x: dict) -> dict:
        mean, scale, coef, intercept = self.logistic_
        row = self.vectors_.transform([x])
        if mean is not None:
            row -= mean
        if scale is not None:
            row /= scale
        p = float(expit(row @ coef + intercept)[0, 0])
        negative, positive = self.fitted_.classes_
        return {_py(negative): 1.0 - p, _py(positive): p}

    def predict_one(self, x: dict) -> Any:
        if self.task == CLASSIFICATION:
            proba = self.predict_proba_one(x)
            return max(proba, key=proba.get) if proba else None
        if self.fitted_ is None:
            return self._fallback_value()
        return float(self.fitted_.predict(self._row(x))[0])

    def _row(self, x: dict) -> np.ndarray:
        return self.vectors_.transform([x])

    @property
    def memory_bytes(self) -> int:
        """Estimated as the length of the learner's pickle (data window included)."""
        return len(pickle.dumps(self))


# ----------------------------------------------------------------------------- windowed batch


class WindowedBatch(_SklearnLearner):
    """A scikit-learn batch estimator refit every ``refit_every`` events on the last ``window``.

    Each refit starts over from a clone of ``estimator``: it fits a feature vectorizer on the
    window (numbers as columns, strings one-hot as ``"feature=value"``, ``None`` as 0) and
    then the estimator. Between refits, predictions use the last fit.

    **Before the first fit** the learner predicts the majority class seen so far, with class
    frequencies as probabilities (the mean label for regression); before any label it
    predicts ``None`` / ``{}``, as river models do. A classifier is only fit once its window
    holds two classes; until then the previous fit (or the fallback) stays in use and the
    refit is retried at every event.

    Parameters
    ----------
    estimator
        An unfitted scikit-learn classifier or regressor (a pipeline is fine). Without
        ``predict_proba``, probabilities are 1 for the predicted class and 0 otherwise.
    window
        Number of most recent labelled events to fit on; ``None`` for all events so far.
    refit_every
        Refit after this many labelled events.
    name
        Name in result tables.

    Examples
    --------
    >>> import eventml as em
    >>> from sklearn.linear_model import LogisticRegression
    >>> learner = WindowedBatch(LogisticRegression(), window=500, refit_every=100)
    >>> print(learner.predict_one({"0": 1.0}))
    None
    >>> learner.learn_one({"0": 1.0}, 0)
    >>> print(learner.predict_one({"0": 9.0}))  # majority so far: no fit yet
    0
    >>> for event in em.synthetic("sea", 300, seed=1):
    ...     learner.learn_one(event.features, event.label)
    >>> print(learner.n_fits_)
    3
    """

    def __init__(self, estimator: Any, *, window: int | None = 1000, refit_every: int = 100,
                 name: str | None = None):
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise ConfigError(f"window must be a positive integer or None, got {window!r}")
        if isinstance(refit_every, bool) or not isinstance(refit_every, int) or refit_every < 1:
            raise ConfigError(f"refit_every must be a positive integer, got {refit_every!r}")
        self.estimator = estimator
        self.window = window
        self.refit_every = refit_every
        self.name = name or f"window_{type(estimator).__name__}"
        self.task = _task_of(estimator)
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self.xs_: collections.deque = collections.deque(maxlen=self.window)
        self.ys_: collections.deque = collections.deque(maxlen=self.window)
        self.since_fit_ = 0
        self.n_fits_ = 0

    def learn_one(self, x: dict, y: Any) -> None:
        self._count(y)
        self.xs_.append(x)
        self.ys_.append(y)
        self.since_fit_ += 1
        if self.since_fit_ >= self.refit_every:
            self._refit()

    def restart_window(self, keep: int) -> None:
        """Forget all but the last ``keep`` events of the window and refit on them now.

        Used after a drift (``on_drift="refit"``). If the kept events hold one class only,
        the previous fit stays in use and the refit is retried at every event.

        Examples
        --------
        >>> from sklearn.linear_model import LogisticRegression
        >>> learner = WindowedBatch(LogisticRegression(), window=100, refit_every=50)
        >>> for i in range(80):
        ...     learner.learn_one({"x": float(i)}, int(i >= 40))
        >>> learner.restart_window(20)
        >>> print(len(learner.xs_), learner.n_fits_)
        20 1
        """
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ConfigError(f"keep must be a positive integer, got {keep!r}")
        recent = list(zip(self.xs_, self.ys_))[-keep:]
        self.xs_.clear()
        self.ys_.clear()
        for x, y in recent:
            self.xs_.append(x)
            self.ys_.append(y)
        self.since_fit_ = self.refit_every  # refit now, or at the next event if it cannot yet
        self._refit()

    def _refit(self) -> None:
        from sklearn.base import clone

        ys = list(self.ys_)
        if self.task == CLASSIFICATION and len(set(ys)) < 2:
            return  # nothing to separate yet: retry at the next event
        xs = list(self.xs_)
        vectors = _DictVectors().fit(xs)
        estimator = clone(self.estimator)
        estimator.fit(vectors.transform(xs), np.asarray(ys))
        self.vectors_, self.fitted_ = vectors, estimator
        self.logistic_ = _binary_logistic(estimator)
        self.since_fit_ = 0
        self.n_fits_ += 1

    def clone(self) -> "WindowedBatch":
        """A fresh, unfitted copy with the same parameters."""
        from sklearn.base import clone

        return WindowedBatch(clone(self.estimator), window=self.window, refit_every=self.refit_every,
                             name=self.name)

    def __repr__(self) -> str:
        return (f"WindowedBatch({self.estimator!r}, window={self.window!r}, "
                f"refit_every={self.refit_every!r}, name={self.name!r})")


# ----------------------------------------------------------------------------- micro-batch partial_fit


class MicroBatchPartialFit(_SklearnLearner):
    """A scikit-learn ``partial_fit`` estimator fed in micro-batches of ``batch_size`` events.

    Labelled events are buffered; every ``batch_size`` of them go to one ``partial_fit``
    call. Predictions between batches use the last fitted state, and the majority fallback
    of :class:`WindowedBatch` before the first batch.

    The feature vectorizer is fitted on the first batch and then kept fixed (``partial_fit``
    needs a fixed number of columns): features or string categories that first appear later
    are ignored. With ``classes=None`` the classes are those seen when the first batch is
    fit (which waits until two classes have been seen); a class that first appears later
    restarts the estimator from scratch with the larger set of classes (counted in
    ``n_restarts_``). Give ``classes`` when you know them.

    Parameters
    ----------
    estimator
        An unfitted scikit-learn estimator with ``partial_fit`` (e.g.
        ``SGDClassifier(loss="log_loss")``, ``SGDRegressor()``, ``MultinomialNB()``).
    batch_size
        Labelled events per ``partial_fit`` call.
    classes
        All class labels, if known in advance.
    scale
        Standardise features with a ``StandardScaler`` updated by ``partial_fit`` on each
        batch before the estimator sees it (SGD models need scaled features).
    name
        Name in result tables.

    Examples
    --------
    >>> import eventml as em
    >>> from sklearn.linear_model import SGDClassifier
    >>> learner = MicroBatchPartialFit(SGDClassifier(loss="log_loss", random_state=0), batch_size=50)
    >>> for event in em.synthetic("sea", 1000, seed=1):
    ...     learner.learn_one(event.features, event.label)
    >>> print(learner.n_batches_, learner.classes_)
    20 [0, 1]
    """

    def __init__(self, estimator: Any, *, batch_size: int = 32, classes: list | None = None,
                 scale: bool = False, name: str | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not hasattr(estimator, "partial_fit"):
            raise ConfigError(f"{type(estimator).__name__} has no partial_fit; use WindowedBatch instead")
        self.estimator = estimator
        self.batch_size = batch_size
        self.classes = None if classes is None else list(classes)
        self.scale = scale
        self.name = name or f"partial_{type(estimator).__name__}"
        self.task = _task_of(estimator)
        self._reset()

    def _reset(self) -> None:
        super()._reset()
        self.buffer_x_: list[dict] = []
        self.buffer_y_: list = []
        self.classes_: list | None = None
        self.scaler_: Any = None
        self.n_batches_ = 0
        self.n_restarts_ = 0

    def learn_one(self, x: dict, y: Any) -> None:
        self._count(y)
        self.buffer_x_.append(x)
        self.buffer_y_.append(y)
        if len(self.buffer_y_) >= self.batch_size:
            self._fit_batch()

    def _known_classes(self) -> list:
        if self.classes is not None:
            return sorted(set(self.classes) | set(self.class_counts_))
        return sorted(self.class_counts_)

    def _fit_batch(self) -> None:
        from sklearn.base import clone
        from sklearn.preprocessing import StandardScaler

        classes = None
        if self.task == CLASSIFICATION:
            classes = self._known_classes()
            if len(classes) < 2:
                return  # keep buffering until there are two classes to tell apart
            if self.classes_ is not None and classes != self.classes_:
                self.fitted_ = None  # a new class: partial_fit cannot grow, start over
                self.n_restarts_ += 1
        if self.fitted_ is None:
            self.vectors_ = _DictVectors().fit(self.buffer_x_)
            self.scaler_ = StandardScaler() if self.scale else None
            fitted = clone(self.estimator)
        else:
            fitted = self.fitted_
        rows = self.vectors_.transform(self.buffer_x_)
        if self.scaler_ is not None:
            rows = self.scaler_.partial_fit(rows).transform(rows)
        if classes is not None:
            fitted.partial_fit(rows, np.asarray(self.buffer_y_), classes=np.asarray(classes))
        else:
            fitted.partial_fit(rows, np.asarray(self.buffer_y_, dtype=float))
        self.fitted_, self.classes_ = fitted, classes
        self.logistic_ = _binary_logistic(fitted, self.scaler_) if classes is not None else None
        self.buffer_x_, self.buffer_y_ = [], []
        self.n_batches_ += 1

    def _row(self, x: dict) -> np.ndarray:
        row = self.vectors_.transform([x])
        return row if self.scaler_ is None else self.scaler_.transform(row)

    def clone(self) -> "MicroBatchPartialFit":
        """A fresh, unfitted copy with the same parameters."""
        from sklearn.base import clone

        return MicroBatchPartialFit(clone(self.estimator), batch_size=self.batch_size, classes=self.classes,
                                    scale=self.scale, name=self.name)

    def __repr__(self) -> str:
        return (f"MicroBatchPartialFit({self.estimator!r}, batch_size={self.batch_size!r}, "
                f"classes={self.classes!r}, scale={self.scale!r}, name={self.name!r})")


# ----------------------------------------------------------------------------- registry


def _river_logreg(seed):
    from river import linear_model, preprocessing

    return RiverLearner(preprocessing.StandardScaler() | linear_model.LogisticRegression(), one_hot=True)


def _river_gnb(seed):
    from river import naive_bayes

    return RiverLearner(naive_bayes.GaussianNB(), one_hot=True)


def _river_hoeffding(seed):
    from river import tree

    return tree.HoeffdingTreeClassifier()


def _river_arf(seed):
    from river import forest

    return forest.ARFClassifier(seed=seed)


def _river_linreg(seed):
    from river import linear_model, preprocessing

    return RiverLearner(preprocessing.StandardScaler() | linear_model.LinearRegression(), one_hot=True)


def _river_hoeffding_reg(seed):
    from river import tree

    return RiverLearner(tree.HoeffdingTreeRegressor(), one_hot=True)  # its leaves are linear models


def _batch_logreg(seed, window):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return WindowedBatch(make_pipeline(StandardScaler(), LogisticRegression()), window=window, refit_every=200)


def _batch_forest(seed):
    from sklearn.ensemble import RandomForestClassifier

    return WindowedBatch(RandomForestClassifier(n_estimators=50, random_state=seed), window=1000, refit_every=500)


def _batch_linreg(seed):
    from sklearn.linear_model import LinearRegression

    return WindowedBatch(LinearRegression(), window=1000, refit_every=200)


def _sgd_logreg(seed):
    from sklearn.linear_model import SGDClassifier

    return MicroBatchPartialFit(SGDClassifier(loss="log_loss", random_state=seed), batch_size=32, scale=True)


def _sgd_linreg(seed):
    from sklearn.linear_model import SGDRegressor

    return MicroBatchPartialFit(SGDRegressor(random_state=seed), batch_size=32, scale=True)


LEARNERS: dict[str, Callable[[int | None], Any]] = {
    # river models in a RiverLearner: nulls left out; strings one-hot where the model needs numbers
    "river_logreg": _river_logreg,  # StandardScaler | LogisticRegression, one_hot
    "river_gnb": _river_gnb,  # GaussianNB, one_hot
    "river_hoeffding": _river_hoeffding,  # HoeffdingTreeClassifier, strings as nominal attributes
    "river_arf": _river_arf,  # ARFClassifier(seed=seed), strings as nominal attributes
    "river_linreg": _river_linreg,  # StandardScaler | LinearRegression, one_hot
    "river_hoeffding_reg": _river_hoeffding_reg,  # HoeffdingTreeRegressor, one_hot
    # scikit-learn batch estimators refit on a window
    "batch_logreg": lambda seed: _batch_logreg(seed, 1000),  # last 1000 events, refit every 200
    "batch_logreg_all": lambda seed: _batch_logreg(seed, None),  # everything so far, refit every 200
    "batch_forest": _batch_forest,  # RandomForest(50 trees), last 1000 events, refit every 500
    "batch_linreg": _batch_linreg,  # LinearRegression, last 1000 events, refit every 200
    # scikit-learn partial_fit in micro-batches of 32
    "sgd_logreg": _sgd_logreg,  # scaled SGDClassifier(loss="log_loss")
    "sgd_linreg": _sgd_linreg,  # scaled SGDRegressor
}
"""Learner name -> factory taking a seed; :func:`make_learner` calls it and names the result."""


def learner_names() -> list[str]:
    """The names :func:`make_learner` accepts, sorted.

    Examples
    --------
    >>> print(len(learner_names()))
    12
    """
    return sorted(LEARNERS)


def make_learner(learner: str | Any, *, seed: int | None = 42, name: str | None = None) -> Any:
    """A learner by registry name, or an object turned into one.

    Every named learner accepts every feature value the wire format allows: numbers,
    strings, booleans and nulls (see :class:`RiverLearner` and :class:`WindowedBatch` for
    what each family does with them).

    An object is judged by what it is, not by the module it comes from, so a subclass
    defined in a notebook is as welcome as the class it extends.

    Parameters
    ----------
    learner
        A name from :func:`learner_names`; an eventml learner (returned as it is, renamed if
        ``name`` is given); a river classifier or regressor (an instance of
        ``river.base.Classifier`` or ``river.base.Regressor``: a model, a pipeline ending in
        one, or one from a river-compatible package), wrapped in :class:`RiverLearner`
        without ``one_hot`` and not copied; an object with ``predict_proba_one``,
        ``predict_one``, ``learn_one``, ``clone``, ``name`` and ``task`` (returned as it
        is); or an unfitted scikit-learn estimator (scikit-learn's estimator API: ``fit``
        and ``get_params``), wrapped in :class:`WindowedBatch` with its defaults.
    seed
        Seed passed to the named learner's random parts (ignored for objects: seed them
        yourself).
    name
        Name of the learner in result tables; defaults to the registry name.

    Raises
    ------
    ConfigError
        For an unknown name (the message lists the known ones) or an object that is not a
        learner.

    Examples
    --------
    >>> learner = make_learner("river_arf", seed=7)
    >>> print(learner.name, learner.model.seed)
    river_arf 7

    A user's own model:

    >>> from river import linear_model
    >>> class Mine(linear_model.LogisticRegression):
    ...     pass
    >>> learner = make_learner(Mine(), name="mine")
    >>> print(type(learner).__name__, learner.name, learner.task)
    RiverLearner mine classification
    """
    if isinstance(learner, str):
        if learner not in LEARNERS:
            raise ConfigError(f"unknown learner {learner!r}; known learners: {', '.join(learner_names())}")
        made = LEARNERS[learner](seed)
        return _as_learner(made, name or learner)
    return _as_learner(learner, name)


def _as_learner(obj: Any, name: str | None) -> Any:
    from river import base

    if isinstance(obj, (RiverLearner, WindowedBatch, MicroBatchPartialFit)):
        if name is not None:
            obj.name = name
        return obj
    if isinstance(obj, base.Estimator):  # RiverLearner says so if it is not a classifier or regressor
        return RiverLearner(obj, name=name)
    if isinstance(obj, Learner):
        if name is not None:
            obj.name = name
        return obj
    if callable(getattr(obj, "fit", None)) and callable(getattr(obj, "get_params", None)):
        return WindowedBatch(obj, name=name)  # _task_of says so if it is not a classifier or regressor
    raise ConfigError(
        f"cannot use {obj!r} as a learner: give a name ({', '.join(learner_names())}), "
        "a river classifier or regressor, a scikit-learn estimator or an object with predict_proba_one, "
        "predict_one, learn_one, clone, name and task"
    )

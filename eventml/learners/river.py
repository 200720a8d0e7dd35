"""River models as eventml learners: nulls left out, strings one-hot encoded where needed."""

from __future__ import annotations

from typing import Any

from eventml.errors import ConfigError
from eventml.events import NUMBER_TYPES  # fast path: a set lookup per value, x passed unchanged
from eventml.learners.base import CLASSIFICATION, REGRESSION

__all__ = ["RiverLearner"]


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
        if not NUMBER_TYPES.issuperset(map(type, x.values())):
            x = self._features(x)
        return self.model.predict_proba_one(x)

    def predict_one(self, x: dict) -> Any:
        if not NUMBER_TYPES.issuperset(map(type, x.values())):
            x = self._features(x)
        return self.model.predict_one(x)

    def learn_one(self, x: dict, y: Any) -> None:
        if not NUMBER_TYPES.issuperset(map(type, x.values())):
            x = self._features(x, learn=True)
        self.model.learn_one(x, y)

    def numeric_calls(self) -> tuple[Any, Any] | None:
        """``(predict_proba_one, learn_one)`` of the river model itself, for a caller that has already
        checked that every feature value is an ``int``, ``float`` or ``bool`` (``eventml.events.NUMBER_TYPES``:
        then this learner passes ``x`` to them unchanged, so they give the same results without a second
        check per call); None for a regressor.

        Examples
        --------
        >>> from river import linear_model
        >>> learner = RiverLearner(linear_model.LogisticRegression())
        >>> predict_proba, learn = learner.numeric_calls()
        >>> learn({"x": 1.0}, True)
        >>> predict_proba({"x": 1.0}) == learner.predict_proba_one({"x": 1.0})
        True
        """
        if self.task != CLASSIFICATION:
            return None
        return self.model.predict_proba_one, self.model.learn_one

    def clone(self) -> "RiverLearner":
        """A fresh, unfitted copy with the same parameters (river's ``clone``; no categories)."""
        return RiverLearner(self.model.clone(), name=self.name, one_hot=self.one_hot)

    @property
    def memory_bytes(self) -> int:
        """River's own estimate (``model._raw_memory_usage``: a walk of the object graph)."""
        return int(self.model._raw_memory_usage)

    def __repr__(self) -> str:
        return f"RiverLearner({self.model!r}, name={self.name!r}, one_hot={self.one_hot!r})"

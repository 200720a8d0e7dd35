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

from eventml.learners.base import CLASSIFICATION, REGRESSION, Learner
from eventml.learners.registry import LEARNERS, learner_names, make_learner, make_learners
from eventml.learners.river import RiverLearner
from eventml.learners.sklearn import MicroBatchPartialFit, WindowedBatch

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "Learner",
    "RiverLearner",
    "WindowedBatch",
    "MicroBatchPartialFit",
    "LEARNERS",
    "learner_names",
    "make_learner",
    "make_learners",
]

"""The named learners, and :func:`make_learner`, which builds one by name or wraps an object."""

from __future__ import annotations

from typing import Any, Callable

from eventml.errors import ConfigError
from eventml.learners.base import Learner
from eventml.learners.river import RiverLearner
from eventml.learners.sklearn import MicroBatchPartialFit, WindowedBatch
from eventml.validation import one_of

__all__ = ["LEARNERS", "learner_names", "make_learner"]


# river's classes come from their modules, not their packages: with eventml.lazy.defer_package_inits (as
# `eventml live` runs) a package's __init__, which imports all of it, is not run for one of its classes


def _river_logreg(seed):
    from river.linear_model.log_reg import LogisticRegression
    from river.preprocessing.scale import StandardScaler

    return RiverLearner(StandardScaler() | LogisticRegression(), one_hot=True)


def _river_gnb(seed):
    from river.naive_bayes.gaussian import GaussianNB

    return RiverLearner(GaussianNB(), one_hot=True)


def _river_hoeffding(seed):
    from river.tree.hoeffding_tree_classifier import HoeffdingTreeClassifier

    return HoeffdingTreeClassifier()


def _river_arf(seed):
    from river.forest.adaptive_random_forest import ARFClassifier

    return ARFClassifier(seed=seed)


def _river_linreg(seed):
    from river.linear_model.lin_reg import LinearRegression
    from river.preprocessing.scale import StandardScaler

    return RiverLearner(StandardScaler() | LinearRegression(), one_hot=True)


def _river_hoeffding_reg(seed):
    from river.tree.hoeffding_tree_regressor import HoeffdingTreeRegressor

    return RiverLearner(HoeffdingTreeRegressor(), one_hot=True)  # its leaves are linear models


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
        one_of("learner", learner, LEARNERS)
        made = LEARNERS[learner](seed)
        return _as_learner(made, name or learner)
    return _as_learner(learner, name)


def make_learners(learners: Any, *, seed: int | None = 42, what: str = "learners") -> list[Any]:
    """Several learners at once: a name, a learner or model object, a list of them, or a dict
    ``{name: learner or registry name}`` (see :func:`make_learner`); their names must be unique.

    Raises
    ------
    ConfigError
        For none at all, or repeated names (naming them and how to rename), naming the parameter ``what``.

    Examples
    --------
    >>> [learner.name for learner in make_learners(["river_gnb", "river_logreg"])]
    ['river_gnb', 'river_logreg']
    >>> make_learners(["river_gnb", "river_gnb"], what="models")
    Traceback (most recent call last):
    ...
    eventml.errors.ConfigError: models must have unique names; repeated: river_gnb (pass a dict name -> learner to rename)
    """
    from collections.abc import Iterable, Mapping

    if isinstance(learners, Mapping):
        made = [make_learner(obj, seed=seed, name=name) for name, obj in learners.items()]
    else:
        if isinstance(learners, str) or not isinstance(learners, Iterable):
            learners = [learners]
        made = [make_learner(obj, seed=seed) for obj in learners]
    if not made:
        raise ConfigError(f"{what} must name at least one learner")
    names = [learner.name for learner in made]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{what} must have unique names; repeated: {', '.join(duplicates)} "
                          "(pass a dict name -> learner to rename)")
    return made


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

"""Drift detectors that watch a learner's errors, and what to do when they fire.

During :func:`eventml.evaluate.prequential` each learner gets its own detector (a clone of the
one asked for). Every scored prediction feeds it one error, in river's API
(``detector.update(error)`` then ``detector.drift_detected``): a 0/1 mistake for
classification, the absolute error for regression.

Only detections where the **error got worse** count: a learner that gets better is not a
drift to act on. ``"page_hinkley"`` is river's ``PageHinkley(mode="up")``, which only
watches increases; for a detector with an ``estimation`` (river's ``ADWIN``: the mean of its
window) a detection counts when the mean of the window it keeps is above the mean before the
update. Other detectors count every detection.

Policies (``on_drift``):

- ``"reset"``: the learner is replaced by a fresh ``learner.clone()`` (an online model starts
  over); its detector starts over too.
- ``"refit"``: a learner with ``restart_window(keep)`` (:class:`~eventml.learners.WindowedBatch`)
  forgets all but its last ``refit_window`` events and refits on them at once; any other
  learner (river, partial_fit) has no window to refit and is reset instead.

Examples
--------
>>> detector = make_detector("adwin")
>>> errors = [0] * 500 + [1, 1, 0, 1] * 100
>>> watch = DriftWatch(detector, "adwin")
>>> print([i for i, e in enumerate(errors) if watch.update(e)][:1])
[543]
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pandas as pd
from river import drift as river_drift

from eventml.errors import ConfigError
from eventml.validation import one_of

__all__ = ["DETECTORS", "POLICIES", "make_detector", "DriftWatch", "apply_policy", "error_of", "drift_table"]

DETECTORS: dict[str, Callable[[], Any]] = {
    "adwin": river_drift.ADWIN,  # river defaults: delta=0.002
    "page_hinkley": lambda: river_drift.PageHinkley(mode="up"),  # increases of the error only
}
"""Detector name -> factory of a fresh river detector."""

POLICIES = ("reset", "refit")
"""The accepted ``on_drift`` policies (besides ``None``: record only)."""

DRIFT_COLUMNS = ["learner", "detector", "step", "events"]


def make_detector(detector: Any) -> Any:
    """A fresh detector from a name in :data:`DETECTORS` or a river detector object.

    Examples
    --------
    >>> print(type(make_detector("page_hinkley")).__name__)
    PageHinkley
    """
    if isinstance(detector, str):
        one_of("drift detector", detector, DETECTORS, plural="detectors",
               note=" (or pass a river drift detector object)")
        return DETECTORS[detector]()
    if not (callable(getattr(detector, "update", None)) and hasattr(detector, "drift_detected")):
        raise ConfigError(f"drift must be one of {', '.join(sorted(DETECTORS))}, None, or a detector with "
                          f"update(x) and drift_detected (e.g. river.drift.ADWIN()), got {detector!r}")
    return _fresh(detector)


def _fresh(detector: Any) -> Any:
    clone = getattr(detector, "clone", None)
    return clone() if callable(clone) else copy.deepcopy(detector)


def check_policy(on_drift: Any, drift: Any) -> None:
    """Raise a ConfigError for an unknown policy, or a policy without a detector."""
    one_of("on_drift policy", on_drift, (None, *POLICIES))
    if on_drift is not None and drift is None:
        raise ConfigError(f"on_drift={on_drift!r} needs a drift detector: set drift= to one of "
                          f"{', '.join(sorted(DETECTORS))} or a river detector")


class DriftWatch:
    """One learner's detector: feed it errors, it says when the error got worse.

    Parameters
    ----------
    prototype
        A detector; the watch works on a fresh copy of it.
    name
        The detector's name in the records.
    """

    def __init__(self, prototype: Any, name: str):
        self.prototype = prototype
        self.name = name
        self.restart()

    def restart(self) -> None:
        """Start over with a fresh detector (after a policy replaced the learner)."""
        self.detector = _fresh(self.prototype)
        self._has_mean = hasattr(self.detector, "estimation")

    def update(self, error: float) -> bool:
        """Feed one error; True when a drift to a worse error is detected."""
        detector = self.detector
        before = detector.estimation if self._has_mean else None
        detector.update(error)
        if not detector.drift_detected:
            return False
        return before is None or detector.estimation > before


def error_of(classification: bool, y: Any, label: Any, proba: Any) -> float | None:
    """The error a detector watches: 0/1 mistake or absolute error; None if no prediction.

    Examples
    --------
    >>> error_of(True, 1, None, {0: 0.3, 1: 0.7}), error_of(False, 2.0, 3.5, None)
    (0.0, 1.5)
    """
    if label is None and proba:
        label = max(proba, key=proba.get)
    if label is None:
        return None
    if classification:
        return float(label != y)
    return abs(float(label) - float(y))


def apply_policy(learner: Any, policy: str, refit_window: int) -> Any:
    """The learner to continue with after a drift under ``policy`` (see the module doc).

    Examples
    --------
    >>> from eventml.learners import make_learner
    >>> learner = make_learner("river_gnb")
    >>> learner.learn_one({"x": 1.0}, 1)
    >>> print(apply_policy(learner, "reset", 100).predict_proba_one({"x": 1.0}))
    {}
    """
    if policy == "refit" and callable(getattr(learner, "restart_window", None)):
        learner.restart_window(refit_window)
        return learner
    return learner.clone()


def drift_table(df: pd.DataFrame) -> pd.DataFrame:
    """The drift detections of a :func:`~eventml.evaluate.prequential` result as a DataFrame.

    Columns ``learner``, ``detector``, ``step`` (labelled events so far) and ``events``
    (events read so far), one row per detection, in the order they happened: the result's rows
    whose ``detection`` column names a detector (empty for a result without ``drift``).

    Examples
    --------
    >>> import eventml as em
    >>> from eventml.evaluate import prequential
    >>> df = prequential(em.synthetic("sea", 4000, drift_at=2000, seed=1), "river_gnb",
    ...                  metrics=("accuracy",), drift="adwin")
    >>> print(drift_table(df)[["learner", "step"]].to_string(index=False))
      learner  step
    river_gnb  2113
    """
    if "detection" not in df:
        return pd.DataFrame(columns=DRIFT_COLUMNS)
    hits = df[df["detection"].notna()]
    return pd.DataFrame({"learner": hits["learner"], "detector": hits["detection"], "step": hits["step"],
                         "events": hits["events"]}).reset_index(drop=True)

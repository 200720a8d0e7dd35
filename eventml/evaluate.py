"""Prequential (test-then-train) evaluation of many learners in one pass over events.

For every event each learner first predicts; if the event has a label, the prediction
updates the learner's metrics and then the learner learns from the label. The events can be
any iterable of :class:`~eventml.events.Event`: a list, a source, or a Kafka replay.

The order of operations is river's own (``river.evaluate.progressive_val_score``), so for a
river model the cumulative metrics equal river's exactly, also with delayed labels
(:mod:`eventml.delay`). Drift detectors can watch each learner's errors (:mod:`eventml.drift`).

Examples
--------
>>> import eventml as em
>>> from eventml.evaluate import prequential
>>> df = prequential(em.synthetic("sea", 2000, seed=1), ["river_logreg", "river_gnb"],
...                  metrics=("accuracy",), every=1000)
>>> print(df[["step", "learner", "accuracy"]].round(3).to_string(index=False))
 step      learner  accuracy
 1000 river_logreg     0.959
 1000    river_gnb     0.924
 2000 river_logreg     0.970
 2000    river_gnb     0.927
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from eventml.alerts import AlertWatch, check_alerts
from eventml.delay import DelayQueue, LabelFeed, check_moment
from eventml.drift import DriftWatch, check_policy, make_detector
from eventml.errors import ConfigError
from eventml.evaluation_loops import fast_loop, general_loop
from eventml.events import Event, Label
from eventml.labels import LABEL_COUNTS
from eventml.learners import CLASSIFICATION, make_learners
from eventml.promotion import Champion, check_promotion
from eventml.scoring import DEFAULT_METRICS, METRICS, Scorer, check_metrics, metric_names
from eventml.validation import is_int, non_negative_seconds, one_of, positive_int
from eventml.windows import add_windows, windowed

__all__ = ["METRICS", "DEFAULT_METRICS", "LABEL_COUNTS", "metric_names", "prequential", "label_counts",
           "accuracy_between"]


def _task(learners: list[Any], task: str | None) -> str:
    tasks = {learner.task for learner in learners}
    if task is None:
        if len(tasks) > 1:
            raise ConfigError("learners mix classification and regression: "
                              + ", ".join(f"{lr.name}={lr.task}" for lr in learners))
        return tasks.pop()
    one_of("task", task, DEFAULT_METRICS)
    wrong = [lr.name for lr in learners if lr.task != task]
    if wrong:
        raise ConfigError(f"task is {task!r} but these learners are not: {', '.join(wrong)}")
    return task


def prequential(
    events: Iterable[Event],
    learners: Any,
    *,
    task: str | None = None,
    metrics: Iterable[str] | None = None,
    every: int = 1000,
    rolling_window: int = 1000,
    measure_memory: bool = True,
    seed: int | None = 42,
    delay: Any = None,
    moment: str | None = None,
    labels: Iterable[Label] | None = None,
    max_wait: Any = None,
    drift: Any = None,
    on_drift: str | None = None,
    refit_window: int = 200,
    windows: Any = None,
    promotion: Any = None,
    alerts: Any = None,
) -> pd.DataFrame:
    """Evaluate learners test-then-train in one pass over ``events``.

    For each event, each learner predicts; once the event's label is known, the metrics are
    updated with that prediction and then the learner learns ``(features, label)``. Events
    without a label are predicted only (their time counts in ``predict_seconds``). A
    prediction of ``None`` (or ``{}`` for probabilities), which a model gives before it has
    learned anything, is not scored, exactly as in river.

    A classifier is asked for probabilities by the metrics that need them (log loss,
    ROC AUC) and for a label by the others (accuracy, F1), as river does. When both are
    needed and the learner's ``predict_one`` is the argmax of its ``predict_proba_one``
    (river's default, and eventml's scikit-learn learners), the probabilities are computed
    once and the label derived from them, which gives the same label.

    Learners are trained in place, as river's ``progressive_val_score`` does: pass
    ``learner.clone()`` for a fresh start (a drift policy swaps in new learner objects).

    **Delayed labels.** With ``delay`` the label an event carries is held back and revealed
    later; with ``labels`` the labels come from a separate stream of
    :class:`~eventml.events.Label` joined by event id (see :mod:`eventml.delay` for exactly
    when each is revealed). Either way the features and each learner's prediction are stored
    when the event is predicted, and when the label arrives that stored prediction is scored
    and the learner learns from the stored features, never from newer ones. With an ``int``
    delay or a delay on ``moment="ts"`` the figures for a river model equal
    ``river.evaluate.progressive_val_score(..., moment=..., delay=...)`` exactly, including
    river's reveal of the labels still waiting when the stream ends. The ``labels_<outcome>``
    columns count what happened to labels so far (outcomes :data:`~eventml.labels.LABEL_COUNTS`;
    the join is :class:`eventml.labels.PendingLabels`, the same as the live updater's), and each
    learner's last row has the totals (:func:`label_counts` gives them as a dict):

    - ``on_time``: revealed during the stream (within ``max_wait``), scored and learned;
    - ``at_end``: a delayed label still waiting when the stream ended, revealed then (as
      river does), or a label of ``labels`` that arrived after the last event; scored and
      learned;
    - ``late``: arrived more than ``max_wait`` after its event: counted, not scored or learned;
    - ``expired``: always 0 offline (nothing is dropped to save memory; see the live updater);
    - ``never``: with ``labels``, predictions whose label had not arrived at the end;
    - ``unknown_id``: with ``labels``, a label for an id not seen (yet), ignored;
    - ``duplicate``: with ``labels``, a second label for an id (the first one counts), or an
      event whose id was seen before (it is predicted, but the label joins the first one).

    ``step`` counts scored labels (``on_time + at_end``). With ``labels``, a label that an
    event carries itself is used at once, as without a delay.

    **Drift.** With ``drift`` each learner gets its own detector fed with the error of each
    scored prediction (0/1 mistake, or absolute error), river's ``update`` then
    ``drift_detected``; only a rise of the error counts (see :mod:`eventml.drift`).
    A learner whose detector fires gets a result row at that step (after it learned, and after
    the policy), whose ``detection`` column names the detector (missing on the other rows);
    ``drifts`` counts the detections so far. :func:`eventml.drift.drift_table` lists them, one
    row per detection. ``on_drift="reset"`` replaces the learner by a fresh clone;
    ``on_drift="refit"`` refits a :class:`~eventml.learners.WindowedBatch` on its last
    ``refit_window`` events at once and resets the other learners.

    Parameters
    ----------
    events
        Any iterable of events, read once.
    learners
        A learner name, a learner or model object, a list of them, or a dict
        ``{name: learner or registry name}``; see :func:`eventml.learners.make_learner`.
        Names must be unique.
    task
        ``"classification"`` or ``"regression"``; ``None`` infers it from the learners.
    metrics
        Metric names (see :func:`metric_names`); ``None`` for all of the task's metrics:
        accuracy, f1, log_loss, roc_auc or mae, rmse, r2. They are river's metric objects.
    every
        A result row per learner is written every ``every`` labelled events, and at the end.
    rolling_window
        Window, in scored predictions, of the ``rolling_<metric>`` columns
        (``river.utils.Rolling``).
    measure_memory
        Measure each learner's memory at each result row: river's ``_raw_memory_usage`` for
        river models, the length of the pickle for other learners.
    seed
        Seed for learners given by name, and for random delays.
    delay
        ``None`` (labels at once), an ``int`` (events later with ``moment=None``, seconds
        with ``"ts"``), ``(low, high)`` (a random delay per labelled event: ``randint(low,
        high)`` events, or ``uniform(low, high)`` seconds with ``"ts"``, drawn in stream order
        from ``random.Random(seed)``), seconds or a ``datetime.timedelta`` (``moment="ts"``),
        or a callable ``(event) -> delay``.
    moment
        The clock of ``delay`` and ``max_wait``: ``None``, the event's position in the stream,
        or ``"ts"``, its event time in seconds.
    labels
        An iterable of :class:`~eventml.events.Label` with ``ts`` (read at once), joined to
        the events by id; needs every event's ``ts``. Not with ``delay``.
    max_wait
        A label that arrives more than this after its event is late: counted, not scored or
        learned. In the units of the clock (events, or seconds with ``moment="ts"`` or
        ``labels``); ``None`` waits forever.
    drift
        ``None``, ``"adwin"``, ``"page_hinkley"`` or a river drift detector object.
    on_drift
        ``None`` (record only), ``"reset"`` or ``"refit"``.
    refit_window
        Events a ``WindowedBatch`` keeps and refits on under ``on_drift="refit"``.
    windows
        :class:`eventml.windows.Window` objects (or one): their features (from the events before each
        event, per key, see :mod:`eventml.windows`) are added to each event's features before the
        learners see it, in stream order, exactly as the live updater does. A target window needs the
        labels the events carry: not with ``delay`` or ``labels``.
    promotion
        An :class:`eventml.promotion.Promotion` rule: the first learner is the champion, the others
        challengers, and after each scored label the rule may promote one, exactly as a live updater with
        the same ``models`` and ``promotion`` does on the same events and labels (the same code decides).
        Every row then has ``champion`` (the champion after that step), and each promotion a row of its own
        for the promoted learner with ``promoted_from``, ``promotion_events`` (the events predicted when it
        was decided: a label that arrives before an event does not count that event), ``promotion_labels``,
        ``promotion_metric``, ``promotion_score`` and ``promotion_previous_score`` (missing on the other rows);
        :func:`eventml.promotion.promotion_table` lists them.
    alerts
        :class:`eventml.alerts.Alert` metric and drift rules (or one), applied after each scored label (before
        the promotion rule) exactly as a live updater with the same ``alerts`` applies them to the same events and
        labels (the same code decides). Each alert (``firing``, or ``resolved`` when its rule stops holding) has a
        row of its own for the model it watched with ``alert`` (the rule), ``alert_state``, ``alert_model``,
        ``alert_value`` (the figure that decided), ``alert_threshold`` and ``alert_events`` (the events predicted
        when it was decided); :func:`eventml.alerts.alert_table` lists them. Give the metrics the live updater
        keeps (``accuracy`` and ``log_loss``, or ``mae``), so that the models are asked what they are asked live.

    Returns
    -------
    pandas.DataFrame
        The result rows: one per learner every ``every`` labelled events, at each of its drift
        detections and at the end, in that order, with columns ``step`` (labelled events so
        far), ``events`` (all events so far), ``learner``, one column per metric (cumulative),
        one ``rolling_<metric>`` column per metric, ``predict_seconds`` and ``learn_seconds``
        (cumulative) and ``memory_bytes``; with ``delay`` or ``labels`` one ``labels_<outcome>``
        column per outcome above; with ``drift`` ``drifts`` (cumulative detections) and
        ``detection``. Everything is a column, so filtering, concatenating or saving the table
        keeps it.

    Raises
    ------
    ConfigError
        For unknown learner, metric, detector or policy names (listing the known ones),
        repeated learner names, a metric that does not fit the task, learners of mixed tasks,
        a delay or ``max_wait`` out of range, ``delay`` with ``labels``, a target window with either,
        or an event or label without ``ts`` where one is needed.
    ModelError
        When a learner raises while predicting an event or learning from it (with delayed
        labels: from the stored features, when the label arrives). It names the learner,
        the event id, the stage (``"predict"`` or ``"learn"``) and the exception, which is
        also its ``error`` attribute and its ``__cause__``. The evaluation stops there: the
        learners keep what they learned up to that event, and no result table is returned.

    Examples
    --------
    >>> import eventml as em
    >>> df = prequential(em.synthetic("sea", 1500, seed=3), "sgd_logreg", every=500)
    >>> print(df["step"].tolist(), round(df["accuracy"].iloc[-1], 2))
    [500, 1000, 1500] 0.95

    Labels 50 events late, and a drift detector on a stream whose concept changes at 3000 (the
    detection has a row of its own; 50 labels were still waiting at the end):

    >>> df = prequential(em.synthetic("sea", 6000, drift_at=3000, seed=3), "river_gnb",
    ...                  metrics=("accuracy",), delay=50, drift="adwin", every=3000)
    >>> print(df[["step", "events", "drifts", "detection", "labels_at_end"]].to_string(index=False))
     step  events  drifts detection  labels_at_end
     3000    3050       0       NaN              0
     3250    3300       1     adwin              0
     6000    6000       1       NaN             50
    """
    made = make_learners(learners, seed=seed)
    task = _task(made, task)
    chosen = check_metrics(metrics, task)
    every = positive_int("every", every)
    rolling_window = positive_int("rolling_window", rolling_window)
    tracks = [Scorer(learner, chosen, rolling_window) for learner in made]

    check_policy(on_drift, drift)
    if drift is not None:
        prototype = make_detector(drift)
        name = drift if isinstance(drift, str) else type(drift).__name__
        for track in tracks:
            track.watch = DriftWatch(prototype, name)
    if on_drift == "refit":
        refit_window = positive_int("refit_window", refit_window)
    check_moment(moment)
    if labels is not None and delay is not None:
        raise ConfigError("give either delay= (labels held back from the events) or labels= (a stream of "
                          "labels joined by id), not both")
    if max_wait is not None:
        max_wait = non_negative_seconds("max_wait", max_wait)
        if moment is None and labels is None and not is_int(max_wait):
            raise ConfigError(f"max_wait counts events with moment=None: give an int, got {max_wait!r}")

    features = windowed(windows)
    if features is not None:
        if features.target and (delay is not None or labels is not None):
            raise ConfigError("a target window (target=True) uses the labels events carry, as they are revealed: "
                              "not with delay= or labels=")
        events = add_windows(events, features)
    champion = None
    promotion = check_promotion(promotion, [learner.name for learner in made])
    if promotion is not None:
        check_metrics([promotion.metric], task)
        champion = Champion([learner.name for learner in made], promotion, classifier=task == CLASSIFICATION)

    names = [learner.name for learner in made]
    rules = check_alerts(alerts, names, task, live=False)
    watch = AlertWatch(rules, names, task == CLASSIFICATION) if rules else None

    if delay is None and labels is None and drift is None and champion is None and watch is None:
        rows = fast_loop(events, tracks, every, measure_memory)
    else:
        queue = DelayQueue(delay, moment, seed) if delay is not None else None
        feed = LabelFeed(labels) if labels is not None else None
        rows = general_loop(events, tracks, every, measure_memory, queue, feed, max_wait,
                            task == CLASSIFICATION, on_drift, refit_window, champion, watch)

    columns = (["step", "events", "learner"] + chosen + [f"rolling_{m}" for m in chosen]
               + ["predict_seconds", "learn_seconds", "memory_bytes"]
               + (_LABEL_COLUMNS if delay is not None or labels is not None else [])
               + (["drifts", "detection"] if drift is not None else [])
               + (["champion", *_PROMOTION_COLUMNS] if champion is not None else [])
               + (_ALERT_COLUMNS if watch is not None else []))
    return pd.DataFrame(rows, columns=columns)


_LABEL_COLUMNS = [f"labels_{outcome}" for outcome in LABEL_COUNTS]
_ALERT_COLUMNS = ["alert", "alert_state", "alert_model", "alert_value", "alert_threshold", "alert_events"]
_PROMOTION_COLUMNS = ["promoted_from", "promotion_events", "promotion_labels", "promotion_metric", "promotion_score",
                      "promotion_previous_score"]


def label_counts(df: pd.DataFrame) -> dict[str, int]:
    """What happened to the labels of a :func:`prequential` run: the ``labels_<outcome>`` columns of
    its last row (outcomes :data:`~eventml.labels.LABEL_COUNTS`). Without ``delay`` or ``labels`` every
    label was on time.

    Examples
    --------
    >>> import eventml as em
    >>> df = prequential(em.synthetic("sea", 1000, seed=1), "river_gnb", metrics=("accuracy",), delay=30)
    >>> print(label_counts(df)["on_time"], label_counts(df)["at_end"])
    970 30
    """
    if df.empty:
        raise ConfigError("label_counts needs a prequential result with at least one row")
    last = df.iloc[-1]
    if _LABEL_COLUMNS[0] not in df:
        return {**dict.fromkeys(LABEL_COUNTS, 0), "on_time": int(last["step"])}
    return {outcome: int(last[column]) for outcome, column in zip(LABEL_COUNTS, _LABEL_COLUMNS)}


def accuracy_between(df: pd.DataFrame, start: int, end: int) -> pd.Series:
    """Each learner's accuracy on the labelled events ``(start, end]`` (counted in ``step``),
    from the cumulative accuracy at the two result rows: the stretch just after a drift, say.

    The cumulative accuracy counts scored predictions, and a learner that has seen no label
    yet is not scored (as in river), so the figure can be off by up to ``1 / (end - start)``.
    ``start`` and ``end`` must be steps of result rows (multiples of ``every``, or the last
    step); ``start`` may be 0.

    Examples
    --------
    >>> import eventml as em
    >>> df = prequential(em.synthetic("sine", 4000, seed=1, drift_at=2000), ["river_logreg", "river_gnb"],
    ...                  metrics=("accuracy",), every=500)
    >>> print(accuracy_between(df, 2000, 3000).round(3).to_dict())
    {'river_logreg': 0.53, 'river_gnb': 0.04}
    """
    if "accuracy" not in df:
        raise ConfigError("accuracy_between needs a result with the 'accuracy' metric")
    accuracy = df.drop_duplicates(["step", "learner"], keep="last").pivot(index="step", columns="learner",
                                                                          values="accuracy")
    accuracy = accuracy[list(dict.fromkeys(df["learner"]))]
    missing = [s for s in (start, end) if s != 0 and s not in accuracy.index]
    if missing or not 0 <= start < end:
        raise ConfigError(f"start and end must be steps of result rows with 0 <= start < end, got ({start}, {end}); "
                          f"steps: {accuracy.index[0]}, {accuracy.index[1] if len(accuracy) > 1 else ''}, ...")
    correct_before = accuracy.loc[start] * start if start else 0.0
    result = (accuracy.loc[end] * end - correct_before) / (end - start)
    result.name = f"accuracy ({start}, {end}]"
    return result

"""The two loops of :func:`eventml.evaluate.prequential`, which checks the arguments and picks one.

:func:`fast_loop` is the plain test-then-train loop: labels at once, no detectors.
:func:`general_loop` stores each prediction until its label arrives (a simulated delay, or a
stream of labels joined by id), feeds the drift detectors and applies the drift policy. Both
return the result rows (:meth:`eventml.scoring.Scorer.row`) in the order of the table.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, NamedTuple

from eventml.alerts import AlertWatch
from eventml.delay import DelayQueue, LabelFeed, event_ts
from eventml.drift import apply_policy, error_of
from eventml.events import Event, Label
from eventml.labels import PendingLabels
from eventml.promotion import Champion
from eventml.scoring import Scorer

__all__ = ["fast_loop", "general_loop"]


class _Pending(NamedTuple):
    """What a prediction left to be joined with its label: never newer features."""

    event_id: str  # named in a ModelError if a learner fails to learn from x
    x: dict
    preds: list  # (label, proba) per learner, at prediction time
    t: float  # the clock at prediction time
    y: Any = None  # the held-back label of a simulated delay


def _label_columns(counts: dict[str, int]) -> dict[str, int]:
    return {f"labels_{outcome}": n for outcome, n in counts.items()}


_SCORE_RUN = 500  # labelled events scored at once by the plain loop


def fast_loop(events: Iterable[Event], tracks: list[Scorer], every: int,
              measure_memory: bool) -> list[dict[str, Any]]:
    """Labels at once and no detectors: the plain test-then-train loop.

    The predictions are scored in runs (``Scorer.update_run``, the same updates in the same order),
    before each row and every ``_SCORE_RUN`` labelled events.
    """
    perf_counter = time.perf_counter
    rows: list[dict[str, Any]] = []
    step = n_events = 0
    last_row_step = None
    unscored = [([], [], []) for _ in tracks]  # per track: labels, predicted labels, probabilities

    def score() -> None:
        for track, (ys, labels, probas) in zip(tracks, unscored):
            failed = track.update_run(ys, labels, probas)
            if failed:
                raise failed[min(failed)]
            for scored in (ys, labels, probas):
                scored.clear()

    for event in events:
        n_events += 1
        x, y = event.features, event.label
        for track, (ys, labels, probas) in zip(tracks, unscored):
            start = perf_counter()
            try:
                label, proba = track.predict(x)
            except Exception as exc:
                raise track.failed(event.id, "predict", exc) from exc
            track.predict_seconds += perf_counter() - start
            if y is None:
                continue
            ys.append(y)
            labels.append(label)
            probas.append(proba)
            start = perf_counter()
            try:
                track.learner.learn_one(x, y)
            except Exception as exc:
                raise track.failed(event.id, "learn", exc) from exc
            track.learn_seconds += perf_counter() - start
        if y is not None:
            step += 1
            if step % every == 0:
                score()
                rows.extend(track.row(step, n_events, measure_memory) for track in tracks)
                last_row_step = step
            elif step % _SCORE_RUN == 0:
                score()
    score()
    if last_row_step != step:
        rows.extend(track.row(step, n_events, measure_memory) for track in tracks)
    return rows


def general_loop(events: Iterable[Event], tracks: list[Scorer], every: int, measure_memory: bool,
                 queue: DelayQueue | None, feed: LabelFeed | None, max_wait: float | None,
                 classification: bool, on_drift: str | None,
                 refit_window: int, champion: Champion | None = None,
                 alerts: AlertWatch | None = None) -> list[dict[str, Any]]:
    """Stored predictions joined with labels that arrive later, drift detectors, a champion whose
    promotion rule is applied after each label (the live updater's :class:`~eventml.promotion.Champion`),
    and alert rules applied after each label before it (the live updater's :class:`~eventml.alerts.AlertWatch`)."""
    perf_counter = time.perf_counter
    rows: list[dict[str, Any]] = []
    last_rows: list[dict[str, Any] | None] = [None] * len(tracks)  # each track's newest row
    pending = PendingLabels(max_wait)  # with labels=: event id -> its stored prediction
    counted = queue is not None or feed is not None  # the labels_<outcome> columns
    step = n_events = 0
    names = [track.learner.name for track in tracks]
    seen = 0  # events predicted so far (a label revealed before an event's prediction does not count it)

    def write(i: int, detection: str | None = None, promotion: dict | None = None, alert: dict | None = None) -> None:
        row = tracks[i].row(step, n_events, measure_memory)
        if counted:
            row.update(_label_columns(pending.counts))
        row["detection"] = detection
        if champion is not None:
            row["champion"] = champion.name
            if promotion is not None:
                row.update(promoted_from=promotion["previous"], promotion_events=promotion["events"],
                           promotion_labels=promotion["labels"],
                           promotion_metric=promotion["metric"], promotion_score=promotion["scores"][row["learner"]],
                           promotion_previous_score=promotion["scores"][promotion["previous"]])
        if alert is not None:
            row.update(alert=alert["rule"], alert_state=alert["state"], alert_model=alert["model"],
                       alert_value=alert["value"], alert_threshold=alert["threshold"], alert_events=alert["events"])
        rows.append(row)
        last_rows[i] = row

    def reveal(stored: _Pending, y: Any) -> None:
        """Score the stored predictions against ``y`` and learn from the stored features."""
        nonlocal step
        step += 1
        x = stored.x
        detections: dict[int, str] = {}
        for i, (track, (label, proba)) in enumerate(zip(tracks, stored.preds)):
            track.update(y, label, proba)
            watch = track.watch
            if watch is not None:
                error = error_of(classification, y, label, proba)
                if error is not None and watch.update(error):
                    track.drifts += 1
                    detections[i] = watch.name
                    if on_drift is not None:
                        track.learner = apply_policy(track.learner, on_drift, refit_window)
                        watch.restart()
            start = perf_counter()
            try:
                track.learner.learn_one(x, y)
            except Exception as exc:
                raise track.failed(stored.event_id, "learn", exc) from exc
            track.learn_seconds += perf_counter() - start
        for i in range(len(tracks)) if step % every == 0 else detections:
            write(i, detections.get(i))
        if alerts is not None:
            for alert in alerts.scored(y, stored.preds, champion.index if champion is not None else 0, seen):
                write(names.index(alert["model"]), alert=alert)
        if champion is not None:
            promotion = champion.scored(y, stored.preds, seen)
            if promotion is not None:
                write(champion.index, promotion=promotion)

    def join(label: Label, outcome: str) -> None:
        kept = pending.arrive(label.id, label.ts, outcome)
        if kept is not None:
            reveal(kept, label.label)

    for event in events:
        n_events += 1
        if queue is not None:
            t = queue.time(event, n_events - 1)
            for due, stored in queue.due(t):
                if pending.reveal(stored.t, due):
                    reveal(stored, stored.y)
        elif feed is not None:
            t = event_ts(event)
            for label in feed.due(t):
                join(label, "on_time")
        else:
            t = n_events - 1
        x, y = event.features, event.label
        preds = []
        for track in tracks:
            start = perf_counter()
            try:
                preds.append(track.predict(x))
            except Exception as exc:
                raise track.failed(event.id, "predict", exc) from exc
            track.predict_seconds += perf_counter() - start
        seen = n_events
        if y is not None:
            if queue is not None:
                queue.push(t, event, _Pending(event.id, x, preds, t, y))
            else:
                if feed is not None:
                    pending.settle(event.id)
                pending.reveal(t, t)
                reveal(_Pending(event.id, x, preds, t), y)
        elif feed is not None:
            pending.wait(event.id, _Pending(event.id, x, preds, t), t)
    if queue is not None:
        for due, stored in queue.drain():
            if pending.reveal(stored.t, due, "at_end"):
                reveal(stored, stored.y)
    if feed is not None:
        for label in feed.drain():
            join(label, "at_end")
        pending.drain()
    for i, row in enumerate(last_rows):
        if row is None or row["step"] != step:
            write(i)
        elif counted:  # the last rows have the totals, also of the labels counted at the end
            row.update(_label_columns(pending.counts))
    return rows

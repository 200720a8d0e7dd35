"""The per-record work of a live updater: one input record in, exactly one outcome out.

An event is decoded, predicted (before learning), learned from if it carries its label (else its
features wait for the label in the :class:`~eventml.labels.PendingLabels` join), and its
prediction published; a label is joined to the features kept at prediction time and learned
from. A record that breaks the wire format, or that the model fails on (reason ``model_error``),
is dead-lettered, unchanged, instead, and counted; no prediction is published for such an event.
All of it happens inside the updater's open transaction, through the ``send`` function it is given,
so the processor needs no Kafka client and is tested without one. Records already fetched are
handed over in runs (:meth:`RecordProcessor.events`): the same outcomes as one at a time, faster.

Examples
--------
>>> from types import SimpleNamespace
>>> from eventml.learners import make_learner
>>> from eventml.live.state import UpdaterState
>>> sent = []
>>> def send(topic, value, key, partition=-1, headers=None):
...     sent.append((topic, value))
...     return True
>>> processor = RecordProcessor(UpdaterState.fresh(make_learner("river_gnb"), ["accuracy"], 100), "gnb",
...                             "predictions", send)
>>> def record(value, offset):
...     return SimpleNamespace(value=lambda: value, key=lambda: None, topic=lambda: "events",
...                            partition=lambda: 0, offset=lambda: offset, timestamp=lambda: (1, 1_000))
>>> processor.event(record(b'{"id": "a", "features": {"x": 1.0}, "label": 1}', 0))
1000
>>> processor.event(record(b"not json", 1)) is None
True
>>> [topic for topic, _ in sent], dict(processor.state.counts)
(['predictions', 'events.dlq'], {'learned': 1, 'events': 1, 'dead_letters': 1})
"""

from __future__ import annotations

import time
from typing import Any, Callable

from eventml.dlq import dead_letter_headers, dlq_topic, shorter_copies
from eventml.errors import EventFormatError, ModelError
from eventml.events import NUMBER_TYPES, decode_event_run, decode_label, encode_prediction_fields

__all__ = ["MAX_RUN", "RecordProcessor", "add_window_features"]

MAX_RUN = 500
"""The most records the live updater hands :meth:`RecordProcessor.events` at once (when they are already
fetched): longer runs no longer gain, and run out of the CPU's caches."""


def add_window_features(windows: Any, decoded: list) -> list:
    """The decoded events of a run with the features of ``windows`` (a
    :class:`~eventml.windows.WindowedFeatures`) added to each one's features, in order; records that
    are not events are left as they are."""
    out = []
    numbers = NUMBER_TYPES.issuperset
    for fields in decoded:
        if type(fields) is tuple:
            event_id, x, y, ts, numeric = fields
            added = windows.features_one(x, ts, y)
            x.update(added)
            fields = (event_id, x, y, ts, numeric and numbers(map(type, added.values())))
        out.append(fields)
    return out


class RecordProcessor:
    """Processes input records into predictions, learned labels and dead letters.

    Parameters
    ----------
    state
        The :class:`~eventml.live.state.UpdaterState` it updates.
    model_name
        The model's name in every prediction.
    predictions_topic
        Where predictions go, keyed by event id.
    send
        ``send(topic, value, key, partition=-1, headers=None) -> bool``: produce one record in the
        open transaction; False if it is too large for the producer (nothing was sent).
    prediction_partition
        The partition of every prediction, or -1 to choose by key.
    keep_unlabelled
        Keep the features of events without a label for a label that comes later (there is a
        labels topic).
    """

    def __init__(self, state: Any, model_name: str, predictions_topic: str, send: Callable[..., bool],
                 prediction_partition: int = -1, keep_unlabelled: bool = False):
        self.state = state
        self.model_name = model_name
        self.predictions_topic = predictions_topic
        self.send = send
        self.prediction_partition = prediction_partition
        self.keep_unlabelled = keep_unlabelled

    def event(self, record: Any) -> int | None:
        """Process an event record; return its timestamp (ms) if a prediction was published."""
        published = self.events([record])
        return published[0] if published else None

    def events(self, records: list) -> list[int]:
        """Process a run of event records, in order, exactly as :meth:`event` does each one; return the
        timestamps (ms) of those whose prediction was published.

        The run is done in four passes (decode all, predict and learn each in turn, score all, publish
        all): the same calls in the same order per record, with the model's code and data left in the
        CPU's caches through the second pass, so a run of a few hundred records costs about 40% less
        per record than one at a time (``benchmarks/bench_record_path.py``). The predictions of a run
        carry one time (``ts``): when the run's predictions were made, as they are published.
        """
        state = self.state
        scorer, counts = state.scorer, state.counts
        # 1. decode: (id, x, y, event_ts, numeric) per record, or the error that dead-letters it
        times = [record.timestamp()[1] for record in records]
        decoded = decode_event_run([(record.value(), ms / 1000.0) for record, ms in zip(records, times)])
        if state.windows is not None:  # once per event, before any model predicts
            decoded = add_window_features(state.windows, decoded)
        # 2. predict, then learn: per record (label, proba), or the error
        predicted, (positions, ys, labels, probas) = self._predict_and_learn(decoded)
        # 3. score what was learned from, in order (a metric that raises fails the event as its learning would)
        if positions:
            for i, exc in scorer.update_run(ys, labels, probas).items():
                predicted[positions[i]] = scorer.failed(decoded[positions[i]][0], "learn", exc)
        # 4. publish each prediction, or dead-letter the record, in order
        published, predicted_at = [], time.time()  # the run's predictions are made
        model_name, topic, partition, send = self.model_name, self.predictions_topic, self.prediction_partition, self.send
        keep = self.keep_unlabelled
        version = counts["learned"]
        append = published.append
        try:
            for record, ms, fields, outcome in zip(records, times, decoded, predicted):
                if type(outcome) is not tuple:
                    self.dead_letter(record, fields if outcome is None else outcome)
                    continue
                event_id, x, y, event_ts, _ = fields
                label, proba = outcome
                value = encode_prediction_fields(event_id, label, model_name, version, proba, event_ts, predicted_at)
                if y is not None:
                    version += 1  # the prediction was made before this learning
                elif keep:
                    self._keep(event_id, x, event_ts, label, proba)
                key = record.key() or event_id.encode()
                if not send(topic, value, key, partition):
                    # the event fitted, its prediction (the id as key and in the value, and the probabilities)
                    # does not: it was learned from, and ends in the DLQ instead
                    self.dead_letter(record, EventFormatError(
                        "prediction_too_large", f"the prediction of event {event_id[:80]!r} with its key is "
                        f"{len(value) + len(key)} bytes, more than the producer may send"))
                    continue
                append(ms)
        finally:  # also when send raises: the counts of what was done
            if version != counts["learned"]:
                counts["learned"] = version
            if published:
                counts["events"] += len(published)
        return published

    def _predict_and_learn(self, decoded: list) -> tuple[list, tuple[list, list, list, list]]:
        """Pass 2 of :meth:`events`: predict each decoded event, then learn from it if it has its label.

        Returns per record ``(label, proba)``, None (not decoded) or the
        :class:`~eventml.errors.ModelError`, and what to score: the positions, labels, predicted labels
        and probabilities of the events learned from.
        """
        scorer = self.state.scorer
        learner, failed, derive = scorer.learner, scorer.failed, scorer.derive_label
        predict_proba, learn, predict = learner.predict_proba_one, learner.learn_one, scorer.predict
        # a river learner's own model, called directly when every feature is a number (as the learner would)
        numeric_calls = getattr(learner, "numeric_calls", None)
        numeric_calls = numeric_calls() if derive and numeric_calls is not None else None
        river_proba, river_learn = numeric_calls or (None, None)
        predicted: list[Any] = []
        scored: tuple[list, list, list, list] = ([], [], [], [])
        append, score_at, score_y, score_label, score_proba = predicted.append, *(part.append for part in scored)
        for k, fields in enumerate(decoded):
            if type(fields) is not tuple:
                append(None)
                continue
            event_id, x, y, _, numeric = fields
            numeric = numeric and river_proba is not None
            try:
                if numeric:
                    proba = river_proba(x)
                    label = max(proba, key=proba.get) if proba else None
                elif derive:  # the live updater's case: the label is the most probable class
                    proba = predict_proba(x)
                    label = max(proba, key=proba.get) if proba else None
                else:
                    label, proba = predict(x)
            except Exception as exc:  # the model's own failure: this event ends in the DLQ, the run goes on
                append(failed(event_id, "predict", exc))
                continue
            if y is not None:
                try:
                    if numeric:
                        river_learn(x, y)
                    else:
                        learn(x, y)
                except Exception as exc:
                    append(failed(event_id, "learn", exc))
                    continue
                score_at(k)
                score_y(y)
                score_label(label)
                score_proba(proba)
            append((label, proba))
        return predicted, scored

    def _keep(self, event_id: str, x: dict, event_ts: Any, label: Any, proba: Any) -> None:
        state = self.state
        state.pending.wait(event_id, (x, label, proba), event_ts)
        if event_ts is not None and event_ts > state.newest_ts:
            state.newest_ts = event_ts
        state.pending.expire(state.newest_ts)

    def label(self, record: Any) -> None:
        """Process a label record: score the prediction kept for its id and learn from its features."""
        state = self.state
        try:
            label = decode_label(record.value(), record.timestamp()[1] / 1000.0)
        except EventFormatError as error:
            self.dead_letter(record, error)
            return
        # late is judged on the updater's event-time clock, not the label's own (a record timestamp,
        # often): a prediction that waited longer than max_wait has expired, and its label counts as late
        kept = state.pending.arrive(label.id, None)
        if kept is None:
            return  # late, a duplicate or an unknown id: counted by the join
        x, predicted, proba = kept
        try:
            state.scorer.learner.learn_one(x, label.label)
            state.scorer.update(label.label, predicted, proba)
        except Exception as exc:  # the label ends in the labels' DLQ; its event's prediction was published
            self.dead_letter(record, state.scorer.failed(label.id, "learn", exc))
            return
        state.counts["learned"] += 1

    def dead_letter(self, record: Any, error: EventFormatError | ModelError) -> None:
        """Send a record, unchanged, to its topic's DLQ with the headers that explain it; one too large
        to copy with its headers leaves a shorter copy (see :mod:`eventml.dlq`)."""
        topic = record.topic()
        headers = dead_letter_headers(error, topic, record.partition(), record.offset())
        value, key = record.value(), record.key()
        if not self.send(dlq_topic(topic), value, key, -1, headers):
            for short, marked in shorter_copies(value, headers):  # the last has no value: it always fits
                if self.send(dlq_topic(topic), short, key, -1, marked):
                    break
        counts = self.state.counts
        counts["dead_letters"] += 1
        self.state.dlq_reasons[error.reason] += 1
        if error.reason == "model_error":
            counts["model_errors"] += 1

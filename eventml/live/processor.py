"""The per-record work of a live updater: one input record in, exactly one outcome out per model.

An event is decoded once; then each model of the task (:class:`~eventml.live.state.ModelState`, in the
order given) predicts it before learning, learns from it if it carries its label (else its features wait
for the label in that model's :class:`~eventml.labels.PendingLabels` join), and its prediction is
published: the champion's to the predictions topic, each challenger's to ``<predictions>.challengers``
(:func:`~eventml.promotion.challengers_topic`). A label is joined to the features each model kept at
prediction time and learned from. After each label the task's alert rules (:class:`~eventml.alerts.AlertWatch`)
and then its :class:`~eventml.promotion.Champion` apply; an alert goes to ``<predictions>.alerts`` (so do
those of the dead-letter rule, at each dead letter, and of the lag rule, at each commit, see :meth:`RecordProcessor.lag`),
a promotion to ``<predictions>.champions``, taking effect from the next event.
A record that breaks the wire format is dead-lettered, unchanged, once; an event or label a model fails
on (reason ``model_error``) is dead-lettered for that model (its name in the header
``eventml.error.model``), no prediction of that model is published for it, and the other models go on.
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
>>> state = UpdaterState.fresh([make_learner("river_gnb"), make_learner("river_logreg")], ["accuracy"], 100)
>>> processor = RecordProcessor(state, "predictions", send)
>>> def record(value, offset):
...     return SimpleNamespace(value=lambda: value, key=lambda: None, topic=lambda: "events",
...                            partition=lambda: 0, offset=lambda: offset, timestamp=lambda: (1, 1_000))
>>> processor.event(record(b'{"id": "a", "features": {"x": 1.0}, "label": 1}', 0))
1000
>>> processor.event(record(b"not json", 1)) is None
True
>>> [topic for topic, _ in sent], dict(processor.state.counts), processor.state.models[1].counts["learned"]
(['predictions', 'predictions.challengers', 'events.dlq'], {'events': 1, 'dead_letters': 1}, 1)
"""

from __future__ import annotations

import time
from typing import Any, Callable

import orjson

from eventml.alerts import alerts_topic
from eventml.dlq import dead_letter_headers, dlq_topic, shorter_copies
from eventml.errors import EventFormatError, EventmlError, ModelError
from eventml.events import NUMBER_TYPES, decode_event_run, decode_label, encode_prediction_fields
from eventml.promotion import challengers_topic, champions_topic

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
    """Processes input records into predictions, learned labels, promotions and dead letters.

    Parameters
    ----------
    state
        The :class:`~eventml.live.state.UpdaterState` it updates (its models, in order, and its champion).
    predictions_topic
        Where the champion's predictions go, keyed by event id (the challengers' and the promotions' topics
        are named after it).
    send
        ``send(topic, value, key, partition=-1, headers=None) -> bool``: produce one record in the
        open transaction; False if it is too large for the producer (nothing was sent).
    prediction_partition
        The partition of every champion prediction, or -1 to choose by key.
    keep_unlabelled
        Keep the features of events without a label for a label that comes later (there is a
        labels topic).
    """

    def __init__(self, state: Any, predictions_topic: str, send: Callable[..., bool],
                 prediction_partition: int = -1, keep_unlabelled: bool = False):
        self.state = state
        self.predictions_topic = predictions_topic
        self.challengers_topic = challengers_topic(predictions_topic)
        self.champions_topic = champions_topic(predictions_topic)
        self.alerts_topic = alerts_topic(predictions_topic)
        self.send = send
        self.prediction_partition = prediction_partition
        self.keep_unlabelled = keep_unlabelled

    def event(self, record: Any) -> int | None:
        """Process an event record; return its timestamp (ms) if the champion's prediction was published."""
        published = self.events([record])
        return published[0] if published else None

    def events(self, records: list) -> list[int]:
        """Process a run of event records, in order, exactly as :meth:`event` does each one; return the
        timestamps (ms) of those whose champion prediction was published.

        The run is done in passes (decode all; per model, predict and learn each in turn, then score all;
        publish all, in record order, applying the promotion rule after each label): the same calls in the
        same order per record and model, with each model's code and data left in the CPU's caches through
        its pass, so a run of a few hundred records costs about 40% less per record than one at a time
        (``benchmarks/bench_record_path.py``). The predictions of a run carry one time (``ts``): when the
        run's predictions were made, as they are published.
        """
        state = self.state
        # 1. decode: (id, x, y, event_ts, numeric) per record, or the error that dead-letters it
        times = [record.timestamp()[1] for record in records]
        decoded = decode_event_run([(record.value(), ms / 1000.0) for record, ms in zip(records, times)])
        if state.windows is not None:  # once per event, before any model predicts
            decoded = add_window_features(state.windows, decoded)
        # 2. per model: predict, then learn, then score: per record (label, proba), None or the error
        models = state.models
        outcomes = [self._model_run(model, decoded) for model in models]
        # 3. publish each model's prediction, or dead-letter the record, in record order
        published, predicted_at = [], time.time()  # the run's predictions are made
        champion, send, keep = state.champion, self.send, self.keep_unlabelled
        scoring = champion.rule is not None or state.alerts is not None  # after each label
        topics = (self.challengers_topic, self.predictions_topic)
        partitions = (-1, self.prediction_partition)
        versions = [model.counts["learned"] for model in models]
        made = [0] * len(models)
        seen = state.seen
        slots = list(enumerate(zip(models, outcomes)))
        append = published.append
        try:
            for k, (record, ms, fields) in enumerate(zip(records, times, decoded)):
                if type(fields) is not tuple:
                    state.seen = seen  # the clock of the dead-letter alerts
                    self.dead_letter(record, fields)
                    continue
                seen += 1
                event_id, x, y, event_ts, _ = fields
                key = record.key() or event_id.encode()
                answering = champion.index
                for m, (model, outcome) in slots:
                    outcome = outcome[k]
                    if type(outcome) is not tuple:
                        state.seen = seen
                        self.dead_letter(record, outcome, model.name)
                        continue
                    label, proba = outcome
                    value = encode_prediction_fields(event_id, label, model.name, versions[m], proba, event_ts,
                                                     predicted_at)
                    if y is not None:
                        versions[m] += 1  # the prediction was made before this learning
                    elif keep:
                        self._keep(model, event_id, x, event_ts, label, proba)
                    is_champion = m == answering
                    if not send(topics[is_champion], value, key, partitions[is_champion]):
                        # the event fitted, its prediction (the id as key and in the value, and the probabilities)
                        # does not: it was learned from, and ends in the DLQ instead
                        state.seen = seen
                        self.dead_letter(record, EventFormatError(
                            "prediction_too_large", f"the prediction of event {event_id[:80]!r} with its key is "
                            f"{len(value) + len(key)} bytes, more than the producer may send"), model.name)
                        continue
                    made[m] += 1
                    if is_champion:
                        append(ms)
                if y is not None and scoring:
                    state.seen = seen
                    self._score_rule(record, event_id, y, [outcome[k] for outcome in outcomes])
        finally:  # also when send raises: the counts of what was done
            state.seen = seen
            for model, version, n in zip(models, versions, made):
                model.counts["learned"] = version
                model.counts["events"] += n
            if published:
                state.counts["events"] += len(published)
        if state.alerts is not None and state.alerts.watches_dead_letters:  # dead letters that left the window
            self._alert(None, state.alerts.dead_letters(state.seen))
        return published

    def _model_run(self, model: Any, decoded: list) -> list:
        """Pass 2 of :meth:`events` for one model: predict each decoded event, then learn from it if it has its
        label; then score what was learned from, in order (a metric that raises fails the event as its
        learning would). Returns per record ``(label, proba)``, None (not decoded) or the
        :class:`~eventml.errors.ModelError`."""
        scorer = model.scorer
        learner, failed, derive = scorer.learner, scorer.failed, scorer.derive_label
        predict_proba, learn, predict = learner.predict_proba_one, learner.learn_one, scorer.predict
        # a river learner's own model, called directly when every feature is a number (as the learner would)
        numeric_calls = getattr(learner, "numeric_calls", None)
        numeric_calls = numeric_calls() if derive and numeric_calls is not None else None
        river_proba, river_learn = numeric_calls or (None, None)
        predicted: list[Any] = []
        positions: list[int] = []
        ys: list[Any] = []
        labels: list[Any] = []
        probas: list[Any] = []
        append, score_at, score_y, score_label, score_proba = (predicted.append, positions.append, ys.append,
                                                               labels.append, probas.append)
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
        if positions:
            for i, exc in scorer.update_run(ys, labels, probas).items():
                predicted[positions[i]] = failed(decoded[positions[i]][0], "learn", exc)
        return predicted

    def _keep(self, model: Any, event_id: str, x: dict, event_ts: Any, label: Any, proba: Any) -> None:
        model.pending.wait(event_id, (x, label, proba), event_ts)
        if event_ts is not None and event_ts > model.newest_ts:
            model.newest_ts = event_ts
        model.pending.expire(model.newest_ts)

    def label(self, record: Any) -> None:
        """Process a label record: for each model, score the prediction kept for its id and learn from its
        features; then apply the promotion rule."""
        state = self.state
        try:
            label = decode_label(record.value(), record.timestamp()[1] / 1000.0)
        except EventFormatError as error:
            self.dead_letter(record, error)
            return
        scored: list[Any] = []
        for model in state.models:
            # late is judged on the updater's event-time clock, not the label's own (a record timestamp,
            # often): a prediction that waited longer than max_wait has expired, and its label counts as late
            kept = model.pending.arrive(label.id, None)
            if kept is None:
                scored.append(None)  # late, a duplicate or an unknown id: counted by the join
                continue
            x, predicted, proba = kept
            try:
                model.scorer.learner.learn_one(x, label.label)
                model.scorer.update(label.label, predicted, proba)
            except Exception as exc:  # the label ends in the labels' DLQ; its event's prediction was published
                self.dead_letter(record, model.scorer.failed(label.id, "learn", exc), model.name)
                scored.append(None)
                continue
            model.counts["learned"] += 1
            scored.append((predicted, proba))
        if (state.champion.rule is not None or state.alerts is not None) and any(o is not None for o in scored):
            self._score_rule(record, label.id, label.label, scored)

    def _score_rule(self, record: Any, record_id: str, y: Any, outcomes: list) -> None:
        """Apply the alert rules, then the promotion rule, to one label; publish the alerts to the alerts topic
        and a promotion, if any, to the champions topic."""
        state = self.state
        predictions = [o if type(o) is tuple else None for o in outcomes]
        if state.alerts is not None:
            self._alert(record, state.alerts.scored(y, predictions, state.champion.index, state.seen))
        promoted = state.champion.scored(y, predictions, state.seen)
        if promoted is not None:
            value = orjson.dumps({**promoted, "id": record_id, "topic": record.topic(),
                                  "partition": record.partition(), "offset": record.offset(), "ts": time.time()})
            key = record_id.encode()
            if not self.send(self.champions_topic, value, key, -1):
                # the label's id (key and value) makes it too large: the promotion holds, its record is a dead letter
                self.dead_letter(record, EventFormatError(
                    "promotion_too_large", f"the promotion at {record_id[:80]!r} with its key is "
                    f"{len(value) + len(key)} bytes, more than the producer may send"))

    def _alert(self, record: Any, alerts: list) -> None:
        """Publish alert records (:class:`~eventml.alerts.AlertWatch`), with the position of the record that decided
        (none for the lag or a dead-letter rule's end), keyed by rule."""
        for alert in alerts:
            where = ({"topic": record.topic(), "partition": record.partition(), "offset": record.offset()}
                     if record is not None else {})
            value = orjson.dumps({**alert, **where, "ts": time.time()})
            if not self.send(self.alerts_topic, value, alert["rule"].encode(), -1):
                raise EventmlError(f"the alert {alert['rule']} is {len(value)} bytes, more than the producer may send")

    def lag(self, lag: int | None) -> None:
        """Apply the lag rules to the task's lag (records of its events partitions not read yet) at a commit."""
        state = self.state
        if state.alerts is not None and state.alerts.watches_lag:
            self._alert(None, state.alerts.lag(lag, state.seen))

    def dead_letter(self, record: Any, error: EventFormatError | ModelError, model: str | None = None) -> None:
        """Send a record, unchanged, to its topic's DLQ with the headers that explain it (``model``: the model it
        is a dead letter of); one too large to copy with its headers leaves a shorter copy (see :mod:`eventml.dlq`)."""
        topic = record.topic()
        headers = dead_letter_headers(error, topic, record.partition(), record.offset(), model)
        value, key = record.value(), record.key()
        if not self.send(dlq_topic(topic), value, key, -1, headers):
            for short, marked in shorter_copies(value, headers):  # the last has no value: it always fits
                if self.send(dlq_topic(topic), short, key, -1, marked):
                    break
        state = self.state
        state.counts["dead_letters"] += 1
        state.dlq_reasons[error.reason] += 1
        if error.reason == "model_error":
            state.counts["model_errors"] += 1
            for one in state.models:
                if one.name == model:
                    one.counts["model_errors"] += 1
        if state.alerts is not None and state.alerts.watches_dead_letters:
            self._alert(record, state.alerts.dead_letters(state.seen, dead_letter=True))

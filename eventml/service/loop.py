"""Closing the loop: what the service answered goes back to Kafka, to be scored and learned.

With ``close_loop=True`` every served prediction is written, in the wire format and keyed by the
request's event id, to the *served predictions topic*, and its event, without its label, to the
live updater's *events topic*, keyed as the producer keys events (:func:`~eventml.events.record_key`:
by id, or with ``key="user"`` by its user) and at its ``ts``, or without one at the time it was
answered (the time its windowed features were computed for). Decided:

- the event goes to the updater's events topic, so the updater treats it like any other event:
  it predicts it too (its own prediction, on its predictions topic, exactly once), keeps its
  features, and learns from them when the label arrives on the labels topic. The updater's figures
  therefore score *its* prediction, made a moment later with a model that may be one commit newer;
- the served prediction goes to a separate topic, ``<updater's predictions topic>.served`` by
  default, never to the updater's own predictions topic (which holds exactly one prediction per
  event, from the updater). :func:`served_scores` joins that topic with the labels topic: the
  accuracy of what users were actually told.

The writes are asynchronous (a confluent-kafka producer, idempotent, ``acks=all``): a request does
not wait for Kafka. Guaranteed: a write that fails is counted (``failed`` in ``GET /healthz``), and
:meth:`LoopWriter.close` waits for what is queued. Not guaranteed: a served prediction whose write
fails has still been answered; the two records of one request are not one transaction.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pandas as pd

from eventml.events import Event, Prediction, encode_event, encode_prediction, record_key

__all__ = ["LoopWriter", "served_scores"]

log = logging.getLogger("eventml.service")
client_log = logging.getLogger("eventml.service.librdkafka")


class LoopWriter:
    """Writes served events and predictions to Kafka.

    Parameters
    ----------
    kafka
        The connection settings (:class:`~eventml.kafka.settings.KafkaSettings`).
    events_topic
        Where the served events go, without label (the live updater's events topic).
    predictions_topic
        Where the served predictions go (not the updater's own predictions topic).
    key
        The feature the events are keyed by (see :func:`~eventml.events.record_key`), or None: by id.
    """

    def __init__(self, kafka: Any, events_topic: str, predictions_topic: str, key: str | None = None):
        from eventml.kafka import rdkafka
        from eventml.kafka.topics import create_topic

        self.events_topic, self.predictions_topic, self.key = events_topic, predictions_topic, key
        self.written = 0
        self.failed = 0
        self.first_error: str | None = None
        for topic in (events_topic, predictions_topic):
            create_topic(topic, kafka=kafka)  # no-op when it exists; a cluster may not create topics by itself
        # murmur2_random: an event lands on the partition Java and kafka-python clients would choose
        self.producer = rdkafka.producer(kafka, {"linger.ms": 5, "acks": "all", "enable.idempotence": True,
                                                 "partitioner": "murmur2_random"}, logger=client_log)
        self._lock = threading.Lock()  # produce() is thread-safe; the counters are not

    def _delivered(self, error: Any, message: Any) -> None:
        with self._lock:
            if error is None:
                self.written += 1
            else:
                self.failed += 1
                self.first_error = self.first_error or str(error)

    def write(self, events: list[Event], predictions: list[Prediction]) -> None:
        """Queue each event (label left out) and its served prediction; returns at once."""
        produce = self.producer.produce
        for event, prediction in zip(events, predictions):
            key = event.id.encode()
            unlabelled = Event(event.id, event.features, None, event.ts if event.ts is not None else prediction.ts)
            while True:
                try:
                    produce(self.events_topic, encode_event(unlabelled), record_key(event.id, event.features, self.key),
                            on_delivery=self._delivered)
                    produce(self.predictions_topic, encode_prediction(prediction), key, on_delivery=self._delivered)
                    break
                except BufferError:  # the local queue is full: let librdkafka send some first
                    self.producer.poll(0.05)
        self.producer.poll(0)  # delivery callbacks

    def status(self) -> dict[str, Any]:
        self.producer.poll(0)
        return {"events_topic": self.events_topic, "predictions_topic": self.predictions_topic,
                "written": self.written, "failed": self.failed, "first_error": self.first_error}

    def flush(self, timeout_s: float = 10.0) -> int:
        """Wait for every queued record; return how many are still queued."""
        return self.producer.flush(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        left = self.flush(timeout_s)
        if left:
            log.warning("closing the loop writer with %d records not delivered", left)


def served_scores(predictions_topic: str, labels_topic: str, **kafka: Any) -> pd.DataFrame:
    """Served predictions joined with the labels that arrived for them, in the order they were served.

    Columns: ``id``, ``prediction``, ``label``, ``correct`` (prediction == label), ``model_version``,
    ``ts`` (when it was served), ``served_accuracy`` (cumulative). Predictions still without a label
    are left out. ``kafka``: the connection keywords (``bootstrap_servers``, ``kafka``, ...).

    Examples
    --------
    >>> served_scores("sea-predictions.served", "sea-labels")  # doctest: +SKIP
    """
    from eventml.consumer import read_labels, read_predictions

    served = read_predictions(predictions_topic, **kafka)
    labels = read_labels(labels_topic, **kafka)
    truth = pd.DataFrame([(label.id, label.label) for label in labels], columns=["id", "label"])
    truth = truth.drop_duplicates("id", keep="first")
    df = served.merge(truth, on="id", how="inner").sort_values(["ts", "offset"], kind="stable")
    df = df[["id", "prediction", "label", "model_version", "ts"]].reset_index(drop=True)
    df.insert(3, "correct", df["prediction"] == df["label"])
    df["served_accuracy"] = df["correct"].cumsum() / (df.index + 1)
    return df

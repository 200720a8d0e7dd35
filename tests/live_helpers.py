"""What the live updater's integration tests share: events written by another producer, the predictions
an uninterrupted offline run makes, the committed predictions read back, and a probe of a model."""

from __future__ import annotations

from kafka import KafkaProducer

import eventml as em
from eventml.learners import make_learner


def offline_predictions(events, model="river_logreg"):
    """Predict then learn, event by event, with a fresh model: {id: (version, prediction, proba)}."""
    learner = make_learner(model)
    out = {}
    for version, event in enumerate(events):
        proba = learner.predict_proba_one(event.features)
        out[event.id] = (version, max(proba, key=proba.get) if proba else None,
                         {str(k): v for k, v in proba.items()} or None)
        learner.learn_one(event.features, event.label)
    return out


def produce_events(events, topic, servers):
    """Write events with a plain kafka-python producer (not eventml's)."""
    producer = KafkaProducer(bootstrap_servers=servers, linger_ms=20)
    for event in events:
        producer.send(topic, value=em.encode_event(event), key=event.id.encode())
    producer.flush()
    producer.close()


def published(topic, servers=None, *, kafka=None):
    """{id: (model_version, prediction, proba)} of the committed predictions, and their count."""
    df = em.read_predictions(topic, bootstrap_servers=servers, kafka=kafka)
    return {row.id: (row.model_version, row.prediction, row.proba) for row in df.itertuples()}, len(df)


def probe(model, n=200):
    """A model's probabilities on a fixed set of events, to compare two models."""
    return [model.predict_proba_one(e.features) for e in em.synthetic("sea", n, seed=99)]

"""Integration: every named learner learns a stream of numbers, strings, booleans and nulls live, and
publishes what the same learner predicts offline, one prediction per event."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

import eventml as em
from eventml.learners import learner_names, make_learner
from eventml.live import LiveUpdater, read_predictions

from test_mixed_features import mixed_stream

pytestmark = pytest.mark.integration
N = 300


def offline(name: str, events: list[em.Event]) -> dict[str, tuple]:
    """{id: (model_version, prediction)}: predict, then learn, event by event, with a fresh learner."""
    learner = make_learner(name)
    out = {}
    for version, event in enumerate(events):
        if learner.task == "classification":
            proba = learner.predict_proba_one(event.features)
            prediction = max(proba, key=proba.get) if proba else None
        else:
            prediction = learner.predict_one(event.features)
        out[event.id] = (version, prediction)
        learner.learn_one(event.features, event.label)
    return out


@pytest.fixture(scope="module")
def mixed_topics(kafka_bootstrap):
    topics = {}
    for task in ("classification", "regression"):
        topic = f"live-mixed-{task}-{uuid.uuid4().hex[:8]}"
        events = mixed_stream(task, N, seed=11)
        em.produce(events, topic, bootstrap_servers=kafka_bootstrap, progress=False)
        topics[task] = (topic, events)
    return topics


@pytest.mark.parametrize("name", learner_names())
def test_every_named_learner_predicts_a_mixed_stream_live_as_it_does_offline(kafka_bootstrap, mixed_topics,
                                                                              name, tmp_path):
    topic, events = mixed_topics[make_learner(name).task]
    stats = LiveUpdater(topic, f"{topic}.{name}", model=name, state_dir=tmp_path, bootstrap_servers=kafka_bootstrap,
                        max_events=N, records_per_transaction=100).run()
    assert stats.events == stats.labelled == N and stats.dead_letters == stats.model_errors == 0
    df = read_predictions(f"{topic}.{name}", bootstrap_servers=kafka_bootstrap)
    got = {row.id: (row.model_version, None if pd.isna(row.prediction) else row.prediction) for row in df.itertuples()}
    assert len(df) == N and got == offline(name, events)

"""What the live updater's integration tests share: events written by another producer, the predictions
an uninterrupted offline run makes, the committed predictions read back, a probe of a model, and
``eventml live`` in a process of its own."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys

from kafka import KafkaProducer

import eventml as em
from eventml.learners import make_learner
from eventml.live import KILL_ENV

WINDOW_TEXTS = ["user:amount:count,mean,max:15min", "user:amount:mean,std:last20", "user:merchant:nunique:15min",
                "user:-:since_last:last1"]
"""The windows of the live tests (``eventml live --window``) over :func:`eventml.sources.transactions`."""


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
        producer.send(topic, value=em.events.encode_event(event), key=event.id.encode())
    producer.flush()
    producer.close()


def published(topic, servers=None, *, kafka=None):
    """{id: (model_version, prediction, proba)} of the committed predictions, and their count.

    Read to the end the topic has when the read starts, waiting up to 10 s for a record on the way, not
    read_predictions' 2 s: a reader that gives up early looks like lost predictions (once, test_scale_out
    came 1,627 of 12,000 short with every updater ending cleanly, not reproduced in two runs since; a
    longer wait rules the reader out). It costs nothing when the read reaches the end."""
    df = em.read_predictions(topic, bootstrap_servers=servers, kafka=kafka, idle_timeout_s=10.0)
    return {row.id: (row.model_version, row.prediction, row.proba) for row in df.itertuples()}, len(df)


def probe(model, n=200):
    """A model's probabilities on a fixed set of events, to compare two models."""
    return [model.predict_proba_one(e.features) for e in em.synthetic("sea", n, seed=99)]


def live_process(servers, events_topic, predictions_topic, *options, kill_at=None, env=None):
    """``eventml live --quiet`` in a new process, its output captured: ``options`` after the topics; the
    environment ``env`` (default: this process's) with ``servers`` as ``EVENTML_BOOTSTRAP_SERVERS`` unless
    None, and the kill hook set only with ``kill_at``."""
    env = dict(os.environ if env is None else env)
    if servers is not None:
        env["EVENTML_BOOTSTRAP_SERVERS"] = servers
    env.pop(KILL_ENV, None)
    if kill_at:
        env[KILL_ENV] = kill_at
    cmd = [sys.executable, "-m", "eventml.cli", "live", "--events", events_topic, "--predictions", predictions_topic,
           *options, "--quiet"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def killed_runs(servers, events_topic, predictions_topic, options, kill_ats, timeout=120):
    """Run ``eventml live`` with ``options`` once per kill point of ``kill_ats`` (e.g. ``"before_commit:3"``),
    each run killed with SIGKILL by the hook there."""
    for kill_at in kill_ats:
        proc = live_process(servers, events_topic, predictions_topic, *options, kill_at=kill_at)
        proc.communicate(timeout=timeout)
        assert proc.returncode == -signal.SIGKILL, f"the run was not killed at {kill_at}"


def resumed_run(servers, events_topic, predictions_topic, options, n, restarts, timeout=120):
    """Run ``eventml live`` with ``options`` to the end; assert it predicted ``n`` events after ``restarts``
    restarts; its output."""
    proc = live_process(servers, events_topic, predictions_topic, *options)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    assert f"live: {n} events predicted" in out and f"{restarts} restarts" in out, out
    return out


def resumable(state_dir, n):
    """The options of a run over a state directory: up to ``n`` events, transactions of 100 records."""
    return "--state-dir", str(state_dir), "--max-events", str(n), "--records-per-transaction", "100"


def windowed_answer(state, features, ts):
    """What a committed :class:`~eventml.live.state.UpdaterState` with windows predicts for an event of
    ``features`` at ``ts`` read next: its windowed features from a copy of the committed window state fed
    the event (``features_one``), then the committed scorer; (label, proba with JSON's keys)."""
    added = copy.deepcopy(state.windows).features_one(features, ts)
    label, proba = state.scorer.predict({**features, **added})
    return label, {str(k): v for k, v in proba.items()}

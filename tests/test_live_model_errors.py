"""Integration: a model that fails on some events never ends a live run. Each such event goes to the DLQ
(reason model_error, the learner and its exception named), gets no prediction, is counted, and the run goes
on; after kill -9 and restarts the same events are dead-lettered once and the model ends the same."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import eventml as em
from eventml.consumer import read_dead_letters
from eventml.live import KILL_ENV, LiveUpdater, load_model, read_predictions

pytestmark = pytest.mark.integration

FRAGILE = '''
from river import linear_model


class Fragile(linear_model.LogisticRegression):
    """A user's own river model that fails on some events: in predict when "boom" is a feature, in learn
    when "bust" is."""

    def predict_proba_one(self, x):
        if "boom" in x:
            raise ValueError("cannot predict a boom")
        return super().predict_proba_one(x)

    def learn_one(self, x, y):
        if "bust" in x:
            raise ValueError("cannot learn a bust")
        super().learn_one(x, y)
'''
exec(FRAGILE)  # defines Fragile here too, as a notebook would

RUN = '''
import sys
import eventml as em
from fragile import Fragile

topic, predictions, state = sys.argv[1:4]
stats = em.LiveUpdater(topic, predictions, model=Fragile(), state_dir=state, idle_timeout_s=3,
                       records_per_transaction=50).run()
print(f"events={stats.events} model_errors={stats.model_errors} restarts={stats.restarts}")
'''


def fragile_events(n: int, seed: int) -> list[em.Event]:
    """SEA events; every 37th has a feature that fails predict, every 53rd one that fails learn."""
    events = []
    for i, event in enumerate(em.synthetic("sea", n, seed=seed)):
        features = dict(event.features)
        if i % 37 == 20:
            features["boom"] = 1.0
        elif i % 53 == 30:
            features["bust"] = 1.0
        events.append(em.Event(event.id, features, event.label, event.ts))
    return events


def failing(events: list[em.Event]) -> dict[str, str]:
    return {e.id: "predict" if "boom" in e.features else "learn" for e in events
            if {"boom", "bust"} & set(e.features)}


def offline_predictions(events: list[em.Event]) -> dict[str, tuple]:
    """What an updater must publish: predict then learn, skipping the events the model fails on."""
    model, out, version = Fragile(), {}, 0
    for event in events:
        if event.id in failing([event]):
            continue
        proba = model.predict_proba_one(event.features)
        out[event.id] = (version, max(proba, key=proba.get) if proba else None,
                         {str(k): v for k, v in proba.items()} or None)
        model.learn_one(event.features, event.label)
        version += 1
    return out


def published(topic: str, servers: str) -> tuple[dict[str, tuple], collections.Counter]:
    df = read_predictions(topic, bootstrap_servers=servers)
    return ({row.id: (row.model_version, row.prediction, row.proba) for row in df.itertuples()},
            collections.Counter(df["id"]))


def check_model_errors(topic: str, servers: str, events: list[em.Event]) -> None:
    expected = failing(events)
    dead = read_dead_letters(topic, bootstrap_servers=servers)
    ids = [em.events.decode_event(value).id for value in dead["value"]]
    assert sorted(ids) == sorted(expected)  # each failing event once
    assert (dead["reason"] == "model_error").all()
    for event_id, message in zip(ids, dead["message"]):
        stage = "predict" if expected[event_id] == "predict" else "learn from"
        what = "cannot predict a boom" if expected[event_id] == "predict" else "cannot learn a bust"
        assert message == f"learner 'Fragile' failed to {stage} event {event_id!r}: ValueError: {what}"


def test_a_model_that_fails_on_some_events_dead_letters_them_and_goes_on(kafka_bootstrap, topic, tmp_path):
    events = fragile_events(600, seed=3)
    em.produce(events, topic, bootstrap_servers=kafka_bootstrap, progress=False)
    stats = LiveUpdater(topic, f"{topic}.pred", model=Fragile(), state_dir=tmp_path,
                        bootstrap_servers=kafka_bootstrap, idle_timeout_s=3, records_per_transaction=100).run()
    n_failing = len(failing(events))
    assert set(failing(events).values()) == {"predict", "learn"}
    assert stats.model_errors == stats.dead_letters == n_failing
    assert stats.events == len(events) - n_failing == stats.labelled
    got, counts = published(f"{topic}.pred", kafka_bootstrap)
    assert set(counts.values()) == {1} and got == offline_predictions(events)
    check_model_errors(topic, kafka_bootstrap, events)


def test_model_errors_stay_exactly_once_through_kill_9_and_the_model_ends_the_same(kafka_bootstrap, topic,
                                                                                   tmp_path, monkeypatch):
    events = fragile_events(1500, seed=5)
    em.produce(events, topic, bootstrap_servers=kafka_bootstrap, progress=False)
    (tmp_path / "fragile.py").write_text(FRAGILE)  # the snapshots refer to fragile.Fragile
    script = tmp_path / "fragile_live.py"
    script.write_text(textwrap.dedent(RUN))
    env = {**os.environ, "EVENTML_BOOTSTRAP_SERVERS": kafka_bootstrap}

    def run(kill_at: str | None) -> subprocess.CompletedProcess:
        run_env = {**env, KILL_ENV: kill_at} if kill_at else env
        return subprocess.run([sys.executable, str(script), topic, f"{topic}.pred", str(tmp_path / "state")],
                              env=run_env, capture_output=True, text=True, timeout=120)

    for kill_at in ("before_commit:4", "after_commit:3"):
        assert run(kill_at).returncode == -signal.SIGKILL
    done = run(None)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "restarts=2" in done.stdout

    got, counts = published(f"{topic}.pred", kafka_bootstrap)
    assert set(counts.values()) == {1} and got == offline_predictions(events)
    check_model_errors(topic, kafka_bootstrap, events)
    clean = Fragile()
    for event in events:
        if event.id not in failing([event]):
            clean.learn_one(event.features, event.label)
    probe = [e.features for e in em.synthetic("sea", 50, seed=99)]
    monkeypatch.syspath_prepend(str(tmp_path))
    final = load_model(tmp_path / "state").model
    assert [final.predict_proba_one(x) for x in probe] == [clean.predict_proba_one(x) for x in probe]

"""Several models in one live updater: each model's predictions equal that model alone offline, a champion
that answers once per event, promotions live == offline == after kill -9s, and a model that raises on some
events dead-lettered alone (real broker)."""

from __future__ import annotations

import time

import httpx
import pandas as pd
import pytest
from kafka import KafkaProducer
from river import naive_bayes

import eventml as em
from eventml.consumer import read_dead_letters, read_promotions
from eventml.errors import ConfigError
from eventml.live import LiveUpdater
from eventml.live.snapshots import load_snapshot
from eventml.promotion import Promotion, promotion_table

from live_helpers import killed_runs, offline_predictions, produce_events, published, resumable, resumed_run
from test_group import events_by_partition, per_partition_offline

MODELS = ["river_logreg", "river_gnb", "river_hoeffding"]
RULE = Promotion(metric="accuracy", window=200, margin=0.02, min_labels=100)


def by_model(df):
    """{model: {id: (version, prediction, proba)}} of a predictions DataFrame, as ``offline_predictions`` gives
    them: no prediction yet (a column of numbers reads it as NaN) is None, and so are no probabilities ({})."""
    out: dict = {}
    for row in df.itertuples():
        prediction = None if row.prediction is None or row.prediction != row.prediction else row.prediction
        out.setdefault(row.model, {})[row.id] = (row.model_version, prediction, row.proba or None)
    return out


def test_models_must_be_unique_and_promotion_needs_two():
    with pytest.raises(ConfigError, match="models must have unique names; repeated: river_gnb"):
        LiveUpdater("e", "p", models=["river_gnb", "river_gnb"], state_dir="s")
    with pytest.raises(ConfigError, match="promotion needs two models or more"):
        LiveUpdater("e", "p", models=["river_gnb"], promotion=RULE, state_dir="s")
    with pytest.raises(ConfigError, match="model= .* or models= .*not both"):
        LiveUpdater("e", "p", model="river_gnb", models=["river_logreg"], state_dir="s")
    with pytest.raises(ConfigError, match="models must all be classifiers or all regressors, got river_gnb="):
        LiveUpdater("e", "p", models=["river_gnb", "river_linreg"], state_dir="s")
    with pytest.raises(ConfigError, match="promotion must be an eventml.promotion.Promotion"):
        LiveUpdater("e", "p", models=MODELS, promotion="accuracy", state_dir="s")


def test_each_of_three_models_predicts_exactly_as_it_does_alone_offline(kafka_bootstrap, topic, tmp_path):
    events = list(em.synthetic("sea", 1500, seed=5))
    produce_events(events, topic, kafka_bootstrap)
    predictions = f"{topic}.pred"
    updater = LiveUpdater(topic, predictions, models=MODELS, state_dir=tmp_path / "state",
                          bootstrap_servers=kafka_bootstrap, max_events=len(events), records_per_transaction=400,
                          summary_every=500)
    stats = updater.run()

    champion, count = published(predictions, kafka_bootstrap)  # the champion's, as one model's updater publishes
    assert count == len(events) and champion == offline_predictions(events, MODELS[0])
    both = em.read_predictions(predictions, challengers=True, bootstrap_servers=kafka_bootstrap, idle_timeout_s=10)
    assert len(both) == 3 * len(events) and both["champion"].sum() == len(events)
    got = by_model(both)
    for name in MODELS:  # bit for bit: versions, labels and probabilities
        assert got[name] == offline_predictions(events, name), name
    offline = em.prequential(events, MODELS, metrics=("accuracy", "log_loss"), every=500, rolling_window=500)
    summary = updater.summary()
    champion_rows = offline[offline["learner"] == MODELS[0]]
    assert summary["accuracy"].tolist() == pytest.approx(champion_rows["accuracy"].tolist(), abs=0)
    assert set(summary["champion"]) == {MODELS[0]}
    for name in MODELS:  # each model's metrics in the summary, as offline
        rows = offline[offline["learner"] == name]
        for column in ("accuracy", "rolling_log_loss"):
            assert summary[f"{column}:{name}"].tolist() == rows[column].tolist(), (name, column)
    assert stats.model_version == len(events) and updater.champion == MODELS[0] and updater.promotions() == []
    state = updater._tasks[0].state
    for model in state.models:  # each model's own metrics, equal to its offline ones
        final = offline[offline["learner"] == model.name].iloc[-1]
        assert model.scorer.metrics()["accuracy"] == final["accuracy"]
        assert model.counts["events"] == model.counts["learned"] == len(events)


def test_promotions_live_equal_offline_and_survive_two_kill_9s(kafka_bootstrap, topic, tmp_path):
    n = 3000
    events = list(em.synthetic("sine", n, seed=1, drift_at=1500))
    produce_events(events, topic, kafka_bootstrap)
    offline = em.prequential(events, MODELS, metrics=("accuracy", "log_loss"), every=1000, promotion=RULE)
    expected = promotion_table(offline)
    assert expected["events"].tolist() == [1631, 1894]  # the stream makes the rule work, after the drift

    clean = LiveUpdater(topic, f"{topic}.clean", models=MODELS, promotion=RULE, state_dir=tmp_path / "clean",
                        bootstrap_servers=kafka_bootstrap, max_events=n, records_per_transaction=100)
    clean.run()
    decided = list(expected.columns)
    assert promotion_table(clean.promotions())[decided].equals(expected)

    state, predictions = tmp_path / "crash", f"{topic}.crash"
    options = [*resumable(state, n), *[o for m in MODELS for o in ("--model", m)], "--promote", RULE.metric,
               "--promote-window", str(RULE.window), "--promote-margin", str(RULE.margin),
               "--promote-min-labels", str(RULE.min_labels)]
    # dies between writing its 3rd snapshot and committing it (about event 300), then right after its 15th commit
    # (about event 1700: between the two promotions this stream makes, at events 1631 and 1894)
    killed_runs(kafka_bootstrap, topic, predictions, options, ("before_commit:3", "after_commit:15"))
    resumed_run(kafka_bootstrap, topic, predictions, options, n, restarts=2)

    for where in (f"{topic}.clean", predictions):
        live = read_promotions(where, bootstrap_servers=kafka_bootstrap, idle_timeout_s=10)
        assert live[decided].equals(expected), where
        assert (live["offset"] + 1).tolist() == live["events"].tolist()  # one partition: the deciding event's
        # exactly one champion prediction per event, from the model that was the champion at that event
        champion, count = published(where, kafka_bootstrap)
        assert count == n and set(champion) == {e.id for e in events}
        alone = {name: offline_predictions(events, name) for name in MODELS}
        answering, changes = MODELS[0], list(expected.itertuples())
        for i, event in enumerate(events, start=1):
            while changes and changes[0].events < i:
                answering = changes.pop(0).model
            assert champion[event.id] == alone[answering][event.id], (where, i)
        challengers = em.read_predictions(where, challengers=True, bootstrap_servers=kafka_bootstrap,
                                          idle_timeout_s=10)
        assert len(challengers) == 3 * n
        for name, got in by_model(challengers).items():
            assert got == alone[name], (where, name)


def test_promotions_decided_by_late_labels_equal_offline(kafka_bootstrap, topic, tmp_path):
    n, delay = 2000, 25
    base = int(time.time() * 1000) - 3_600_000
    stream = list(em.synthetic("sine", n, seed=1, drift_at=1000))
    # events without labels, at 10 ms apart; each label 25 events later (5 ms off, so no tie in the merge)
    events = [em.Event(e.id, e.features, None, (base + 10 * i) / 1000) for i, e in enumerate(stream)]
    labels = [em.Label(e.id, e.label, (base + 10 * (i + delay) + 5) / 1000) for i, e in enumerate(stream)]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for event in events:
        producer.send(topic, em.events.encode_event(event), event.id.encode(), timestamp_ms=round(event.ts * 1000))
    for label in labels:
        producer.send(f"{topic}.labels", em.events.encode_label(label), timestamp_ms=round(label.ts * 1000))
    producer.flush()
    producer.close()

    updater = LiveUpdater(topic, f"{topic}.pred", labels_topic=f"{topic}.labels", models=MODELS, promotion=RULE,
                          state_dir=tmp_path, bootstrap_servers=kafka_bootstrap, idle_timeout_s=2,
                          records_per_transaction=150)
    stats = updater.run()
    offline = em.prequential(events, MODELS, metrics=("accuracy", "log_loss"), labels=labels, promotion=RULE)
    expected = promotion_table(offline)
    assert len(expected) >= 1 and stats.labelled == n
    live = read_promotions(f"{topic}.pred", bootstrap_servers=kafka_bootstrap, idle_timeout_s=10)
    assert live[list(expected.columns)].to_dict("records") == expected.to_dict("records")
    assert (live["topic"] == f"{topic}.labels").all()  # decided by a label record, at the events seen by then


def test_the_live_figure_draws_each_model_and_marks_the_promotions():
    import matplotlib

    matplotlib.use("Agg")
    from eventml.plots import plot_live

    summary = pd.DataFrame({"events": [100, 200, 300], "accuracy": [0.5, 0.6, 0.7], "restarts": [0, 0, 0],
                            "champion": ["a", "b", "b"], "rolling_accuracy:a": [0.5, 0.6, 0.4],
                            "rolling_accuracy:b": [0.4, 0.7, 0.9]})
    ax = plot_live(summary, promotions=[{"events": 150, "model": "b"}])
    labels = [line.get_label() for line in ax.lines]
    assert labels[:3] == ["a: rolling accuracy", "b: rolling accuracy", "champion's accuracy"]
    assert list(ax.lines[1].get_ydata()) == [0.4, 0.7, 0.9]
    assert [list(line.get_xdata()) for line in ax.lines[3:]] == [[150, 150]]
    assert [text.get_text() for text in ax.texts] == ["b promoted"]


class Picky:
    """A Gaussian naive Bayes that raises on every event with a feature ``boom``."""

    name, task, label_from_proba = "picky", "classification", True

    def __init__(self):
        self.model = naive_bayes.GaussianNB()

    def predict_proba_one(self, x):
        if "boom" in x:
            raise ValueError("boom")
        return self.model.predict_proba_one(x)

    def predict_one(self, x):
        proba = self.predict_proba_one(x)
        return max(proba, key=proba.get) if proba else None

    def learn_one(self, x, y):
        self.model.learn_one(x, y)

    def clone(self):
        return Picky()


def test_a_model_that_raises_on_some_events_is_dead_lettered_alone_and_the_others_go_on(kafka_bootstrap, topic,
                                                                                          tmp_path):
    events = list(em.synthetic("sea", 600, seed=7))
    for i in range(10, 600, 50):  # 12 events the picky model raises on
        events[i] = em.Event(events[i].id, {**events[i].features, "boom": 1.0}, events[i].label, events[i].ts)
    produce_events(events, topic, kafka_bootstrap)
    predictions = f"{topic}.pred"
    updater = LiveUpdater(topic, predictions, models={"river_logreg": "river_logreg", "picky": Picky(),
                                                      "river_gnb": "river_gnb"},
                          state_dir=tmp_path / "state", bootstrap_servers=kafka_bootstrap, idle_timeout_s=3,
                          records_per_transaction=100)
    stats = updater.run()

    got = by_model(em.read_predictions(predictions, challengers=True, bootstrap_servers=kafka_bootstrap,
                                       idle_timeout_s=10))
    for name in ("river_logreg", "river_gnb"):  # unchanged by the picky one's failures
        assert got[name] == offline_predictions(events, name)
    booms = {e.id for e in events if "boom" in e.features}
    assert set(got["picky"]) == {e.id for e in events} - booms
    dead = read_dead_letters(topic, bootstrap_servers=kafka_bootstrap, idle_timeout_s=10)
    assert len(dead) == len(booms) and set(dead["key"].str.decode("utf-8")) == booms
    assert set(dead["reason"]) == {"model_error"} and set(dead["model"]) == {"picky"}
    assert stats.events == len(events) and stats.model_errors == stats.dead_letters == len(booms)
    picky = updater._tasks[0].state.models[1]
    assert picky.counts["model_errors"] == len(booms) and picky.counts["events"] == len(events) - len(booms)


def test_the_service_answers_from_the_champion_and_any_model_on_request(kafka_bootstrap, topic, tmp_path):
    events = list(em.synthetic("sine", 1700, seed=1, drift_at=1500))  # the stream of the promotions above
    produce_events(events, topic, kafka_bootstrap)
    updater = LiveUpdater(topic, f"{topic}.pred", models=MODELS, promotion=RULE, state_dir=tmp_path,
                          bootstrap_servers=kafka_bootstrap, max_events=len(events), records_per_transaction=500)
    updater.run()
    assert updater.champion == "river_gnb"  # promoted at event 1631
    probes = [{"id": f"probe-{e.id}", "features": e.features} for e in em.synthetic("sine", 20, seed=99)]
    with em.serve(tmp_path, bootstrap_servers=kafka_bootstrap) as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        served = server.wait_for_model(30)
        state = load_snapshot(tmp_path / served.snapshot).state
        described = http.get("/model").json()
        assert described["champion"] == described["model"] == "river_gnb"
        assert described["models"] == ["river_gnb", "river_logreg", "river_hoeffding"]
        for name in (None, *MODELS):
            answers = http.post("/predict", json=probes, params={} if name is None else {"model": name}).json()
            model = state.models[MODELS.index(name or "river_gnb")]
            assert {a["model"] for a in answers} == {model.name}
            assert {a["model_version"] for a in answers} == {model.counts["learned"]}
            expected = [model.scorer.predict(p["features"]) for p in probes]
            assert [(a["prediction"], a["proba"]) for a in answers] == [
                (label, {str(k): v for k, v in proba.items()}) for label, proba in expected]
        unknown = http.post("/predict", json=probes[0], params={"model": "nope"})
        assert unknown.status_code == 404 and "unknown model 'nope'" in unknown.json()["detail"]


def test_a_group_runs_the_models_per_partition_each_partition_its_own_champion(kafka_bootstrap, topic):
    n, group, models = 3000, f"{topic}-g", MODELS[:2]
    em.create_topic(topic, 2, bootstrap_servers=kafka_bootstrap)
    produce_events(list(em.synthetic("sine", n, seed=1, drift_at=1500)), topic, kafka_bootstrap)
    by_partition = events_by_partition(topic, kafka_bootstrap)
    settings = dict(models=models, promotion=RULE, group=group, state_key="k" * 32, bootstrap_servers=kafka_bootstrap,
                    idle_timeout_s=4, records_per_transaction=200, session_timeout_s=6)
    first = LiveUpdater(topic, f"{topic}.pred", name="first", **settings).start()
    second = LiveUpdater(topic, f"{topic}.pred", name="second", **settings).start()
    first.join(120), second.join(120)

    got = by_model(em.read_predictions(f"{topic}.pred", challengers=True, bootstrap_servers=kafka_bootstrap,
                                       idle_timeout_s=10))
    promotions = read_promotions(f"{topic}.pred", bootstrap_servers=kafka_bootstrap, idle_timeout_s=10)
    for name in models:
        assert got[name] == per_partition_offline(by_partition, name)[0], name
    for partition, events in by_partition.items():
        offline = promotion_table(em.prequential(events, models, metrics=("accuracy", "log_loss"), promotion=RULE))
        live = promotions[promotions["partition"] == partition].reset_index(drop=True)
        assert live[list(offline.columns)].to_dict("records") == offline.to_dict("records"), partition
    assert len(promotions) >= 1
    # each member names the champion of each partition it holds: the last model its task promoted there
    for member in (first, second):
        promoted = {promotion["partition"]: promotion["model"] for promotion in member.promotions()}  # in order
        assert member.champions() == {p: promoted.get(p, models[0]) for p in member.models()}

"""Alerts as data: each rule fires exactly once per crossing, live == offline == after two kill -9s, none on a
stream that never crosses, the metric equals the records, and a bad rule is a ConfigError naming it (real broker
for the live parts)."""

from __future__ import annotations

import collections
import pickle
import urllib.request

import pandas as pd
import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

import eventml as em
from eventml.alerts import Alert, AlertWatch, alert_table, parse_alert, read_alerts
from eventml.cli import main
from eventml.errors import ConfigError
from eventml.learners import make_learner
from eventml.live import LiveUpdater

from live_helpers import killed_runs, produce_events, resumable, resumed_run
from test_group import events_by_partition

ACCURACY = Alert.metric_below("accuracy", 0.8, labels=200)
RULES = [ACCURACY, Alert.drift("adwin")]
N, DRIFT_AT = 3000, 1500


def drifting():
    """Sine with its labels flipped at event 1,500: river_gnb's accuracy falls from ~0.9 to ~0.1 there."""
    return list(em.synthetic("sine", N, seed=1, drift_at=DRIFT_AT))


def offline_alerts(events, model="river_gnb", rules=RULES):
    return alert_table(em.prequential(events, model, metrics=("accuracy", "log_loss"), alerts=rules))


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


# ----------------------------------------------------------------------------- no broker


def test_a_bad_rule_is_a_config_error_naming_it(tmp_path):
    for spec, words in [("accuracy=0.8", "--alert 'accuracy=0.8' is not an alert rule; accepted forms: METRIC<"),
                        ("accuracy<high:200", "--alert 'accuracy<high:200': the threshold 'high' is not a number"),
                        ("precision<0.8:200", "unknown alert metric 'precision'"),
                        ("accuracy<0.8:0", "labels must be a positive integer"),
                        ("drift:cusum", "unknown alert drift detector 'cusum'; known drift detectors: adwin"),
                        ("lag>-1", "the bound of a lag_above alert must be >= 0"),
                        ("dead_letters>5", "is not an alert rule")]:
        with pytest.raises(ConfigError) as error:
            parse_alert(spec)
        assert words in str(error.value), spec
    with pytest.raises(ConfigError, match="alert drift:adwin@nope: no model 'nope'; models: river_gnb"):
        LiveUpdater("sea", "sea-p", model="river_gnb", alerts=[Alert.drift(model="nope")], state_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match=r"alert log_loss>0.5:10: metric\(s\) log_loss do not apply to regression"):
        LiveUpdater("sea", "sea-p", model="river_linreg", alerts=[parse_alert("log_loss>0.5:10")],
                    state_dir=tmp_path / "b")
    with pytest.raises(ConfigError, match="alert lag>100 watches a live updater"):
        em.prequential(em.synthetic("sea", 10), "river_gnb", alerts=[Alert.lag_above(100)])
    with pytest.raises(ConfigError, match="alerts must be different rules"):
        em.prequential(em.synthetic("sea", 10), "river_gnb", alerts=[ACCURACY, parse_alert("accuracy<0.8:200")])
    for rule in [*RULES, Alert.metric_above("log_loss", 0.7, labels=50, window=100, model="m"), Alert.lag_above(10),
                 Alert.dead_letters_above(5, per=1000)]:
        assert parse_alert(rule.name) == rule  # one form, read back


def test_the_accuracy_rule_fires_once_where_the_rolling_accuracy_stayed_below_for_200_labels():
    events = drifting()
    alerts = offline_alerts(events, rules=[ACCURACY])
    # the same figure, by hand: river_gnb's correct answers, its accuracy over the last 200, 200 labels in a row
    learner, correct, below, fired = make_learner("river_gnb"), [], 0, []
    for n, event in enumerate(events, start=1):
        proba = learner.predict_proba_one(event.features)
        if proba:
            correct.append(max(proba, key=proba.get) == event.label)
        learner.learn_one(event.features, event.label)
        below = below + 1 if len(correct) >= 200 and sum(correct[-200:]) / 200 < 0.8 else 0
        if below == 200:
            fired.append((n, sum(correct[-200:]) / 200))
    assert len(fired) == 1 and fired[0][0] > DRIFT_AT
    assert alerts[["events", "state", "model"]].values.tolist() == [[fired[0][0], "firing", "river_gnb"]]
    assert alerts["value"].tolist() == pytest.approx([fired[0][1]])
    assert alerts["threshold"].tolist() == [0.8]


def test_no_alert_on_a_stream_that_never_crosses():
    alerts = offline_alerts(list(em.synthetic("sea", N, seed=1)), "river_logreg", RULES)
    assert alerts.empty


def test_the_dead_letter_rule_fires_at_the_crossing_and_resolves_when_they_left_the_window():
    watch = AlertWatch([Alert.dead_letters_above(2, per=10)], ["m"])
    got = []
    for events in range(1, 40):
        got += watch.dead_letters(events, dead_letter=events in (3, 5, 8, 30, 31, 32, 33))
    # more than 2 in the last 10 events: at 8 (3, 5, 8); 3 leaves at 13 (two left); again at 32 (30, 31, 32)
    assert [(a["events"], a["state"], a["value"]) for a in got] == [(8, "firing", 3), (13, "resolved", 2),
                                                                    (32, "firing", 3)]
    assert watch.counts() == {"dead_letters>2/10": 2} and watch.holding() == {"dead_letters>2/10": True}


def test_a_resumed_watch_keeps_the_state_of_the_rules_it_had():
    watch = AlertWatch([Alert.metric_below("accuracy", 0.5, labels=2)], ["m"])
    for y in (1, 1, 1):
        watch.scored(y, [(0, None)], champion=0, events=1)
    committed = pickle.loads(pickle.dumps(watch))
    resumed = AlertWatch.resume(committed, [Alert.metric_below("accuracy", 0.5, labels=2), Alert.lag_above(5)],
                                ["m"], True)
    assert resumed.holding() == {"accuracy<0.5:2": True, "lag>5": False} and resumed.labels == 3
    assert resumed.scored(1, [(0, None)], champion=0, events=4) == []  # already firing: no second alert
    assert AlertWatch.resume(committed, [], ["m"], True) is None


def test_the_live_figure_marks_the_alerts():
    import matplotlib

    matplotlib.use("Agg")
    from eventml.plots import plot_live

    summary = pd.DataFrame({"events": [1000, 2000, 3000], "accuracy": [0.9, 0.7, 0.5],
                            "rolling_accuracy": [0.9, 0.1, 0.1], "restarts": [0, 0, 0]})
    alerts = offline_alerts(drifting())
    ax = plot_live(summary, alerts=alerts.to_dict("records") + [{"events": 2900, "rule": ACCURACY.name,
                                                                 "state": "resolved"}])
    marks = [(list(line.get_xdata()), line.get_color()) for line in ax.lines[2:]]
    assert marks == [([1537, 1537], "red"), ([1729, 1729], "red"), ([2900, 2900], "grey")]
    assert [text.get_text() for text in ax.texts] == ["drift:adwin", "accuracy<0.8:200", "accuracy<0.8:200 resolved"]


# ----------------------------------------------------------------------------- real broker


def test_alerts_live_equal_offline_and_survive_two_kill_9s(kafka_bootstrap, topic, tmp_path):
    events = drifting()
    produce_events(events, topic, kafka_bootstrap)
    expected = offline_alerts(events)
    # the detector, then the accuracy rule, each once, after the drift
    assert expected[["rule", "state"]].values.tolist() == [["drift:adwin", "firing"], ["accuracy<0.8:200", "firing"]]
    assert (expected["events"] > DRIFT_AT).all()
    decided = list(expected.columns)

    clean = LiveUpdater(topic, f"{topic}.clean", model="river_gnb", alerts=RULES, state_dir=tmp_path / "clean",
                        bootstrap_servers=kafka_bootstrap, max_events=N, records_per_transaction=100, metrics_port=0)
    try:
        stats = clean.run()
        samples = scrape(clean.metrics_url)
    finally:
        clean.close_metrics()
    assert alert_table(clean.alerts())[decided].equals(expected)
    # the metric equals the records: alerts fired per rule, and whether each rule holds now
    fired = collections.Counter(expected["rule"][expected["state"] == "firing"])
    assert {s[1]["rule"]: s[2] for s in samples if s[0] == "eventml_live_alerts_total"} == {
        rule.name: fired[rule.name] for rule in RULES}
    assert {s[1]["rule"]: s[2] for s in samples if s[0] == "eventml_live_alert_firing"} == {
        ACCURACY.name: 1.0, "drift:adwin": 0.0}
    assert stats.alerts == len(expected)

    state, predictions = tmp_path / "crash", f"{topic}.crash"
    options = [*resumable(state, N), "--model", "river_gnb", *[o for rule in RULES for o in ("--alert", rule.name)]]
    # dies between writing its 3rd snapshot and committing it (about event 300), then right after its 14th commit
    # (about event 1,600: after the detector fired, while the accuracy rule counts its 200 labels)
    killed_runs(kafka_bootstrap, topic, predictions, options, ("before_commit:3", "after_commit:14"))
    # what the killed runs committed: the first alerts, not the accuracy rule's (its 200 labels end at event 1,729)
    when = ["events", "rule", "state"]
    committed = read_alerts(predictions, bootstrap_servers=kafka_bootstrap, idle_timeout_s=5)[when].values.tolist()
    assert len(committed) < len(expected) and committed == expected[when].values.tolist()[:len(committed)]
    resumed_run(kafka_bootstrap, topic, predictions, options, N, restarts=2)

    for where in (f"{topic}.clean", predictions):
        live = read_alerts(where, bootstrap_servers=kafka_bootstrap, idle_timeout_s=10)
        assert live[decided].equals(expected), where  # exactly once each: none lost, none doubled
        assert (live["offset"] + 1).tolist() == live["events"].tolist()  # one partition: the deciding event's
        assert (live["topic"] == topic).all()


def test_a_stream_that_never_crosses_writes_no_alert_and_the_metric_says_zero(kafka_bootstrap, topic, tmp_path):
    produce_events(list(em.synthetic("sea", 2000, seed=1)), topic, kafka_bootstrap)
    updater = LiveUpdater(topic, f"{topic}.p", alerts=RULES, state_dir=tmp_path, bootstrap_servers=kafka_bootstrap,
                          max_events=2000, metrics_port=0)
    try:
        stats = updater.run()
        samples = scrape(updater.metrics_url)
    finally:
        updater.close_metrics()
    assert stats.events == 2000 and stats.score > 0.9 and stats.alerts == 0 and updater.alerts() == []
    assert read_alerts(f"{topic}.p", bootstrap_servers=kafka_bootstrap).empty
    assert {s[1]["rule"]: s[2] for s in samples if s[0] == "eventml_live_alerts_total"} == {
        rule.name: 0.0 for rule in RULES}


def test_a_group_of_two_alerts_per_partition_as_offline(kafka_bootstrap, topic):
    em.create_topic(topic, 2, bootstrap_servers=kafka_bootstrap)
    produce_events(drifting(), topic, kafka_bootstrap)
    by_partition = events_by_partition(topic, kafka_bootstrap)
    settings = dict(model="river_gnb", alerts=RULES, group=f"{topic}-g", state_key="k" * 32,
                    bootstrap_servers=kafka_bootstrap, idle_timeout_s=4, records_per_transaction=200,
                    session_timeout_s=6)
    first = LiveUpdater(topic, f"{topic}.pred", name="first", **settings).start()
    second = LiveUpdater(topic, f"{topic}.pred", name="second", **settings).start()
    first.join(120), second.join(120)
    live = read_alerts(f"{topic}.pred", bootstrap_servers=kafka_bootstrap, idle_timeout_s=10)
    for partition, events in by_partition.items():
        expected = offline_alerts(events)
        assert len(expected) >= 1, partition  # each partition has its half of the drift
        got = live[live["partition"] == partition].reset_index(drop=True)
        assert got[list(expected.columns)].equals(expected), partition
    assert len(live) == sum(len(offline_alerts(events)) for events in by_partition.values())


def test_dead_letter_and_lag_rules_live(kafka_bootstrap, topic, tmp_path):
    """Dead letters: at the events they decided on, as the rule computes them from where the bad records are;
    lag: fires while the backlog is read and resolves once it is."""
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    bad = {200, 210, 220, 230, 900}  # records that are not JSON, among 1,000 events
    events = iter(em.synthetic("sea", 1000, seed=2))
    for i in range(1005):
        producer.send(topic, b"not json" if i in bad else em.events.encode_event(next(events)))
    producer.flush()
    producer.close()
    rules = [Alert.dead_letters_above(3, per=100), Alert.lag_above(500)]
    updater = LiveUpdater(topic, f"{topic}.p", alerts=rules, state_dir=tmp_path, bootstrap_servers=kafka_bootstrap,
                          max_events=1000, records_per_transaction=100)
    updater.run()
    live = read_alerts(f"{topic}.p", bootstrap_servers=kafka_bootstrap, idle_timeout_s=10)
    dead = live[live["rule"] == "dead_letters>3/100"]
    # the events clock counts decoded events: a bad record at position i comes after i - (bad ones before) events
    at = [i - sum(b < i for b in bad) for i in sorted(bad)]  # 200, 209, 218, 227, 896
    watch, expected = AlertWatch([rules[0]], ["river_logreg"]), []
    for events in range(1001):
        expected += watch.dead_letters(events)
        for _ in range(at.count(events)):
            expected += watch.dead_letters(events, dead_letter=True)
    assert [(a["events"], a["state"]) for a in expected] == [(227, "firing"), (300, "resolved")]
    assert dead[["events", "state", "value"]].values.tolist() == [[227, "firing", 4], [300, "resolved", 3]]
    assert dead["offset"].iloc[0] == 230  # the record that decided: the 4th dead letter
    lag = live[live["rule"] == "lag>500"]
    assert lag["state"].tolist()[:2] == ["firing", "resolved"] and lag["value"].iloc[0] > 500
    assert len(lag) % 2 == 0 and lag["value"].iloc[-1] <= 500  # it ends caught up: resolved
    assert updater.stats.dead_letters == len(bad)


def test_a_bad_alert_on_the_command_line_names_the_option(kafka_bootstrap, topic, tmp_path, capsys):
    code = main(["live", "--events", topic, "--predictions", f"{topic}.p", "--state-dir", str(tmp_path),
                 "--alert", "accuracy=0.8", "--quiet"])
    assert code == 2
    assert "--alert 'accuracy=0.8' is not an alert rule; accepted forms:" in capsys.readouterr().err

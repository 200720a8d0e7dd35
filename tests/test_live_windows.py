"""Windowed features live: computed once per event before the model predicts, committed with the state,
the same as offline per event, through kill -9 (real broker)."""

from __future__ import annotations

import collections
import os
import pickle
import signal
import time

import pytest
from kafka import KafkaProducer

import eventml as em
from eventml.errors import ConfigError
from eventml.learners import make_learner
from eventml.live import LiveUpdater
from eventml.live.group import read_assignments
from eventml.live.processor import RecordProcessor
from eventml.live.snapshots import list_snapshots, load_snapshot
from eventml.live.state import UpdaterState
from eventml.sources import transactions
from eventml.windows import Window, add_windows, parse_window

from live_helpers import WINDOW_TEXTS, killed_runs, live_process, offline_predictions, published, resumable, resumed_run

WINDOWS = [parse_window(text) for text in WINDOW_TEXTS]
KEY = "k" * 32  # the group's state key


def produce_keyed(events, topic, servers, partitions):
    """Write events keyed by user, with record times in the events' order (what the live merge follows)."""
    em.create_topic(topic, partitions=partitions, bootstrap_servers=servers)
    producer = KafkaProducer(bootstrap_servers=servers, linger_ms=20)
    base = int(time.time() * 1000) - 60_000
    for i, event in enumerate(events):
        producer.send(topic, value=em.events.encode_event(event), key=str(event.features["user"]).encode(),
                      timestamp_ms=base + i)
    producer.flush()
    producer.close()


# ----------------------------------------------------------------------------- no broker


def test_the_processor_adds_the_windowed_features_before_the_model_predicts():
    from types import SimpleNamespace

    events = list(transactions(50, seed=2))
    state = UpdaterState.fresh(make_learner("river_logreg"), ["accuracy"], 100, windows=WINDOWS)
    asked, learned = [], []
    scorer = state.scorer
    predict, learn = scorer.predict, scorer.learner.learn_one
    scorer.predict = lambda x: asked.append(dict(x)) or predict(x)
    scorer.learner.learn_one = lambda x, y: learned.append(dict(x)) or learn(x, y)
    processor = RecordProcessor(state, "predictions", lambda *args, **kwargs: True)
    records = [SimpleNamespace(value=lambda e=e: em.events.encode_event(e), key=lambda: None, topic=lambda: "events",
                               partition=lambda: 0, offset=lambda i=i: i, timestamp=lambda: (1, 1_000))
               for i, e in enumerate(events)]
    processor.events(records[:20])
    processor.events(records[20:])
    assert asked == learned == [e.features for e in add_windows(events, WINDOWS)]
    assert state.windows.state_size()["window_keys"] > 0
    assert pickle.loads(pickle.dumps(state.windows)).state_size() == state.windows.state_size()


def test_the_windowed_features_are_computed_once_per_event_and_every_model_sees_them():
    from types import SimpleNamespace

    events = list(transactions(60, seed=3))
    state = UpdaterState.fresh([make_learner("river_logreg"), make_learner("river_gnb")], ["accuracy"], 100,
                               windows=WINDOWS)
    computed, asked = [], {model.name: [] for model in state.models}
    features_one = state.windows.features_one
    state.windows.features_one = lambda *args: computed.append(1) or features_one(*args)
    for model in state.models:
        scorer, name = model.scorer, model.name
        scorer.learner.learn_one = (lambda learn, seen: lambda x, y: seen.append(dict(x)) or learn(x, y))(
            scorer.learner.learn_one, asked[name])
    processor = RecordProcessor(state, "predictions", lambda *args, **kwargs: True)
    processor.events([SimpleNamespace(value=lambda e=e: em.events.encode_event(e), key=lambda: None,
                                      topic=lambda: "events", partition=lambda: 0, offset=lambda i=i: i,
                                      timestamp=lambda: (1, 1_000)) for i, e in enumerate(events)])
    expected = [e.features for e in add_windows(events, WINDOWS)]
    assert len(computed) == len(events)  # once per event, not once per model
    assert asked["river_logreg"] == asked["river_gnb"] == expected


def test_a_target_window_is_refused_with_a_labels_topic(tmp_path):
    with pytest.raises(ConfigError, match="a target window .* not with labels_topic"):
        LiveUpdater("ev", "pred", labels_topic="labels", state_dir=tmp_path,
                    windows=[Window("user", None, "mean", last=5, target=True)])


# ----------------------------------------------------------------------------- real broker


def test_live_windowed_predictions_equal_offline_per_event_through_kill_9(kafka_bootstrap, topic, tmp_path):
    n = 1500
    events = list(transactions(n, seed=7))
    produce_keyed(events, topic, kafka_bootstrap, partitions=3)  # the model learns in the merge's order
    expected = offline_predictions(list(add_windows(events, WINDOWS)))
    options = [arg for text in WINDOW_TEXTS for arg in ("--window", text)]
    state, predictions = tmp_path / "crash", f"{topic}.pred"
    # 1: dies between writing its 3rd snapshot and committing it; 2: right after its 2nd commit
    options = [*resumable(state, n), *options]
    killed_runs(kafka_bootstrap, topic, predictions, options, ("before_commit:3", "after_commit:2"))
    resumed_run(kafka_bootstrap, topic, predictions, options, n, restarts=2)

    got, count = published(predictions, kafka_bootstrap)
    assert count == n and got == expected
    committed = load_snapshot(list_snapshots(state)[-1]).state
    assert committed.windows.names == [name for w in WINDOWS for name in w.names]
    without = offline_predictions(events)
    assert sum(got[e.id][1] != without[e.id][1] for e in events) > 10  # the features changed predictions


def test_a_restart_with_other_windows_is_refused(kafka_bootstrap, topic, tmp_path):
    events = list(transactions(200, seed=8))
    produce_keyed(events, topic, kafka_bootstrap, partitions=1)
    common = dict(state_dir=tmp_path, bootstrap_servers=kafka_bootstrap, max_events=200)
    stats = LiveUpdater(topic, f"{topic}.pred", windows=WINDOWS, **common).run()
    assert stats.events == 200 and 0 < stats.window_keys <= stats.window_values
    with pytest.raises(ConfigError, match="computes the windowed features .* use the same models, promotion rule and windows, or a new state_dir"):
        LiveUpdater(topic, f"{topic}.pred", windows=WINDOWS[:1], **common).run()


def test_a_partition_moves_to_another_group_member_with_its_windows_after_kill_9(kafka_bootstrap, topic):
    n, group = 1200, f"{topic}-g"
    events = list(transactions(n, seed=9))
    produce_keyed(events, topic, kafka_bootstrap, partitions=2)
    env = {**os.environ, "EVENTML_STATE_KEY": KEY}
    options = ["--group", group, "--session-timeout", "6", "--records-per-transaction", "100",
               *[arg for text in WINDOW_TEXTS for arg in ("--window", text)]]
    # the first member dies right after its 3rd commit; the second, another name, takes its partitions over
    # from the state topic once the group drops the dead member
    first = live_process(kafka_bootstrap, topic, f"{topic}.pred", *options, "--name", "first",
                         "--idle-timeout", "15", kill_at="after_commit:3", env=env)
    first.communicate(timeout=90)
    assert first.returncode == -signal.SIGKILL
    second = live_process(kafka_bootstrap, topic, f"{topic}.pred", *options, "--name", "second",
                          "--idle-timeout", "4", env=env)  # its join waits for the group to drop the dead member
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err

    by_partition = collections.defaultdict(list)  # each partition's events in offset order: its task's stream
    for row in em.read_dataframe(topic, bootstrap_servers=kafka_bootstrap).itertuples():
        by_partition[row.partition].append(row.id)
    source = {e.id: e for e in events}
    expected = {}
    for ids in by_partition.values():
        expected.update(offline_predictions(list(add_windows([source[i] for i in ids], WINDOWS))))
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert count == n and got == expected
    owners = read_assignments(group, bootstrap_servers=kafka_bootstrap)
    assert set(owners[owners.event == "assigned"].updater) == {"first", "second"}


def test_the_live_command_exits_2_with_one_sentence_on_a_bad_window(tmp_path, capsys):
    from eventml.cli import main

    code = main(["live", "--events", "e", "--predictions", "p", "--state-dir", str(tmp_path / "s"),
                 "--window", "user:amount:median:10min"])
    assert code == 2
    assert "unknown aggregate(s) 'median'; known aggregates: count, last, max" in capsys.readouterr().err

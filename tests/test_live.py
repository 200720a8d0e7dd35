"""The live updater: live equals offline, exactly once through kill -9 and a broker restart,
bad records dead-lettered, clear errors. Integration tests talk to a real broker."""

from __future__ import annotations

import gc
import logging
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

import eventml as em
from eventml.kafka import free_port
from eventml.live.snapshots import SnapshotError, list_snapshots, load_snapshot, write_snapshot
from eventml.consumer import read_dead_letters
from eventml.live import LiveUpdater, load_model
from eventml.learners import make_learner

from live_helpers import live_process, offline_predictions, probe, produce_events, published, resumable











# ----------------------------------------------------------------------------- no broker


def test_an_unknown_model_name_is_a_config_error_listing_the_names(tmp_path):
    with pytest.raises(em.ConfigError, match="unknown learner 'nope'; known learners: .*river_logreg"):
        LiveUpdater("e", "p", model="nope", state_dir=tmp_path)


@pytest.mark.parametrize("name, value", [("records_per_transaction", 0), ("transaction_interval_s", -1.0),
                                         ("max_pending", 1.5), ("idle_timeout_s", "5"), ("max_events", -3)])
def test_a_bad_parameter_is_a_config_error_naming_it(tmp_path, name, value):
    with pytest.raises(em.ConfigError, match=name):
        LiveUpdater("e", "p", state_dir=tmp_path, **{name: value})


def test_the_live_command_exits_2_with_one_sentence_on_a_bad_model(tmp_path, capsys):
    from eventml.cli import main

    code = main(["live", "--events", "e", "--predictions", "p", "--state-dir", str(tmp_path), "--model", "nope"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("eventml: error: unknown learner 'nope'") and err.count("\n") == 1


def test_a_state_dir_of_another_updater_is_refused(tmp_path):
    LiveUpdater("e", "p", model="river_logreg", state_dir=tmp_path)
    LiveUpdater("e", "p", model="river_logreg", state_dir=tmp_path)  # the same one: fine
    with pytest.raises(em.ConfigError, match="model was 'river_logreg', now 'river_gnb'"):
        LiveUpdater("e", "p", model="river_gnb", state_dir=tmp_path)
    with pytest.raises(em.ConfigError, match="events_topic was 'e', now 'other'"):
        LiveUpdater("other", "p", model="river_logreg", state_dir=tmp_path)


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", b"\x80\x05\x95\xff\xff"])
def test_an_unreadable_snapshot_is_a_snapshot_error_naming_the_file(tmp_path, content):
    path = write_snapshot(tmp_path, 3, {"events:0": 10}, {"anything": 1})
    path.write_bytes(content)
    with pytest.raises(SnapshotError, match=path.name) as info:
        load_snapshot(path)
    assert isinstance(info.value, em.EventmlError)
    with pytest.raises(SnapshotError, match=path.name):
        load_model(tmp_path)


def test_a_snapshot_round_trips_and_pruning_keeps_only_the_committed_one(tmp_path):
    first = write_snapshot(tmp_path, 1, {"events:0": 10}, {"n": 1})
    second = write_snapshot(tmp_path, 2, {"events:0": 20}, {"n": 2})
    assert list_snapshots(tmp_path) == [first, second]
    assert load_snapshot(second).offsets == {"events:0": 20} and load_snapshot(second).state == {"n": 2}
    from eventml.live.snapshots import prune_snapshots

    assert prune_snapshots(tmp_path, keep=second) == 1
    assert list_snapshots(tmp_path) == [second]


@pytest.mark.parametrize("damage", ["truncated", "zeroed", "empty"])
def test_a_snapshot_an_os_crash_damaged_is_refused_before_unpickling_with_what_to_do(tmp_path, damage):
    # snapshots are not fsynced: after an OS crash the newest may be short, zeros or empty; never resume from it
    path = write_snapshot(tmp_path, 3, {"events:0": 10}, {"model": list(range(1000))})
    data = path.read_bytes()
    header_end = data.index(b"\n", data.index(b"\n") + 1) + 1
    path.write_bytes({"truncated": data[:-100], "zeroed": data[:header_end] + bytes(len(data) - header_end),
                      "empty": b""}[damage])
    with pytest.raises(SnapshotError, match=f"{path.name}.*(OS crash|power loss).*new state_dir"):
        load_snapshot(path)


def test_a_snapshot_of_format_2_is_refused_before_it_is_unpickled(tmp_path):
    import pickle

    path = tmp_path / "snapshot-00000004-9733cf97202b.pkl"
    path.write_bytes(b"eventml-snapshot 2\n" + pickle.dumps({"sequence": 4, "offsets": {"events:0": 500}, "state": 7}))
    with pytest.raises(SnapshotError, match="earlier eventml \\(snapshot format 2\\).*new state_dir"):
        load_snapshot(path)


def test_a_durable_snapshot_and_the_identity_sync_write_the_same_readable_file(tmp_path):
    from eventml.live.snapshots import sync_files

    path = write_snapshot(tmp_path, 1, {"events:0": 3}, {"n": 1}, fsync=True)
    sync_files(tmp_path, "updater.json", "no-such-file")  # a missing name is skipped
    assert load_snapshot(path).state == {"n": 1}


def committed_task():
    """What TransactionCommit needs of a task: its key, its state's sequence and offsets, its inputs."""
    from types import SimpleNamespace

    from eventml.live.merge import EVENTS, InputPartition

    return SimpleNamespace(key="global", state=SimpleNamespace(sequence=0, offsets={"events:0": 1}),
                           inputs=[InputPartition("events", 0, EVENTS)])


def test_commits_are_spaced_by_what_a_snapshot_costs_not_by_one_slow_write(tmp_path):
    # one write that waited for the disk or the CPU used to hold the next commit back 4x as long
    from types import SimpleNamespace

    from eventml.live import stores
    from eventml.live.commit import TransactionCommit

    producer = SimpleNamespace(send_offsets_to_transaction=lambda *a: None, commit_transaction=lambda *a: None)
    commit = TransactionCommit(stores.DirectoryStore(tmp_path, "group"), timeout_s=5)
    real_write = stores.write_snapshot

    def slow_write(*args, **kwargs):
        time.sleep(0.3)
        return real_write(*args, **kwargs)

    task = committed_task()
    for i in range(5):
        task.state.offsets["events:0"] = i + 1
        if i == 2:
            stores.write_snapshot = slow_write
            try:
                commit(producer, lambda: None, [task], None)
            finally:
                stores.write_snapshot = real_write
        else:
            commit(producer, lambda: None, [task], None)
    assert commit.snapshot_cost_s < 0.1 and set(commit.timings) >= {"snapshot", "offsets", "commit", "prune", "total"}
    assert [p.name.split("-")[1] for p in list_snapshots(tmp_path)] == ["00000005"]
    commit.close()


def test_importing_eventml_imports_no_model_or_table_library_until_a_name_is_used():
    code = ("import sys, eventml as em; heavy = {'river', 'pandas', 'sklearn', 'matplotlib', 'kafka'} & set(sys.modules); "
            "assert not heavy, heavy; import eventml.service.app, eventml.live_figure; "
            "assert callable(em.serve) and callable(em.watch) and em.events.encode_label and em.LiveUpdater; "
            "assert not hasattr(em, 'no_such_name'); from eventml import plots; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_clients_are_made_early_only_for_a_restart_of_the_same_updater(tmp_path):
    # making them fences the updater the folder names: never for a first start or another updater's folder
    from eventml.live.clients import restart_clients_early

    settings = em.KafkaSettings("127.0.0.1:1", environ={})
    wanted = {"events_topic": "e", "labels_topic": None, "predictions_topic": "p", "model": "river_logreg"}
    assert restart_clients_early(tmp_path, settings, wanted, None, 1.0) is None  # no updater.json yet
    name = LiveUpdater("e", "p", model="river_logreg", state_dir=tmp_path).name
    assert restart_clients_early(tmp_path, settings, {**wanted, "model": "river_gnb"}, None, 1.0) is None
    assert restart_clients_early(tmp_path, settings, wanted, "someone-else", 1.0) is None
    (tmp_path / "updater.json").write_text("{not json")
    assert restart_clients_early(tmp_path, settings, wanted, None, 1.0) is None
    assert name


@pytest.mark.parametrize("stuck", ["flush", "send_offsets_to_transaction", "commit_transaction"])
def test_a_commit_that_outlives_its_bound_logs_which_call_did_not_return(tmp_path, caplog, stuck):
    # a member's commit once waited 17 s and the log could not tell the delivery of its records from the offsets
    from types import SimpleNamespace

    from confluent_kafka import KafkaException

    from eventml.live import stores
    from eventml.live.commit import TransactionCommit

    release = threading.Event()

    def call(name, result=None):
        return lambda *args: release.wait(10) and result if name == stuck else result

    producer = SimpleNamespace(flush=call("flush", 0), send_offsets_to_transaction=call("send_offsets_to_transaction"),
                               commit_transaction=call("commit_transaction"))
    commit = TransactionCommit(stores.DirectoryStore(tmp_path, "group"), timeout_s=0.1, deliver_first=True)
    task = committed_task()
    with caplog.at_level(logging.INFO, logger="eventml.live"), pytest.raises(KafkaException):
        commit(producer, lambda: None, [task], None)
    release.set()
    commit.close()
    assert f"commit 1: {stuck} failed after" in caplog.text


def test_a_transaction_step_that_outlives_its_bound_is_a_timeout_and_the_next_step_still_runs():
    # librdkafka's send_offsets_to_transaction can ignore its own timeout: the updater bounds it itself
    from confluent_kafka import KafkaError, KafkaException

    from eventml.live.commit import BoundedCalls

    def helpers():
        return {t for t in threading.enumerate() if t.name == "eventml-live-commit"}

    before = helpers()
    calls, release = BoundedCalls(), threading.Event()
    started = time.monotonic()
    with pytest.raises(KafkaException) as info:
        calls.call(lambda: release.wait(30), timeout_s=0.2)
    assert info.value.args[0].code() == KafkaError._TIMED_OUT and time.monotonic() - started < 5
    assert calls.call(lambda: "next", timeout_s=5) == "next"  # on a new thread: the stuck one is left alone
    with pytest.raises(ZeroDivisionError):  # a step's own error reaches the caller unchanged
        calls.call(lambda: 1 / 0, timeout_s=5)
    assert len(helpers() - before) == 2  # the stuck thread and the one that took over
    calls.close()
    release.set()
    deadline = time.monotonic() + 5
    while helpers() - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not helpers() - before  # closed, both threads end: a finished run leaves no thread behind


# ----------------------------------------------------------------------------- real broker


def test_a_commit_inside_a_rebalance_callback_sends_its_offsets_at_once(kafka_bootstrap, topic, tmp_path):
    # A group member commits its open transaction when partitions move (in the rebalance callback, inside the
    # consumer's consume()). confluent-kafka 2.16 lets no other thread use the consumer until consume() returns:
    # reading the group metadata in the commit's helper thread waited for the callback, i.e. for itself, until the
    # commit's bound (17 s in CI; then the member reconnected and its group churned).
    from confluent_kafka import Consumer, Producer, TopicPartition

    from eventml.live import stores
    from eventml.live.commit import TransactionCommit
    from eventml.live.merge import EVENTS, InputPartition

    for name in (topic, f"{topic}.out"):
        em.create_topic(name, 1, bootstrap_servers=kafka_bootstrap)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"{topic}-txn"})
    producer.init_transactions(30)
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"{topic}-g", "enable.auto.commit": False,
                         "partition.assignment.strategy": "cooperative-sticky"})
    commit = TransactionCommit(stores.DirectoryStore(tmp_path, "group"), timeout_s=10, deliver_first=True)
    task = committed_task()
    task.inputs, task.state.offsets = [InputPartition(topic, 0, EVENTS)], {f"{topic}:0": 7}
    outcome = []

    def on_assign(consumer, partitions):
        producer.begin_transaction()
        producer.produce(f"{topic}.out", b"a prediction")
        try:
            commit(producer, consumer.consumer_group_metadata, [task], None)
            outcome.append("committed")
        except Exception as exc:  # before the fix: _TIMED_OUT, "a transaction step did not finish within 12 s"
            outcome.append(exc)

    consumer.subscribe([topic], on_assign=on_assign)
    deadline = time.monotonic() + 60
    while not outcome and time.monotonic() < deadline:
        consumer.poll(0.2)
    committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    consumer.close()
    commit.close()
    assert outcome == ["committed"]
    assert committed[0].offset == 7  # the offsets went with the transaction, under the group's generation


def test_live_predictions_equal_the_offline_prequential_ones(kafka_bootstrap, topic, tmp_path):
    events = list(em.synthetic("sea", 1500, seed=5))
    produce_events(events, topic, kafka_bootstrap)
    updater = LiveUpdater(topic, f"{topic}.pred", model="river_logreg", state_dir=tmp_path / "state",
                          bootstrap_servers=kafka_bootstrap, max_events=len(events), records_per_transaction=400,
                          summary_every=500)
    stats = updater.run()

    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert count == len(events) and set(got) == {e.id for e in events}
    assert got == offline_predictions(events)
    offline = em.prequential(events, "river_logreg", metrics=("accuracy", "log_loss"), every=500)
    summary = updater.summary()
    assert summary["events"].tolist() == [500, 1000, 1500]
    assert summary["accuracy"].tolist() == pytest.approx(offline["accuracy"].tolist(), abs=0)
    assert stats.score == summary["accuracy"].iloc[-1] and stats.model_version == len(events)
    assert stats.transactions == 4 and stats.lag == 0 and stats.latency_p50_s > 0
    assert probe(load_model(tmp_path / "state")) == probe(updater.model)
    assert gc.get_freeze_count() == 0  # the run leaves Python's garbage collector as it found it
    time.sleep(0.1)
    assert not [t for t in threading.enumerate() if t.name == "eventml-live-commit"]  # nor a thread behind


def test_predictions_commit_as_soon_as_the_updater_has_read_everything(kafka_bootstrap, topic, tmp_path):
    events = list(em.synthetic("sea", 10, seed=6))
    em.create_topic(topic, bootstrap_servers=kafka_bootstrap)
    # with neither limit near (60 s, 10,000 records) only "read to the end" can close a transaction
    updater = LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path, bootstrap_servers=kafka_bootstrap,
                          transaction_interval_s=60, records_per_transaction=10_000).start()
    try:
        for part, upto in ((events[:5], 5), (events[5:], 10)):
            produce_events(part, topic, kafka_bootstrap)
            deadline = time.monotonic() + 30
            while updater.stats.events < upto and time.monotonic() < deadline:
                time.sleep(0.05)
            got, count = published(f"{topic}.pred", kafka_bootstrap)
            assert updater.running and count == upto and set(got) == {e.id for e in events[:upto]}
    finally:
        updater.stop()
    stats = updater.join(30)
    assert stats.events == 10 and stats.transactions >= 2


def _send(producer, topic, value, ts_ms, key=None, partition=None):
    producer.send(topic, value=value, key=key, timestamp_ms=ts_ms, partition=partition)


def test_events_of_several_partitions_are_merged_in_record_time_order(kafka_bootstrap, topic, tmp_path):
    events = list(em.synthetic("sea", 800, seed=4))
    em.create_topic(topic, partitions=3, bootstrap_servers=kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    base = int(time.time() * 1000) - 60_000
    for i, event in enumerate(events):  # event i on partition i*7 % 3, written at base + i ms
        _send(producer, topic, em.events.encode_event(event), base + i, event.id.encode(), partition=i * 7 % 3)
    producer.flush()
    producer.close()
    stats = LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path, bootstrap_servers=kafka_bootstrap,
                        max_events=len(events), records_per_transaction=300).run()
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert stats.events == count == len(events) and got == offline_predictions(events)


def test_late_labels_join_the_features_kept_at_prediction_time(kafka_bootstrap, topic, tmp_path):
    n, delay, withheld_delay, ttl = 600, 25, 60, 40
    base = int(time.time() * 1000) - 3_600_000
    events = [em.Event(e.id, e.features, None, float(i)) for i, e in enumerate(em.synthetic("sea", n, seed=3))]
    truth = {e.id: lab.label for e, lab in zip(events, em.synthetic("sea", n, seed=3))}
    withheld = {e.id for i, e in enumerate(events) if i % 10 == 0}  # their labels come too late for the TTL
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    labels = []
    for i, event in enumerate(events):
        _send(producer, topic, em.events.encode_event(event), base + 10 * i, event.id.encode())
        lag = withheld_delay if event.id in withheld else delay
        labels.append((base + 10 * (i + lag) + 5, event.id))
    for ts_ms, event_id in sorted(labels):  # a topic in time order, like a real labelling feed
        _send(producer, f"{topic}.labels", em.events.encode_label(em.Label(event_id, truth[event_id])), ts_ms)
    producer.flush()
    producer.close()

    updater = LiveUpdater(topic, f"{topic}.pred", labels_topic=f"{topic}.labels", model="river_logreg",
                          state_dir=tmp_path, bootstrap_servers=kafka_bootstrap, idle_timeout_s=2,
                          records_per_transaction=150, label_ttl_s=ttl)
    stats = updater.run()

    # an event expires once an event more than `ttl` seconds newer was predicted
    expired = {e.id for i, e in enumerate(events) if e.id in withheld and i + ttl + 1 <= n - 1}
    assert stats.expired == len(expired) and stats.late == len(expired)  # their labels come too late
    assert stats.labelled == n - len(expired) and stats.pending == 0

    # offline: the same merge by record time, learning from the features of each labelled event
    learner, version, expected = make_learner("river_logreg"), 0, {}
    by_id = {e.id: e for e in events}
    stream = sorted([(base + 10 * i, 0, e.id) for i, e in enumerate(events)]
                    + [(ts, 1, eid) for ts, eid in labels])
    for _, kind, event_id in stream:
        x = by_id[event_id].features
        if kind == 0:
            proba = learner.predict_proba_one(x)
            expected[event_id] = (version, max(proba, key=proba.get) if proba else None,
                                  {str(k): v for k, v in proba.items()} or None)
        elif event_id not in expired:
            learner.learn_one(x, truth[event_id])
            version += 1
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert count == n and got == expected


def test_malformed_events_and_labels_go_to_the_dead_letter_topics(kafka_bootstrap, topic, tmp_path):
    good = list(em.synthetic("sea", 300, seed=8))
    bad_events = {b"not json": "not_json", b'{"features": {"x": 1}}': "missing_id", b"\xff\xfe": "not_utf8",
                  b'{"id": "b1", "features": {"x": [1, 2]}}': "bad_feature_value", b"[1, 2]": "not_object",
                  b'{"id": "b2", "features": {"x": 1}, "label": {"no": 1}}': "bad_label", b"": "empty"}
    bad_labels = {b"nope": "not_json", b'{"id": "e-1"}': "missing_label", b'{"label": 1}': "missing_id"}
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    base = int(time.time() * 1000) - 60_000
    bad = iter(bad_events)
    for i, event in enumerate(good):
        stripped = em.Event(event.id, event.features, None if i % 2 else event.label, event.ts)
        _send(producer, topic, em.events.encode_event(stripped), base + i, event.id.encode())
        if i % 40 == 5:
            _send(producer, topic, next(bad, b"{"), base + i)
        if i % 2:  # odd events get their label later, on the labels topic
            _send(producer, f"{topic}.labels", em.events.encode_label(em.Label(event.id, event.label)), base + i + 3)
    for i, value in enumerate(list(bad_labels) + [b'{"id": "never-seen", "label": 1}']):
        _send(producer, f"{topic}.labels", value, base + 400 + i)
    producer.flush()
    producer.close()
    bad_events[b"{"] = "not_json"

    updater = LiveUpdater(topic, f"{topic}.pred", labels_topic=f"{topic}.labels", state_dir=tmp_path,
                          bootstrap_servers=kafka_bootstrap, records_per_transaction=100).start()
    deadline = time.monotonic() + 60
    while updater.stats.unknown_id == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    updater.stop()
    stats = updater.join(30)

    n_bad_events = len(range(5, 300, 40))
    dead = read_dead_letters(topic, bootstrap_servers=kafka_bootstrap)
    assert len(dead) == n_bad_events
    assert all(bad_events[value] == reason for value, reason in zip(dead["value"], dead["reason"]))
    assert (dead["source_topic"] == topic).all() and dead["message"].str.len().gt(0).all()
    dead_labels = read_dead_letters(f"{topic}.labels", bootstrap_servers=kafka_bootstrap)
    assert sorted(dead_labels["reason"]) == sorted(bad_labels.values())
    assert stats.dead_letters == n_bad_events + len(bad_labels)
    assert stats.unknown_id == 1 and stats.events == len(good) and stats.labelled == len(good)
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert count == len(good) and set(got) == {e.id for e in good}


def test_a_second_updater_on_the_same_state_dir_fences_the_first_and_nothing_is_repeated(kafka_bootstrap, topic,
                                                                                         tmp_path):
    n = 3000
    events = list(em.synthetic("sea", n, seed=31))
    em.create_topic(topic, bootstrap_servers=kafka_bootstrap)
    job = em.produce_in_background(events, topic, rate=1500, bootstrap_servers=kafka_bootstrap)
    settings = dict(state_dir=tmp_path, bootstrap_servers=kafka_bootstrap, max_events=n, records_per_transaction=100)
    first = LiveUpdater(topic, f"{topic}.pred", **settings).start()
    deadline = time.monotonic() + 30
    while first.stats.events < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first.running, "the first updater ended before a second one could take over"
    second = LiveUpdater(topic, f"{topic}.pred", **settings).start()  # a restart while the old one still runs
    # The second fences the first. The broker may instead answer the first one's commit with "EndTxn: unknown
    # broker error" rather than a fencing error; the first then restores, which fences the second: either
    # way exactly one of them ends fenced and the other finishes the job.
    ended = {}
    for which, updater in (("first", first), ("second", second)):
        try:
            ended[which] = updater.join(60)
        except em.EventmlError as error:
            assert "fenced this live updater" in str(error)
    job.join()
    assert len(ended) == 1, f"exactly one updater is fenced, not {2 - len(ended)}"
    stats = next(iter(ended.values()))
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert stats.events == count == n
    # the takeover is one restore or two (a commit failed by the broker while the other still tries to commit)
    assert stats.restarts in (1, 2)
    assert got == offline_predictions(events)  # the zombie's open transaction left nothing behind


def _sequence(state_dir: Path) -> int:
    names = [p.name for p in list_snapshots(state_dir)]
    return max((int(name.split("-")[1]) for name in names), default=0)


def test_sigkill_at_random_points_then_restart_gives_exactly_once_and_the_same_model(kafka_bootstrap, topic,
                                                                                      tmp_path):
    n = 2000
    events = list(em.synthetic("sea", n, seed=11))
    produce_events(events, topic, kafka_bootstrap)
    clean = LiveUpdater(topic, f"{topic}.clean", state_dir=tmp_path / "clean", bootstrap_servers=kafka_bootstrap,
                        max_events=n, records_per_transaction=100)
    clean.run()

    state, predictions = tmp_path / "crash", f"{topic}.crash"
    # 1: dies between writing its 3rd snapshot and committing it; 2: right after its 2nd commit
    for kill_at in ("before_commit:3", "after_commit:2"):
        proc = live_process(kafka_bootstrap, topic, predictions, *resumable(state, n), kill_at=kill_at)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    # 3: SIGKILL from outside at a random moment after a few more commits
    proc = live_process(kafka_bootstrap, topic, predictions, *resumable(state, n))
    target = _sequence(state) + 3
    deadline = time.monotonic() + 60
    while _sequence(state) < target and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(random.uniform(0, 0.1))
    proc.kill()
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    # 4: runs to the end
    proc = live_process(kafka_bootstrap, topic, predictions, *resumable(state, n))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"live: {n} events predicted" in out and "3 restarts" in out

    got, count = published(predictions, kafka_bootstrap)
    expected, _ = published(f"{topic}.clean", kafka_bootstrap)
    assert count == n and len(got) == n
    assert got == expected == offline_predictions(events)
    assert probe(load_model(state)) == probe(load_model(tmp_path / "clean"))


def test_restart_on_crash_starts_a_killed_updater_again_and_every_event_is_predicted_once(kafka_bootstrap, topic,
                                                                                           tmp_path):
    n = 2000
    events = list(em.synthetic("sea", n, seed=12))
    produce_events(events, topic, kafka_bootstrap)
    predictions = f"{topic}.pred"
    proc = live_process(kafka_bootstrap, topic, predictions, *resumable(tmp_path / "state", n), "--restart-on-crash",
                        kill_at="before_commit:3")  # the first updater dies between its 3rd snapshot and commit
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert err.count("eventml live: the updater was killed by SIGKILL; starting it again from its committed state") == 1
    assert f"live: {n} events predicted" in out and "1 restarts" in out
    got, count = published(predictions, kafka_bootstrap)
    assert count == n and got == offline_predictions(events)


@pytest.mark.parametrize("loss", ["missing", "truncated"])
def test_a_snapshot_lost_in_an_os_crash_is_refused_on_restart_never_resumed_from_another(kafka_bootstrap, topic,
                                                                                          tmp_path, loss):
    # snapshots are not fsynced (a process crash loses none); an OS crash may lose the newest one
    events = list(em.synthetic("sea", 300, seed=3))
    produce_events(events, topic, kafka_bootstrap)
    state = tmp_path / "state"
    first = dict(model="river_logreg", state_dir=state, bootstrap_servers=kafka_bootstrap, records_per_transaction=100)
    LiveUpdater(topic, f"{topic}.pred", max_events=200, **first).run()
    newest = list_snapshots(state)[-1]
    if loss == "missing":
        newest.unlink()
    else:
        newest.write_bytes(newest.read_bytes()[:50])
    with pytest.raises(SnapshotError, match="(OS crash|power loss).*new state_dir"):
        LiveUpdater(topic, f"{topic}.pred", max_events=300, **first).run()
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert count == 200  # nothing published by the refused run


def test_a_broker_restart_mid_run_loses_and_repeats_nothing(tmp_path, topic):
    kafka = LocalKafkaForTest(tmp_path)
    with kafka:
        servers = kafka.bootstrap_servers
        n = 3000
        events = list(em.synthetic("sea", n, seed=21))
        produce_events(events, topic, servers)
        updater = LiveUpdater(topic, f"{topic}.pred", state_dir=tmp_path / "state", bootstrap_servers=servers,
                              max_events=n, records_per_transaction=100, reconnect_timeout_s=90).start()
        deadline = time.monotonic() + 60
        while updater.stats.events < 300 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert updater.running, "the run ended before the broker could be stopped"
        kafka.stop()
        time.sleep(1.0)
        kafka.start()
        stats = updater.join(120)
        assert not updater.running
        assert stats.events == n
        got, count = published(f"{topic}.pred", servers)
        assert count == n and got == offline_predictions(events)

        # a broker that does not come back: a clear error once reconnect_timeout_s is over
        updater = LiveUpdater(topic, f"{topic}.pred2", state_dir=tmp_path / "state2", bootstrap_servers=servers,
                              max_events=n, records_per_transaction=100, reconnect_timeout_s=1).start()
        while updater.stats.events < 300 and updater.running:
            time.sleep(0.02)
        kafka.stop()
        started = time.monotonic()
        with pytest.raises(em.KafkaUnavailableError, match="did not come back within 1 s"):
            updater.join(60)
        assert time.monotonic() - started < 30 and not updater.running


def LocalKafkaForTest(tmp_path):
    return em.LocalKafka(port=free_port(), controller_port=free_port(), data_dir=tmp_path / "kafka")

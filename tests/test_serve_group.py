"""Serving a group of live updaters: a real uvicorn server, a real HTTP client (httpx), a real broker, real
group updaters (in this process, or ``eventml live --group`` processes), and the state topic they commit to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

import eventml as em
from eventml.kafka import free_port
from eventml.kafka.partitioner import partition_for_key
from eventml.learners import make_learner
from eventml.live.group import GroupUpdater, load_group_models, read_assignments, state_topic_name
from eventml.live.state_topic import StateTopic
from eventml.scoring import Scorer

from live_helpers import WINDOW_TEXTS, live_process, produce_events, windowed_answer

KEY = "s" * 32
PROBES = [{"id": f"probe-{e.id}", "features": e.features} for e in em.synthetic("sea", 60, seed=99)]


def answer(learner, features):
    """What the service answers from ``learner``: the live updater's (label, proba), JSON's keys."""
    label, proba = Scorer(learner, ["accuracy", "log_loss"], 1).predict(features)
    return label, {str(k): v for k, v in proba.items()}


def committed_offsets(group_id, topic, partitions, servers):
    """{"topic:p": offset} the consumer group committed, read by a client that does not join it."""
    consumer = KafkaConsumer(bootstrap_servers=servers, group_id=group_id, enable_auto_commit=False)
    try:
        found = {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        consumer.close()
    return {f"{topic}:{p}": offset for p, offset in found.items() if offset is not None}


def read_partitions(topic, servers, isolation_level="read_committed"):
    """Every record of ``topic``: a list of (partition, offset, key, value), read to the end."""
    consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, isolation_level=isolation_level)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    end = consumer.end_offsets(parts)
    out = []
    deadline = time.monotonic() + 30
    while any(consumer.position(tp) < end[tp] for tp in parts) and time.monotonic() < deadline:
        for tp, records in consumer.poll(500).items():
            out.extend((tp.partition, r.offset, r.key, r.value) for r in records)
    consumer.close()
    return out


def events_by_partition(topic, servers):
    """{partition: [event, ...]} in offset order."""
    out = {}
    for partition, _, _, value in read_partitions(topic, servers):
        out.setdefault(partition, []).append(em.events.decode_event(value))
    return out


def without_ts(answers):
    return [{k: v for k, v in one.items() if k != "ts"} for one in answers]


def wait_until(condition, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.05)


def wait_for_committed(server, group_id, topic, partitions, servers, timeout_s=30):
    """Wait until the service serves, for every partition, the state of the offsets the group committed."""
    def caught_up():
        committed = committed_offsets(group_id, topic, partitions, servers)
        model = server.model
        return model is not None and model.ready and all(
            served.offsets == {k: v for k, v in committed.items() if k == f"{topic}:{p}"}
            for p, served in model.models.items())
    wait_until(caught_up, timeout_s, "the service serves the committed state of every partition")


def both_working(group, servers):
    """Whether each of updaters "one" and "two" last announced partitions of its own: the group has settled."""
    rows = read_assignments(group, bootstrap_servers=servers)
    last = rows.groupby("updater").event.last()
    return set(last[last == "assigned"].index) == {"one", "two"}


# ----------------------------------------------------------------------------- the partitioner


def test_partition_for_key_agrees_with_kafkas_murmur2():
    # org.apache.kafka.common.utils.UtilsTest.testMurmur2: Java's murmur2 of these keys (as Java ints)
    java = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
            b"a-little-bit-longer-string": -1486304829,
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, b"abc": 479470107}
    for key, hashed in java.items():
        for partitions in (1, 3, 4, 7, 100):
            assert partition_for_key(key, partitions) == (hashed & 0x7FFFFFFF) % partitions, key
    with pytest.raises(em.ConfigError, match="partitions must be a positive integer, got 0"):
        partition_for_key(b"a", 0)
    with pytest.raises(em.ConfigError, match="key must be bytes"):
        partition_for_key("a", 3)


@pytest.mark.integration
def test_partition_for_key_is_where_a_producer_puts_the_record_in_kafka(kafka_bootstrap, topic):
    from kafka import KafkaProducer

    from eventml.kafka import rdkafka
    from eventml.kafka.settings import KafkaSettings

    partitions = 7
    em.create_topic(topic, partitions, bootstrap_servers=kafka_bootstrap)
    keys = [f"e-{i}".encode() for i in range(300)] + ["é-ü-☃".encode(), b"", bytes(range(256))]
    reported = {}
    # librdkafka's murmur2_random (its own C murmur2; eventml's loop writer uses it) and kafka-python's default
    librdkafka = rdkafka.producer(KafkaSettings(kafka_bootstrap, environ={}), {"partitioner": "murmur2_random"})
    for key in keys:
        librdkafka.produce(topic, b"librdkafka", key,
                           on_delivery=lambda err, msg: reported.setdefault(("librdkafka", msg.key()), msg.partition()))
    assert librdkafka.flush(30) == 0
    python = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for key in keys:
        reported[("kafka-python", key)] = python.send(topic, value=b"kafka-python", key=key).get(30).partition
    python.close()

    stored = [(p, key, value) for p, _, key, value in read_partitions(topic, kafka_bootstrap)]
    assert len(stored) == 2 * len(keys)
    for partition, key, value in stored:  # the partition the broker keeps it in
        assert partition == partition_for_key(key, partitions) == reported[value.decode(), key], key
    assert len({p for p, _, _ in stored}) == partitions  # the keys are spread: the test could fail


# ----------------------------------------------------------------------------- no broker


def test_group_mode_is_refused_without_its_events_topic_a_key_or_a_served_predictions_topic(monkeypatch):
    monkeypatch.delenv("EVENTML_STATE_KEY", raising=False)
    with pytest.raises(em.ConfigError, match="group 'g' needs events_topic"):
        em.serve(group="g", bootstrap_servers="127.0.0.1:1")
    with pytest.raises(em.ConfigError, match="EVENTML_STATE_KEY"):
        em.serve(group="g", events_topic="e", bootstrap_servers="127.0.0.1:1")
    with pytest.raises(em.ConfigError, match="needs predictions_topic"):
        em.serve(group="g", events_topic="e", state_key=KEY, close_loop=True, bootstrap_servers="127.0.0.1:1")
    with pytest.raises(em.ConfigError, match="give state_dir .* or group"):
        em.serve("runs/x", group="g", events_topic="e", state_key=KEY, bootstrap_servers="127.0.0.1:1")
    with pytest.raises(em.ConfigError, match="key must be the name of a feature .* got 7"):
        em.serve(group="g", events_topic="e", state_key=KEY, key=7, bootstrap_servers="127.0.0.1:1")
    with em.serve(group="g", events_topic="e", state_key=KEY, bootstrap_servers="127.0.0.1:1") as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        answer_ = http.post("/predict", json=PROBES[0])
        assert answer_.status_code == 503 and answer_.json()["detail"].startswith("no committed model to serve")
        assert KEY not in repr(server) + http.get("/healthz").text


# ----------------------------------------------------------------------------- real broker


@pytest.mark.integration
def test_every_answer_comes_from_the_committed_model_of_its_partition_through_swaps_under_load(kafka_bootstrap,
                                                                                               topic):
    partitions, n, group = 3, 2400, f"{topic}-g"
    events = list(em.synthetic("sea", n, seed=21))
    em.create_topic(topic, partitions, bootstrap_servers=kafka_bootstrap)
    produce_events(events[:300], topic, kafka_bootstrap)
    settings = dict(group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap, records_per_transaction=50,
                    transaction_interval_s=0.25,
                    session_timeout_s=6)
    updaters = [GroupUpdater(topic, f"{topic}.pred", name=name, **settings).start() for name in ("one", "two")]
    results: list[list] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    done = threading.Event()
    try:
        with em.serve(group=group, events_topic=topic, state_key=KEY, bootstrap_servers=kafka_bootstrap,
                      poll_interval_s=0.05) as server:
            server.wait_for_model(90)

            wait_until(lambda: both_working(group, kafka_bootstrap), 60, "both updaters got partitions")
            job = em.produce_in_background(events[300:], topic, rate=500, bootstrap_servers=kafka_bootstrap)

            def client(k: int) -> None:
                try:
                    with httpx.Client(base_url=server.url, timeout=10) as http:
                        while not done.is_set() or len(results[k]) < 20:
                            body = PROBES[k::4] if k % 2 else PROBES[k]  # half send batches
                            reply = http.post("/predict", json=body)
                            results[k].append((reply.status_code, reply.json()))
                except BaseException as exc:  # a request that failed outright
                    errors.append(exc)

            threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
            for thread in threads:
                thread.start()
            job.join()
            wait_until(lambda: sum(committed_offsets(f"eventml-{group}", topic, partitions, kafka_bootstrap).values())
                       == n, 120, "the group committed every event")
            for updater in updaters:
                updater.stop()
                updater.join(60)
            wait_for_committed(server, f"eventml-{group}", topic, partitions, kafka_bootstrap)
            done.set()
            for thread in threads:
                thread.join(30)
            described = httpx.get(f"{server.url}/model").json()
            final_answers = httpx.post(f"{server.url}/predict", json=PROBES).json()
            swaps = server.service.watcher.swaps
    finally:
        done.set()
        for updater in updaters:
            if updater.running:
                updater.stop()
                updater.join(60)

    assert not errors
    answers = [one for r in results for status, reply in r for one in (reply if isinstance(reply, list) else [reply])]
    assert all(status == 200 for r in results for status, _ in r)
    # the model of each partition at each version, made again from the partition's events in offset order
    by_partition = events_by_partition(topic, kafka_bootstrap)
    wanted: dict[int, set] = {}
    for one in answers:
        wanted.setdefault(partition_for_key(one["id"].encode(), partitions), set()).add(one["model_version"])
    features = {probe["id"]: probe["features"] for probe in PROBES}
    expected = {}
    for p, versions in wanted.items():
        learner = make_learner("river_logreg")
        mine = [i for i in features if partition_for_key(i.encode(), partitions) == p]
        for version in range(len(by_partition[p]) + 1):
            if version in versions:
                expected.update({(i, version): answer(learner, features[i]) for i in mine})
            if version < len(by_partition[p]):
                learner.learn_one(by_partition[p][version].features, by_partition[p][version].label)
    assert all((one["prediction"], one["proba"]) == expected[one["id"], one["model_version"]] for one in answers)
    # each partition was answered by several committed states: the answers above went through its swaps
    assert all(len(wanted.get(p, ())) >= 2 for p in range(partitions)), wanted
    assert swaps >= 2 * partitions
    for k, r in enumerate(results):  # what a client sees of a partition never goes back
        for p in range(partitions):
            seen = [one["model_version"] for _, reply in r for one in (reply if isinstance(reply, list) else [reply])
                    if partition_for_key(one["id"].encode(), partitions) == p]
            assert seen == sorted(seen), (k, p)

    # in the end: the state the group committed, the models load_group_models reads on its own
    final = load_group_models(topic, group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap)
    committed = committed_offsets(f"eventml-{group}", topic, partitions, kafka_bootstrap)
    assert sorted(final) == list(range(partitions)) and sum(committed.values()) == n
    assert described["group"] == group and described["partitions"] == partitions
    for p in range(partitions):
        model = described["models"][str(p)]
        assert model["offsets"] == {f"{topic}:{p}": committed[f"{topic}:{p}"]}
        assert model["model_version"] == model["events"] == len(by_partition[p])
        assert model["served_since"] > 0 and model["sequence"] > 1
    for probe, one in zip(PROBES, final_answers):
        p = partition_for_key(probe["id"].encode(), partitions)
        assert (one["prediction"], one["proba"]) == answer(final[p], probe["features"])
        assert one["model_version"] == len(by_partition[p])


@pytest.mark.integration
def test_a_group_over_events_keyed_by_user_answers_from_the_partition_of_the_user_with_its_windows(
        kafka_bootstrap, topic):
    from eventml.kafka import rdkafka
    from eventml.kafka.settings import KafkaSettings
    from eventml.live.state_topic import RESTORE_CONSUMER_CONFIG
    from eventml.sources import transactions
    from eventml.windows import parse_window

    partitions, n, group = 2, 1200, f"{topic}-g"
    events = list(transactions(n, seed=33))
    em.create_topic(topic, partitions, bootstrap_servers=kafka_bootstrap)
    settings = dict(group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap, records_per_transaction=100,
                    session_timeout_s=6, windows=[parse_window(text) for text in WINDOW_TEXTS])
    updaters = [GroupUpdater(topic, f"{topic}.pred", name=name, **settings).start() for name in ("one", "two")]
    try:
        wait_until(lambda: both_working(group, kafka_bootstrap), 60, "both updaters got partitions")
        em.produce(events, topic, key="user", bootstrap_servers=kafka_bootstrap, progress=False)
        wait_until(lambda: sum(committed_offsets(f"eventml-{group}", topic, partitions, kafka_bootstrap).values())
                   == n, 120, "the group committed every event")
    finally:
        for updater in updaters:
            updater.stop()
            updater.join(60)
    # where each user's events are in Kafka, and each partition's committed state, read on their own
    placed = {em.events.decode_event(value).features["user"]: p for p, _, _, value in read_partitions(topic,
                                                                                                      kafka_bootstrap)}
    store = StateTopic(state_topic_name(group), KEY)
    reader = rdkafka.consumer(KafkaSettings(kafka_bootstrap, environ={}), {**RESTORE_CONSUMER_CONFIG,
                                                                           "group.id": f"{topic}-reader"})
    states = {p: store.load(reader, f"{topic}:{p}", p, 30).state for p in range(partitions)}
    reader.close()

    last = events[-1].ts
    recent = list(dict.fromkeys(e.features["user"] for e in reversed(events[-200:])))[:20]
    probes = [{"id": f"probe-{user}", "features": {"user": user, "merchant": "m1", "amount": 30.0}, "ts": last + 1}
              for user in recent]
    probes += [{"id": f"now-{user}", "features": {"user": user, "amount": 30.0}} for user in recent[:4]]
    probes += [{"id": f"anon-{k}", "features": {"amount": 30.0}, "ts": last} for k in range(4)]  # by id
    with em.serve(group=group, events_topic=topic, state_key=KEY, key="user", close_loop=True,
                  predictions_topic=f"{topic}.served", bootstrap_servers=kafka_bootstrap,
                  poll_interval_s=0.05) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        wait_for_committed(server, f"eventml-{group}", topic, partitions, kafka_bootstrap)
        assert http.get("/model").json()["key"] == "user"
        answers = http.post("/predict", json=probes).json()
        assert server.service.loop.flush(30) == 0

    def partition_of(probe):
        user = probe["features"].get("user")
        return placed[user] if user is not None else partition_for_key(probe["id"].encode(), partitions)

    for probe, one in zip(probes, answers):
        p = partition_of(probe)
        assert one["model_version"] == states[p].learned
        want = windowed_answer(states[p], probe["features"], probe.get("ts", one["ts"]))
        assert (one["prediction"], one["proba"]) == want, probe
    # by id, a good share of the users would have been answered by the other partition: the test can fail
    elsewhere = [probe for probe in probes[:20] if partition_for_key(probe["id"].encode(), partitions) != placed[
        probe["features"]["user"]]]
    assert len(elsewhere) >= 3 and {partition_of(probe) for probe in probes} == {0, 1}
    # the loop: each served event went to the partition of its user, where its model and windows are
    looped = {decoded.id: p for p, _, _, value in read_partitions(topic, kafka_bootstrap)
              for decoded in [em.events.decode_event(value)] if not decoded.id.startswith("t-")}
    assert looped == {probe["id"]: partition_of(probe) for probe in probes}


@pytest.mark.integration
def test_a_state_of_an_open_or_aborted_transaction_is_never_served(kafka_bootstrap, topic):
    from eventml.kafka import rdkafka
    from eventml.kafka.settings import KafkaSettings
    from eventml.live.state import UpdaterState

    partitions, group = 3, f"{topic}-g"
    events = list(em.synthetic("sea", 900, seed=23))
    em.create_topic(topic, partitions, bootstrap_servers=kafka_bootstrap)
    produce_events(events[:600], topic, kafka_bootstrap)
    settings = dict(group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap, session_timeout_s=6)
    GroupUpdater(topic, f"{topic}.pred", name="doomed", idle_timeout_s=2, **settings).run()
    store = StateTopic(state_topic_name(group), KEY)
    committed = committed_offsets(f"eventml-{group}", topic, partitions, kafka_bootstrap)
    with em.serve(group=group, events_topic=topic, state_key=KEY, bootstrap_servers=kafka_bootstrap,
                  poll_interval_s=0.05) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        wait_for_committed(server, f"eventml-{group}", topic, partitions, kafka_bootstrap)
        served = dict(server.model.models)
        models = load_group_models(topic, group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap)

        def still_served():
            time.sleep(1.0)  # 20 polls
            assert server.model.models == served and server.service.watcher.last_error is None
            assert {k: m["sequence"] for k, m in http.get("/model").json()["models"].items()} == \
                {str(p): model.sequence for p, model in served.items()}
            for probe, one in zip(PROBES, http.post("/predict", json=PROBES).json()):
                p = partition_for_key(probe["id"].encode(), partitions)
                assert (one["prediction"], one["proba"]) == answer(models[p], probe["features"])

        # a holder of the key writes newer states of the committed offsets (a fresh model) in a transaction
        # that stays open: the records are on the broker, only their transaction keeps them from being served
        zombie = rdkafka.producer(KafkaSettings(kafka_bootstrap, environ={}), {"transactional.id": f"{topic}-zombie"})
        zombie.init_transactions(30)
        zombie.begin_transaction()
        for p in range(partitions):
            fresh = UpdaterState.fresh(make_learner("river_logreg"), ["accuracy", "log_loss"], 10)
            for key, value, headers in store.records(f"{topic}:{p}", p, served[p].sequence + 1,
                                                     {f"{topic}:{p}": committed[f"{topic}:{p}"]}, fresh):
                zombie.produce(store.topic, value, key, p, headers=headers)
        assert zombie.flush(30) == 0
        written = read_partitions(store.topic, kafka_bootstrap, isolation_level="read_uncommitted")
        for p in range(partitions):
            newest = store.from_records(f"{topic}:{p}", p, [(o, k, v) for q, o, k, v in written if q == p])
            assert newest.sequence == served[p].sequence + 1  # in the log: the test can fail
        still_served()
        zombie.abort_transaction(30)
        still_served()

        # an updater killed with its transaction open (the kill hook: after it produced its state, before its
        # commit; commit 1 announces its partitions, commit 2 is its first transaction of records). Its state
        # may still be in its producer's queue when it dies: the zombie above is the case of one on the broker
        produce_events(events[600:], topic, kafka_bootstrap)
        proc = live_process(kafka_bootstrap, topic, f"{topic}.pred", "--group", group, "--name", "doomed",
                            "--session-timeout", "6", kill_at="before_commit:2",
                            env={**os.environ, "EVENTML_STATE_KEY": KEY})
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, err
        still_served()

        # the same name fences the dead transaction, and the group goes on from the committed state
        resumed = GroupUpdater(topic, f"{topic}.pred", name="doomed", **settings).start()
        wait_until(lambda: sum(committed_offsets(f"eventml-{group}", topic, partitions, kafka_bootstrap).values())
                   == len(events), 90, "the group resumed and committed every event")
        resumed.stop()
        resumed.join(60)
        wait_for_committed(server, f"eventml-{group}", topic, partitions, kafka_bootstrap)
        assert all(server.model.models[p].sequence > served[p].sequence for p in range(partitions))
        final = load_group_models(topic, group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap)
        by_partition = events_by_partition(topic, kafka_bootstrap)
        for probe, one in zip(PROBES, http.post("/predict", json=PROBES).json()):
            p = partition_for_key(probe["id"].encode(), partitions)
            assert (one["prediction"], one["proba"]) == answer(final[p], probe["features"])
            assert one["model_version"] == len(by_partition[p])


@pytest.mark.integration
def test_a_forged_or_replayed_state_is_refused_and_served_events_go_to_the_partition_that_answered(
        kafka_bootstrap, topic, tmp_path):
    from eventml.kafka import rdkafka
    from eventml.kafka.settings import KafkaSettings
    from eventml.live.state import UpdaterState

    partitions, group = 2, f"{topic}-g"
    em.create_topic(topic, partitions, bootstrap_servers=kafka_bootstrap)
    produce_events(list(em.synthetic("sea", 400, seed=24)), topic, kafka_bootstrap)
    GroupUpdater(topic, f"{topic}.pred", group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap,
                 idle_timeout_s=2).run()
    genuine = load_group_models(topic, group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap)
    with em.serve(group=group, events_topic=topic, state_key=KEY, close_loop=True, predictions_topic=f"{topic}.served",
                  bootstrap_servers=kafka_bootstrap, poll_interval_s=0.05) as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        wait_for_committed(server, f"eventml-{group}", topic, partitions, kafka_bootstrap)
        served_before = http.post("/predict", json=PROBES).json()
        for probe, one in zip(PROBES, served_before):
            assert (one["prediction"], one["proba"]) == answer(genuine[partition_for_key(probe["id"].encode(), 2)],
                                                               probe["features"])
        assert server.service.loop.flush(30) == 0
        # the loop: each served event went to the events topic, in the partition whose model answered it
        placed = {key.decode(): p for p, _, key, _ in read_partitions(topic, kafka_bootstrap)
                  if key.startswith(b"probe-")}
        assert placed == {probe["id"]: partition_for_key(probe["id"].encode(), partitions) for probe in PROBES}
        assert len(em.read_predictions(f"{topic}.served", bootstrap_servers=kafka_bootstrap)) == len(PROBES)

        # someone who can write to the state topic, without the key, writes a newer state for partition 1
        marker = tmp_path / "ran"

        class Payload:
            def __reduce__(self):
                return (open, (str(marker), "w"))

        before = server.model.models[1]
        forged = StateTopic(state_topic_name(group), b"f" * 32).records(f"{topic}:1", 1, before.sequence + 1,
                                                                        before.offsets, Payload())
        intruder = rdkafka.producer(KafkaSettings(kafka_bootstrap, environ={}), {})  # not transactional: seen at once
        for key, value, headers in forged:
            intruder.produce(state_topic_name(group), value, key, 1, headers=headers)
        assert intruder.flush(30) == 0
        wait_until(lambda: "1" in server.service.watcher.refused, 30, "the forged state was read")
        health = http.get("/healthz").json()
        assert "failed authentication" in health["watcher"]["refused"]["1"]
        assert "failed authentication" in health["watcher"]["last_error"]
        assert server.model.models[1] is before and not marker.exists()
        assert without_ts(http.post("/predict", json=PROBES).json()) == without_ts(served_before)
        assert http.get("/model").json()["models"]["1"]["sequence"] == before.sequence

        # an authentic state for offsets the group did not commit, as an older snapshot replayed is: refused too
        first = server.model.models[0]
        replayed = StateTopic(state_topic_name(group), KEY).records(
            f"{topic}:0", 0, first.sequence - 1, {f"{topic}:0": first.offsets[f"{topic}:0"] - 10},
            UpdaterState.fresh(make_learner("river_logreg"), ["accuracy", "log_loss"], 10))
        for key, value, headers in replayed:
            intruder.produce(state_topic_name(group), value, key, 0, headers=headers)
        assert intruder.flush(30) == 0
        wait_until(lambda: "0" in server.service.watcher.refused, 30, "the replayed state was read")
        assert "not the offsets group" in server.service.watcher.refused["0"]
        assert server.model.models[0] is first
        assert without_ts(http.post("/predict", json=PROBES).json()) == without_ts(served_before)


@pytest.mark.integration
def test_the_serve_command_answers_from_a_global_groups_one_model(kafka_bootstrap, topic, tmp_path):
    partitions, group = 2, f"{topic}-g"
    em.create_topic(topic, partitions, bootstrap_servers=kafka_bootstrap)
    produce_events(list(em.synthetic("sea", 500, seed=25)), topic, kafka_bootstrap)
    GroupUpdater(topic, f"{topic}.pred", group=group, scope="global", state_key=KEY,
                 bootstrap_servers=kafka_bootstrap, idle_timeout_s=2).run()
    model = load_group_models(topic, group=group, scope="global", state_key=KEY,
                              bootstrap_servers=kafka_bootstrap)["global"]
    key_file = tmp_path / "state-key"
    key_file.write_text(KEY + "\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "EVENTML_STATE_KEY"}
    proc = subprocess.Popen([sys.executable, "-m", "eventml.cli", "serve", "--group", group, "--events", topic,
                             "--scope", "global", "--state-key-file", str(key_file), "--port", str(port),
                             "--poll-interval", "0.05", "--log-level", "warning",
                             "--bootstrap-servers", kafka_bootstrap],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline, health = time.monotonic() + 60, {}
        while not health.get("model_ready") and time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"{url}/healthz", timeout=1).json()
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert health.get("model_ready"), proc.stderr.read() if proc.poll() is not None else health
        described = httpx.get(f"{url}/model").json()
        answers = httpx.post(f"{url}/predict", json=PROBES).json()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"group {group!r} (events topic {topic!r}, scope global) on http://127.0.0.1:{port}" in out
    assert KEY not in out + err
    assert (described["scope"], list(described["models"])) == ("global", ["global"])
    committed = committed_offsets(f"eventml-{group}-global", topic, partitions, kafka_bootstrap)
    assert described["models"]["global"]["offsets"] == committed and sum(committed.values()) == 500
    assert described["models"]["global"]["model_version"] == 500
    for probe, one in zip(PROBES, answers):
        assert (one["prediction"], one["proba"]) == answer(model, probe["features"])
        assert one["model_version"] == 500

"""Live updaters in a group: partitions shared, one model per partition, state in Kafka, exactly once.

Integration tests talk to a real broker; the failover ones (kill -9, a joining updater, a broker stop)
are in tests/test_scale_out.py, against the three-broker cluster.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import signal
import time

import pandas as pd
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import eventml as em
from eventml.cli import main
from eventml.learners import make_learner
from eventml.live.group import GroupUpdater, load_group_models, read_assignments, state_topic_name

from live_helpers import live_process, probe, produce_events, published

KEY = "k" * 32


# ----------------------------------------------------------------------------- no broker


@pytest.mark.parametrize("group", ["a b", "", "é/x"])
def test_a_bad_group_name_is_a_config_error(group):
    with pytest.raises(em.ConfigError, match="group must be letters"):
        GroupUpdater("e", "p", group=group, state_key=KEY)


def test_a_group_without_a_state_key_is_refused_with_how_to_give_one(monkeypatch):
    monkeypatch.delenv("EVENTML_STATE_KEY", raising=False)
    with pytest.raises(em.ConfigError, match="EVENTML_STATE_KEY"):
        GroupUpdater("e", "p", group="g")


def test_the_live_command_refuses_a_state_dir_with_a_group(tmp_path, capsys):
    code = main(["live", "--events", "e", "--predictions", "p", "--group", "g", "--state-dir", str(tmp_path)])
    assert code == 2
    assert "--state-dir (one updater, one global model) or --group NAME" in capsys.readouterr().err


def test_the_live_command_needs_a_state_dir_or_a_group(capsys):
    assert main(["live", "--events", "e", "--predictions", "p"]) == 2
    assert "needs --state-dir" in capsys.readouterr().err


# ----------------------------------------------------------------------------- helpers


def events_by_partition(topic, servers):
    """{partition: [event, ...]} in offset order, read back from Kafka."""
    consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    end = consumer.end_offsets(parts)
    out = collections.defaultdict(list)
    while any(consumer.position(tp) < end[tp] for tp in parts):
        for tp, records in consumer.poll(1000).items():
            out[tp.partition].extend(em.events.decode_event(r.value) for r in records)
    consumer.close()
    return dict(out)


def per_partition_offline(by_partition, model="river_logreg"):
    """What one uninterrupted updater per partition predicts, and its final model."""
    predictions, models = {}, {}
    for number, events in by_partition.items():
        learner = make_learner(model)
        for version, event in enumerate(events):
            proba = learner.predict_proba_one(event.features)
            predictions[event.id] = (version, max(proba, key=proba.get) if proba else None,
                                     {str(k): v for k, v in proba.items()} or None)
            learner.learn_one(event.features, event.label)
        models[number] = learner
    return predictions, models


def make_input(topic, servers, n, partitions, seed):
    em.create_topic(topic, partitions, bootstrap_servers=servers)
    produce_events(list(em.synthetic("sea", n, seed=seed)), topic, servers)
    return events_by_partition(topic, servers)


# ----------------------------------------------------------------------------- one broker


def test_two_updaters_share_the_partitions_and_each_partition_learns_alone(kafka_bootstrap, topic):
    n, group = 3000, f"{topic}-g"
    by_partition = make_input(topic, kafka_bootstrap, n, 4, seed=5)
    settings = dict(group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap, idle_timeout_s=4,
                    records_per_transaction=200, session_timeout_s=6)
    first = GroupUpdater(topic, f"{topic}.pred", name="first", **settings).start()
    second = GroupUpdater(topic, f"{topic}.pred", name="second", **settings).start()
    stats = [first.join(120), second.join(120)]

    got, count = published(f"{topic}.pred", kafka_bootstrap)
    expected, models = per_partition_offline(by_partition)
    assert count == n and got == expected
    assert sum(s.session_events for s in stats) == n
    final = load_group_models(topic, group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap)
    assert sorted(final) == [0, 1, 2, 3]
    assert all(probe(final[p]) == probe(models[p]) for p in final)
    assignments = read_assignments(group, bootstrap_servers=kafka_bootstrap)
    owners = assignments[assignments.event == "assigned"]
    assert set(owners.updater) == {"first", "second"}
    assert set().union(*owners.partitions) == {0, 1, 2, 3}


def wait_for_partitions(group, servers, names, timeout_s=60):
    """The group's announcements once every updater of ``names`` holds partitions (its latest row)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = read_assignments(group, bootstrap_servers=servers)
        latest = rows.groupby("updater").tail(1).set_index("updater")
        if set(names) <= set(latest.index) and all(latest.loc[name, "event"] == "assigned"
                                                   and latest.loc[name, "partitions"] for name in names):
            return rows
        assert time.monotonic() < deadline, f"{names} hold no partitions within {timeout_s} s: {rows}"
        time.sleep(0.3)


def test_a_join_and_a_clean_leave_revoke_only_the_partitions_that_move(kafka_bootstrap, topic):
    n, group = 8000, f"{topic}-g"
    em.create_topic(topic, 6, bootstrap_servers=kafka_bootstrap)
    job = em.produce_in_background(list(em.synthetic("sea", n, seed=21)), topic, rate=400,
                                   bootstrap_servers=kafka_bootstrap)
    settings = dict(group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap, idle_timeout_s=4,
                    records_per_transaction=200, session_timeout_s=6)
    members = {name: GroupUpdater(topic, f"{topic}.pred", name=name, **settings).start()
               for name in ("first", "second")}
    wait_for_partitions(group, kafka_bootstrap, ["first", "second"])
    members["third"] = GroupUpdater(topic, f"{topic}.pred", name="third", **settings).start()
    wait_for_partitions(group, kafka_bootstrap, ["first", "second", "third"])
    members["second"].stop()  # a clean leave, mid-stream
    members["second"].join(60)
    job.join()
    stats = [member.join(120) for member in members.values()]

    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert count == n and got == per_partition_offline(events_by_partition(topic, kafka_bootstrap))[0]
    assert sum(s.session_events for s in stats) == n
    rows = read_assignments(group, bootstrap_servers=kafka_bootstrap).sort_values("time", kind="stable")
    for name, member in members.items():  # every announcement reached the topic, also one whose commit was refused
        assert rows[rows.updater == name].to_dict("records") == member.assignment.rows, name
    # each member held partitions once the third had joined (six partitions, three members)
    held = rows[rows.time < rows[rows.updater == "second"].time.max()].groupby("updater").tail(1).set_index("updater")
    assert all(held.loc[name, "event"] == "assigned" and held.loc[name, "partitions"] for name in members), rows
    # a partition an updater gave up while it went on (it announced an assignment after) went to another
    # updater: none was revoked and given back, as an eager rebalance does with every partition of every
    # member at a join and at a leave
    records = list(rows.itertuples(index=False))
    moved = 0
    for i, row in enumerate(records):
        later = records[i + 1:]
        if row.event != "revoked" or not any(r.updater == row.updater and r.event == "assigned" for r in later):
            continue
        for partition in row.partitions:
            next_owner = next((r.updater for r in later if r.event == "assigned" and partition in r.partitions), None)
            assert next_owner not in (None, row.updater), f"partition {partition} of {row.updater}: {rows}"
            moved += 1
    assert moved >= 2  # the joiner's share, taken from the first two


def test_a_group_reads_each_labels_partition_with_its_events_partition(kafka_bootstrap, topic):
    n, group, labels = 2400, f"{topic}-g", f"{topic}.labels"
    em.create_topic(topic, 4, bootstrap_servers=kafka_bootstrap)
    em.create_topic(labels, 4, bootstrap_servers=kafka_bootstrap)
    events = list(em.synthetic("sea", n, seed=23))
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    base = int(time.time() * 1000) - 60_000
    for i, event in enumerate(events):  # each label right after its event, keyed by its id: the same partition
        producer.send(topic, value=em.events.encode_event(dataclasses.replace(event, label=None)),
                      key=event.id.encode(), timestamp_ms=base + 2 * i)
        producer.send(labels, value=em.events.encode_label(em.Label(event.id, event.label)), key=event.id.encode(),
                      timestamp_ms=base + 2 * i + 1)
    producer.flush()
    producer.close()
    settings = dict(group=group, labels_topic=labels, state_key=KEY, bootstrap_servers=kafka_bootstrap,
                    idle_timeout_s=4, records_per_transaction=200, session_timeout_s=6)
    members = [GroupUpdater(topic, f"{topic}.pred", name=name, **settings).start() for name in ("first", "second")]
    stats = [member.join(120) for member in members]

    truth = {event.id: event.label for event in events}
    by_partition = {p: [dataclasses.replace(e, label=truth[e.id]) for e in got]
                    for p, got in events_by_partition(topic, kafka_bootstrap).items()}
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    # as if each label came in its event: the label of every event reached its partition's model at once
    assert count == n and got == per_partition_offline(by_partition)[0]
    # each partition's counts as its last owner committed them (a member's stats also keep the partitions it
    # handed over at its end, with their counts as of then: summing the members' stats counts those twice)
    final = pd.concat([member.summary() for member in members]).groupby("partition").max()
    assert sorted(final.index) == [0, 1, 2, 3] and final.labelled.sum() == n and final.unknown_id.sum() == 0
    assert sum(s.session_events for s in stats) == n


def test_a_restarted_group_resumes_from_the_state_in_kafka(kafka_bootstrap, topic):
    n, group = 2000, f"{topic}-g"
    by_partition = make_input(topic, kafka_bootstrap, n, 2, seed=6)
    settings = dict(group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap, idle_timeout_s=3,
                    records_per_transaction=150)
    GroupUpdater(topic, f"{topic}.pred", **settings).run()
    more = [dataclasses.replace(event, id=f"more-{event.id}") for event in em.synthetic("sea", 1000, seed=7)]
    produce_events(more, topic, kafka_bootstrap)
    by_partition = events_by_partition(topic, kafka_bootstrap)
    stats = GroupUpdater(topic, f"{topic}.pred", **settings).run()  # another process, no shared disk

    got, count = published(f"{topic}.pred", kafka_bootstrap)
    expected, models = per_partition_offline(by_partition)
    assert stats.session_events == 1000 and stats.events == n + 1000
    assert count == n + 1000 and got == expected
    final = load_group_models(topic, group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap)
    assert all(probe(final[p]) == probe(models[p]) for p in by_partition)


def test_a_group_refuses_a_labels_topic_partitioned_otherwise(kafka_bootstrap, topic):
    em.create_topic(topic, 3, bootstrap_servers=kafka_bootstrap)
    em.create_topic(f"{topic}.labels", 1, bootstrap_servers=kafka_bootstrap)
    updater = GroupUpdater(topic, f"{topic}.pred", group=f"{topic}-g", labels_topic=f"{topic}.labels",
                           state_key=KEY, bootstrap_servers=kafka_bootstrap, idle_timeout_s=1)
    with pytest.raises(em.ConfigError, match="has 1 partitions and events topic .* has 3"):
        updater.run()


def test_a_state_record_written_without_the_key_is_refused_and_nothing_runs(kafka_bootstrap, topic, tmp_path):
    n, group = 500, f"{topic}-g"
    make_input(topic, kafka_bootstrap, n, 1, seed=8)
    settings = dict(group=group, bootstrap_servers=kafka_bootstrap, idle_timeout_s=2)
    GroupUpdater(topic, f"{topic}.pred", state_key=KEY, **settings).run()
    # someone who can write to the state topic, but has not the key, writes a state of their own
    from eventml.kafka import rdkafka
    from eventml.kafka.settings import KafkaSettings
    from eventml.live.state_topic import StateTopic

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    forger = StateTopic(state_topic_name(group), b"f" * 32)
    producer = rdkafka.producer(KafkaSettings.resolve(None, bootstrap_servers=kafka_bootstrap),
                                {"transactional.id": f"{topic}-forger"})
    producer.init_transactions(30)
    producer.begin_transaction()
    # the forged state claims exactly the committed offsets, so only its authentication can give it away
    reader = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=f"eventml-{group}", enable_auto_commit=False)
    forged_offsets = {f"{topic}:0": reader.committed(TopicPartition(topic, 0))}
    reader.close()
    for key, value, headers in forger.records(f"{topic}:0", 0, 99, forged_offsets, Payload()):
        producer.produce(state_topic_name(group), value, key, 0, headers=headers)
    producer.commit_transaction(30)
    del producer  # no client left to log about the broker once the session stops it

    with pytest.raises(em.SnapshotError, match="authentication"):
        GroupUpdater(topic, f"{topic}.pred", state_key=KEY, **settings).run()
    assert not marker.exists()


def test_a_second_global_updater_is_a_standby_that_takes_over_where_the_first_stopped(kafka_bootstrap, topic,
                                                                                     tmp_path):
    n, group = 3000, f"{topic}-g"
    events = list(em.synthetic("sea", n, seed=9))
    em.create_topic(topic, 2, bootstrap_servers=kafka_bootstrap)
    produce_events(events[:n // 2], topic, kafka_bootstrap)
    settings = dict(group=group, scope="global", state_key=KEY, bootstrap_servers=kafka_bootstrap,
                    records_per_transaction=100, session_timeout_s=6)
    first = GroupUpdater(topic, f"{topic}.pred", name="first", **settings).start()
    second = GroupUpdater(topic, f"{topic}.pred", name="second", **settings).start()
    deadline = time.monotonic() + 60
    while first.stats.session_events + second.stats.session_events < n // 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    active, standby = (first, second) if first.stats.session_events else (second, first)
    time.sleep(1)
    assert active.stats.session_events == n // 2 and standby.stats.session_events == 0
    assert active.stats.partitions == (0, 1) and standby.stats.partitions == ()
    active.stop()
    active.join(60)
    produce_events(events[n // 2:], topic, kafka_bootstrap)  # the standby gets the lease and goes on
    while standby.stats.session_events < n - n // 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    standby.stop()
    standby.join(60)

    # one global model, as one LiveUpdater over the same topic makes it
    from eventml.live import LiveUpdater, load_model

    LiveUpdater(topic, f"{topic}.one", state_dir=tmp_path, bootstrap_servers=kafka_bootstrap, max_events=n).run()
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    expected, _ = published(f"{topic}.one", kafka_bootstrap)
    assert count == n and got == expected
    final = load_group_models(topic, group=group, scope="global", state_key=KEY, bootstrap_servers=kafka_bootstrap)
    assert probe(final["global"]) == probe(load_model(tmp_path))
    assignments = read_assignments(group, bootstrap_servers=kafka_bootstrap)
    assigned = assignments[assignments.event == "assigned"]
    assert list(assigned.updater) == [active.name, standby.name]


def wait_until_stable(group, servers, members, timeout_s=60):
    """Until the consumer group ``group`` is stable with ``members`` members: a rebalance ended, the
    generation its members had before is stale."""
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    admin, deadline = AdminClient({"bootstrap.servers": servers}), time.monotonic() + timeout_s
    while True:
        described = admin.describe_consumer_groups([group])[group].result(10)
        if described.state == ConsumerGroupState.STABLE and len(described.members) == members:
            return
        assert time.monotonic() < deadline, f"{group}: {described.state}, {len(described.members)} members"
        time.sleep(0.2)


@pytest.mark.parametrize("scope", ["global", "partition"])
def test_a_commit_refused_for_a_stale_generation_redoes_only_its_transaction_and_keeps_the_member_in_the_group(
        kafka_bootstrap, topic, tmp_path, monkeypatch, scope):
    """A rebalance can end between the consumer's last word from the group and a commit: the broker refuses the
    commit's offsets (ILLEGAL_GENERATION). Seen in CI: a standby's join refused the lease holder's commit; it
    connected again, so left the group, and the standby took the lease. Made certain here by committing once
    with the group metadata the holder had before the other member joined: the broker's refusal is real."""
    from confluent_kafka import KafkaException

    from eventml.live.commit import TransactionCommit, stale_generation
    from eventml.live.updater import consumer_group_name

    n, group = 2000, f"{topic}-g"
    events = list(em.synthetic("sea", n, seed=31))
    em.create_topic(topic, 2, bootstrap_servers=kafka_bootstrap)
    produce_events(events[:n // 2], topic, kafka_bootstrap)
    settings = dict(group=group, scope=scope, state_key=KEY, bootstrap_servers=kafka_bootstrap,
                    records_per_transaction=100, session_timeout_s=6)
    refusals, refused_at, noted, commit = [], [], [], TransactionCommit.__call__

    def once_with_a_stale_generation(self, producer, group_metadata, tasks, send):
        """The holder's commits note their group metadata until the other member starts; once armed, the
        holder's next commit sends the last one noted."""
        if self is holder._commit and not joined:
            noted.append(group_metadata())
        if self is not holder._commit or not armed or refusals:
            return commit(self, producer, group_metadata, tasks, send)
        try:
            commit(self, producer, lambda: noted[-1], tasks, send)
        except KafkaException as error:
            refusals.append(error)
            refused_at.append(time.time())
            raise
        refusals.append(None)  # accepted: the test would prove nothing

    joined = armed = False
    monkeypatch.setattr(TransactionCommit, "__call__", once_with_a_stale_generation)
    holder = GroupUpdater(topic, f"{topic}.pred", name="holder", **settings).start()
    deadline = time.monotonic() + 60
    while holder.stats.session_events < n // 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    joined = True
    other = GroupUpdater(topic, f"{topic}.pred", name="other", **settings).start()
    wait_until_stable(consumer_group_name(group, scope), kafka_bootstrap, 2)
    if scope == "partition":
        wait_for_partitions(group, kafka_bootstrap, ["holder", "other"])
    armed = True  # the generation noted is the one before the join: stale now
    produce_events(events[n // 2:], topic, kafka_bootstrap)
    # the one that would take over stops first: the standby (else it takes the lease and announces it), or in the
    # partition scope the holder (else the other's partitions go to it, and it announces them)
    members = (other, holder) if scope == "global" else (holder, other)
    while sum(m.stats.session_events for m in members) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    for member in members:
        member.stop()
        member.join(60)

    assert len(refusals) == 1 and refusals[0] is not None and stale_generation(refusals[0]), refusals
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert count == n and sum(m.stats.session_events for m in members) == n
    # the holder stayed in the group: after the refusal, it announced only that it stopped
    rows = read_assignments(group, bootstrap_servers=kafka_bootstrap)
    after = rows[(rows.updater == "holder") & (rows.time > refused_at[0])]
    assert list(after.event) == ["revoked"], rows
    if scope == "global":  # it kept the lease: one model, as one updater over the topic makes it
        from eventml.live import LiveUpdater

        LiveUpdater(topic, f"{topic}.one", state_dir=tmp_path, bootstrap_servers=kafka_bootstrap, max_events=n).run()
        assert got == published(f"{topic}.one", kafka_bootstrap)[0]
        assert other.stats.session_events == 0 and list(rows[rows.event == "assigned"].updater) == ["holder"]
    else:
        assert got == per_partition_offline(events_by_partition(topic, kafka_bootstrap))[0]


def test_sigterm_stops_a_group_updater_cleanly_and_hands_its_partitions_over(kafka_bootstrap, topic):
    n, group = 4000, f"{topic}-g"
    em.create_topic(topic, 2, bootstrap_servers=kafka_bootstrap)
    events = list(em.synthetic("sea", n, seed=12))
    job = em.produce_in_background(events, topic, rate=800, bootstrap_servers=kafka_bootstrap)
    proc = live_process(kafka_bootstrap, topic, f"{topic}.pred", "--group", group, "--name", "first",
                        env={**os.environ, "EVENTML_STATE_KEY": KEY})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = read_assignments(group, bootstrap_servers=kafka_bootstrap)
        if (rows.event == "assigned").any():
            break
        time.sleep(0.3)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)  # mid-stream
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "updater first predicted" in out
    rows = read_assignments(group, bootstrap_servers=kafka_bootstrap)
    assert list(rows.event) == ["assigned", "revoked"] and rows.partitions.iloc[-1] == [0, 1]
    job.join()
    GroupUpdater(topic, f"{topic}.pred", group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap,
                 idle_timeout_s=3).run()  # the rest, from where the stopped one committed
    by_partition = events_by_partition(topic, kafka_bootstrap)
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert count == n and got == per_partition_offline(by_partition)[0]


def test_restart_on_crash_starts_a_killed_group_member_again_under_its_name(kafka_bootstrap, topic):
    n, group = 2000, f"{topic}-g"
    by_partition = make_input(topic, kafka_bootstrap, n, 2, seed=14)
    # the member dies between its 3rd state write and commit; the child started again has its name (so its
    # transactional id fences the dead one) and gets the partitions once the group drops the dead member
    proc = live_process(kafka_bootstrap, topic, f"{topic}.pred", "--group", group, "--session-timeout", "6",
                        "--idle-timeout", "6", "--records-per-transaction", "100", "--restart-on-crash",
                        kill_at="before_commit:3", env={**os.environ, "EVENTML_STATE_KEY": KEY})
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert err.count("the updater was killed by SIGKILL; starting it again from its committed state") == 1
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    expected, _ = per_partition_offline(by_partition)
    assert count == n and got == expected
    names = set(read_assignments(group, bootstrap_servers=kafka_bootstrap).updater)
    assert len(names) == 1 and f"updater {names.pop()} predicted" in out


def test_a_group_member_is_watched_like_one_updater(kafka_bootstrap, topic):
    import matplotlib

    matplotlib.use("Agg")
    from eventml.plots import plot_live

    by_partition = make_input(topic, kafka_bootstrap, 600, 2, seed=15)
    updater = GroupUpdater(topic, f"{topic}.pred", group=f"{topic}-g", state_key=KEY, bootstrap_servers=kafka_bootstrap,
                           idle_timeout_s=2, summary_every=100)
    summary = em.watch(updater.start(), every_s=0.1)
    stats = updater.join(60)
    assert stats.partitions == (0, 1) and stats.events == stats.session_events == 600
    assert stats.model_version == 600 and 0.5 < stats.score <= 1
    for partition, rows in summary.groupby("partition"):
        n = len(by_partition[partition])
        assert rows["events"].tolist() == [*range(100, n + 1, 100)] + ([n] if n % 100 else [])
    ax = plot_live(summary, stats)
    assert [line.get_label() for line in ax.lines] == ["partition 0: rolling accuracy", "partition 1: rolling accuracy"]
    assert ax.get_title().startswith("partitions 0, 1 · 600 events")

"""Scale-out on the local three-broker cluster: three updaters in one group over six partitions, one
killed with SIGKILL, a fourth joining, and the leader of a busy partition's broker stopped and started
mid-run; afterwards exactly one committed prediction per event and each partition's model equal to
what one uninterrupted updater builds from that partition alone."""

from __future__ import annotations

import os
import signal
import time

import pytest

import eventml as em
from eventml.live.group import load_group_models, read_assignments

from live_helpers import live_process, probe, published
from test_group import KEY, events_by_partition, per_partition_offline

pytestmark = pytest.mark.integration


def updater_process(servers, topic, group, name):
    return live_process(servers, topic, f"{topic}.pred", "--group", group, "--name", name, "--idle-timeout", "10",
                        "--records-per-transaction", "200", "--session-timeout", "6",
                        env={**os.environ, "EVENTML_STATE_KEY": KEY})


def wait_until_assigned(group, servers, name, timeout_s=90):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = read_assignments(group, bootstrap_servers=servers, timeout_s=10)
        if ((rows.updater == name) & (rows.event == "assigned") & (rows.partitions.map(len) > 0)).any():
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} got no partition within {timeout_s} s")


def test_kill_join_and_a_broker_stop_leave_one_prediction_per_event_and_per_partition_models(kafka_cluster, topic):
    servers, group, n = kafka_cluster.bootstrap_servers, f"{topic}-g", 12_000
    em.create_topic(topic, 6, kafka=kafka_cluster.settings)
    events = list(em.synthetic("sea", n, seed=21))
    procs = {name: updater_process(servers, topic, group, name) for name in ("u1", "u2", "u3")}
    try:
        for name in procs:  # the stream starts once they work (under load they took a minute to start, and
            wait_until_assigned(group, servers, name)  # the kill and the broker stop came after the stream)
        # 15 s of events; eventml's producer defaults (acks=all, idempotence) lose or repeat no input in the stop below
        job = em.produce_in_background(events, topic, rate=800, kafka=kafka_cluster.settings)
        time.sleep(1.0)
        procs["u1"].send_signal(signal.SIGKILL)  # mid-stream, mid-transaction most likely
        procs["u4"] = updater_process(servers, topic, group, "u4")
        time.sleep(3.0)
        leader = kafka_cluster.leader(topic, 0)
        kafka_cluster.stop_node(leader)  # the leader of a busy partition, mid-stream
        time.sleep(3)
        kafka_cluster.start_node(leader)
        try:
            wait_until_assigned(group, servers, "u4")
        except AssertionError as error:  # what each updater was doing meanwhile (their logs go to stderr)
            for proc in procs.values():
                proc.kill()
            logs = {name: proc.communicate(timeout=30)[1][-2000:] for name, proc in procs.items()}
            raise AssertionError(f"{error}; the updaters' last log lines: {logs}") from None
        assert job.join().delivered == n
        outcomes = {name: proc.communicate(timeout=180) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.kill()
        kafka_cluster.start()  # every node up for the next test

    assert procs["u1"].returncode == -signal.SIGKILL
    for name in ("u2", "u3", "u4"):
        assert procs[name].returncode == 0, outcomes[name][1][-3000:]
    by_partition = events_by_partition(topic, servers)
    assert sum(map(len, by_partition.values())) == n
    got, count = published(f"{topic}.pred", servers)
    expected, models = per_partition_offline(by_partition)
    assert count == n and len(got) == n  # exactly one committed prediction per event
    assert got == expected  # each from its partition's model, as one uninterrupted updater per partition
    final = load_group_models(topic, group=group, state_key=KEY, bootstrap_servers=servers)
    assert sorted(final) == list(range(6))
    assert all(probe(final[p]) == probe(models[p]) for p in range(6))
    rows = read_assignments(group, bootstrap_servers=servers)
    assigned = rows[rows.event == "assigned"]
    assert {"u1", "u4"} <= set(assigned.updater)


def test_an_updater_does_not_end_on_idle_while_a_partition_it_owns_has_records_it_did_not_fetch(kafka_bootstrap, topic):
    """A fetch that stalls (librdkafka after a leader change; here a pause stands for it) must not let the updater end
    on idle with its partition's records unread: no other updater would predict them."""
    from eventml.live.group import GroupUpdater
    from live_helpers import produce_events

    em.create_topic(topic, 2, bootstrap_servers=kafka_bootstrap)
    events = list(em.synthetic("sea", 400, seed=5))
    produce_events(events[:200], topic, kafka_bootstrap)
    updater = GroupUpdater(topic, f"{topic}.pred", group=f"{topic}-g", state_key=KEY, bootstrap_servers=kafka_bootstrap,
                           idle_timeout_s=6)
    route, routed = updater._route, []

    def route_then_stall(messages):  # in the updater's thread: once it has the first 200 events, its fetches stall
        before = len(routed)
        routed.extend(message for message in messages if message.error() is None)
        if before < 200 <= len(routed):
            updater._clients.consumer.pause(updater._clients.consumer.assignment())
        return route(messages)

    updater._route = route_then_stall
    updater.start()
    deadline = time.monotonic() + 60
    while updater.stats.session_events < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    produce_events(events[200:], topic, kafka_bootstrap)
    assert updater.running  # the new events are in Kafka before it could end on idle
    stats = updater.join(60)

    assert not updater.running and stats.session_events == 400
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert count == len(got) == 400


def test_an_updater_does_not_end_on_idle_while_its_group_waits_in_a_rebalance_for_a_member(kafka_bootstrap, topic):
    """A member that stops polling (as one whose commit hangs after a broker restart) holds the group's rebalance; the
    others own nothing meanwhile, and must not end on idle: its partitions would then be left to no updater."""
    from confluent_kafka import Consumer

    from eventml.live.group import GroupUpdater
    from live_helpers import produce_events

    group = f"{topic}-g"
    em.create_topic(topic, 2, bootstrap_servers=kafka_bootstrap)
    produce_events(list(em.synthetic("sea", 300, seed=6)), topic, kafka_bootstrap)
    stuck = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"eventml-{group}", "enable.auto.commit": False,
                      "partition.assignment.strategy": "range", "session.timeout.ms": 6000,
                      "max.poll.interval.ms": 8000})
    stuck.subscribe([topic])
    deadline = time.monotonic() + 30
    while not stuck.assignment() and time.monotonic() < deadline:
        stuck.poll(0.2)
    # it stops polling now: the updater's joining waits for it until librdkafka drops it (max.poll.interval.ms)
    started = time.monotonic()
    stats = GroupUpdater(topic, f"{topic}.pred", group=group, state_key=KEY, bootstrap_servers=kafka_bootstrap,
                         idle_timeout_s=2).run()
    stuck.close()

    assert stats.session_events == 300 and time.monotonic() - started > 6
    got, count = published(f"{topic}.pred", kafka_bootstrap)
    assert count == len(got) == 300

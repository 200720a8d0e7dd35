"""A group member that starts while a broker of the cluster is killed comes up and does its work: its
first connection is retried with backoff, as a reconnect is (it used to exit at once on ECONNREFUSED
although two of the three bootstrap servers answered)."""

from __future__ import annotations

import os

import pytest

import eventml as em

from live_helpers import live_process, published
from test_group import KEY, events_by_partition, per_partition_offline

pytestmark = pytest.mark.integration


def test_a_group_member_started_while_a_broker_is_killed_comes_up_and_processes_its_partitions(kafka_cluster,
                                                                                                topic):
    servers, group, n = kafka_cluster.bootstrap_servers, f"{topic}-g", 3000
    em.create_topic(topic, 3, kafka=kafka_cluster.settings)
    report = em.produce(em.synthetic("sea", n, seed=31), topic, kafka=kafka_cluster.settings, acks="all",
                        progress=False)
    assert report.delivered == n
    by_partition = events_by_partition(topic, servers)
    proc = live_process(servers, topic, f"{topic}.pred", "--group", group, "--name", "starter", "--idle-timeout", "8",
                        "--session-timeout", "6", env={**os.environ, "EVENTML_STATE_KEY": KEY})
    try:
        kafka_cluster.kill_node(1)  # the first bootstrap server, while the member makes its clients
        out, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
        kafka_cluster.start()  # every node up for the next test
    assert proc.returncode == 0, err[-3000:]
    assert f"updater starter predicted {n} events" in out
    got, count = published(f"{topic}.pred", servers)
    expected, _ = per_partition_offline(by_partition)
    assert count == n and got == expected

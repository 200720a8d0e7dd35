"""The local three-node cluster: replication by default, a node stopped and started again with
nothing lost, and the command that runs it."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from kafka import OffsetAndMetadata, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

import eventml as em
from eventml.cli import main
from eventml.errors import BrokerError, ConfigError
from eventml.kafka import LocalCluster, LocalKafka
from eventml.kafka import clients, rdkafka
from eventml.kafka.clients import admin
from eventml.kafka.cluster import replication_defaults


def topic_setting(cluster: LocalCluster, topic: str, name: str) -> str:
    client = admin(cluster.settings)
    try:
        described = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    finally:
        client.close()
    return described["topic"][topic][name]["value"]


def test_nodes_listen_on_consecutive_port_pairs_from_the_first(tmp_path):
    cluster = LocalCluster(brokers=3, port=19092, data_dir=tmp_path)
    assert cluster.bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    assert cluster.voters == "1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"
    assert [row.state for row in cluster.status()] == ["down"] * 3
    assert not (tmp_path / "cluster.json").exists()  # nothing written before a start


def test_a_taken_port_is_one_sentence_before_anything_is_written(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        cluster = LocalCluster(brokers=3, port=port - 2, data_dir=tmp_path)  # node 2's client port is taken
        # (node 2's client port, unless another program holds one of node 1's)
        with pytest.raises(BrokerError, match=r"on 127.0.0.1 \(node [12]'s (client|controller) port\) is already taken"):
            cluster.start()
    assert not (tmp_path / "cluster.json").exists()


def test_replication_defaults_survive_one_node_down_and_shrink_with_the_cluster():
    three = replication_defaults(3)
    assert three["default.replication.factor"] == three["offsets.topic.replication.factor"] == "3"
    assert three["transaction.state.log.replication.factor"] == "3"
    assert three["min.insync.replicas"] == three["transaction.state.log.min.isr"] == "2"
    assert replication_defaults(5)["default.replication.factor"] == "3"
    assert replication_defaults(1)["min.insync.replicas"] == "1"


def test_a_cluster_takes_a_whole_number_of_brokers_and_names_its_nodes(tmp_path):
    with pytest.raises(ConfigError, match="brokers must be a whole number of at least 1"):
        LocalCluster(brokers=0, data_dir=tmp_path)
    with pytest.raises(ConfigError, match="this cluster has nodes 1 to 3, not 4"):
        LocalCluster(brokers=3, port=19092, data_dir=tmp_path).stop_node(4)


def test_a_data_dir_keeps_its_kind(tmp_path):
    (tmp_path / "cluster.json").write_text('{"cluster_id": "x", "nodes": [{"id": 1, "port": 19092, '
                                           '"controller_port": 19093}, {"id": 2, "port": 19094, '
                                           '"controller_port": 19095}]}')
    assert LocalCluster(brokers=3, port=19192, data_dir=tmp_path).bootstrap_servers.startswith("127.0.0.1:19192,")
    (tmp_path / "node-1" / "logs").mkdir(parents=True)
    (tmp_path / "node-1" / "logs" / "meta.properties").write_text("")  # formatted: the layout holds from now on
    with pytest.raises(BrokerError, match="holds a 2-node cluster, not 3"):
        LocalCluster(brokers=3, data_dir=tmp_path)
    assert LocalCluster(brokers=None, data_dir=tmp_path).bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19094"
    with pytest.raises(BrokerError, match="holds a 2-node cluster: start it with `eventml kafka start`"):
        LocalKafka(port=19092, data_dir=tmp_path).start()


def eventml(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "eventml.cli", "kafka", *args], capture_output=True, text=True,
                          timeout=300)
    if check and proc.returncode not in (0, 3, 4):
        raise AssertionError(proc.stderr)
    return proc


def node_states(out: str) -> dict[int, str]:
    """``{node id: "up" | "down"}`` from the table ``eventml kafka status`` prints."""
    rows = [line.split() for line in out.splitlines()]
    return {int(row[0]): row[-1] for row in rows if len(row) == 5 and row[0].isdigit()}


@pytest.mark.integration
def test_the_command_starts_a_cluster_stops_and_starts_one_node_and_stops_it_all(tmp_path):
    data = str(tmp_path / "cluster")
    try:
        started = eventml("start", "--brokers", "3", "--port", "0", "--data-dir", data)
        assert started.returncode == 0, started.stderr
        assert node_states(started.stdout) == {1: "up", 2: "up", 3: "up"}
        servers = started.stdout.splitlines()[-1]
        assert servers.count("127.0.0.1:") == 3
        assert eventml("status", "--data-dir", data).stdout.splitlines()[-1] == servers

        assert eventml("stop", "--node", "2", "--data-dir", data).stdout.strip() == "node 2 stopped"
        down = eventml("status", "--data-dir", data)
        assert down.returncode == 4 and node_states(down.stdout) == {1: "up", 2: "down", 3: "up"}
        assert "2 up" in down.stdout
        assert em.create_topic("cli-cluster", bootstrap_servers=servers) is True  # two of three nodes serve

        again = eventml("start", "--node", "2", "--data-dir", data)
        assert again.returncode == 0 and node_states(again.stdout) == {1: "up", 2: "up", 3: "up"}
        assert "already running: nodes 1, 3" in again.stdout
        assert eventml("start", "--data-dir", data).returncode == 0  # a second start leaves the nodes alone
    finally:
        stopped = eventml("stop", "--data-dir", data)
    assert stopped.stdout.strip() == "Kafka cluster stopped"
    gone = eventml("status", "--data-dir", data)
    assert gone.returncode == 3 and set(node_states(gone.stdout).values()) == {"down"}
    assert eventml("stop", "--data-dir", data).stdout.strip() == "Kafka cluster was not running"


def test_the_command_refuses_what_a_cluster_does_not_do(tmp_path, capsys):
    def refused(*args: str) -> str:
        assert main(["kafka", *args]) == 2
        return capsys.readouterr().err

    assert "--secure do not go with a local cluster" in refused("start", "--brokers", "3", "--secure",
                                                                "--data-dir", str(tmp_path))
    assert "--port 0 (free ports) needs --data-dir" in refused("start", "--brokers", "3", "--port", "0")
    assert "give it with --node N" in refused("stop", "--kill", "--data-dir", str(tmp_path))
    assert "this cluster has nodes 1 to 3, not 5" in refused("stop", "--node", "5", "--data-dir", str(tmp_path))
    assert "brokers must be a whole number of at least 1" in refused("start", "--brokers", "0",
                                                                     "--data-dir", str(tmp_path))
    assert "there is no cluster in" in refused("start", "--node", "2", "--data-dir", str(tmp_path))
    assert not (tmp_path / "cluster.json").exists()


@pytest.mark.integration
def test_three_nodes_are_up_and_new_topics_get_replication_3_and_min_isr_2(kafka_cluster, topic):
    status = kafka_cluster.status()
    assert status.running and status.up == [1, 2, 3] and all(row.pid for row in status)
    assert em.create_topic(topic, partitions=3, kafka=kafka_cluster.settings) is True
    rows = kafka_cluster.partitions(topic)
    assert [len(row["replicas"]) for row in rows] == [3, 3, 3]
    assert {row["leader"] for row in rows} <= {1, 2, 3}
    assert topic_setting(kafka_cluster, topic, "min.insync.replicas") == "2"
    # the internal topics too: a consumer group's offsets and a transaction's state
    producer = rdkafka.producer(kafka_cluster.settings, {"transactional.id": f"{topic}-tx"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"{}")
    producer.commit_transaction(30)
    consumer = clients.consumer(kafka_cluster.settings, group_id=f"{topic}-group")
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})
    finally:
        consumer.close()
    for internal in ("__consumer_offsets", "__transaction_state"):
        assert {len(row["replicas"]) for row in kafka_cluster.partitions(internal)} == {3}, internal
        assert topic_setting(kafka_cluster, internal, "min.insync.replicas") == "2", internal


@pytest.mark.integration
def test_writes_and_reads_go_on_while_the_leaders_node_is_stopped_and_nothing_is_lost(kafka_cluster, topic):
    settings = kafka_cluster.settings
    events = list(em.synthetic("sea", 300, seed=2))
    ids = [event.id for event in events]
    em.create_topic(topic, partitions=1, kafka=settings)
    assert em.produce(events[:100], topic, kafka=settings, acks="all", progress=False).delivered == 100
    leader = kafka_cluster.leader(topic, 0)
    try:
        assert kafka_cluster.stop_node(leader) is True
        assert kafka_cluster.status().nodes[leader - 1].state == "down"
        assert kafka_cluster.status().up == sorted({1, 2, 3} - {leader})
        assert kafka_cluster.leader(topic, 0) not in (None, leader)  # a clean stop hands leadership over first
        assert em.produce(events[100:200], topic, kafka=settings, acks="all", progress=False).delivered == 100
        assert [event.id for event in em.read_events(topic, kafka=settings)] == ids[:200]
    finally:
        kafka_cluster.start_node(leader)
    assert kafka_cluster.status().nodes[leader - 1].state == "up"
    kafka_cluster.wait_until_in_sync(topic)
    assert em.produce(events[200:], topic, kafka=settings, acks="all", progress=False).delivered == 100
    assert [event.id for event in em.read_events(topic, kafka=settings)] == ids


@pytest.mark.integration
def test_a_killed_leader_loses_no_acknowledged_write_and_its_node_comes_back(kafka_cluster, topic):
    settings = kafka_cluster.settings
    events = list(em.synthetic("hyperplane", 200, seed=3))
    em.create_topic(topic, partitions=1, kafka=settings)
    assert em.produce(events[:100], topic, kafka=settings, acks="all", progress=False).delivered == 100
    leader = kafka_cluster.leader(topic, 0)
    try:
        assert kafka_cluster.kill_node(leader) is True
        assert kafka_cluster.status().nodes[leader - 1].pid is None
        # the controllers fence the silent node after its session times out; the writes wait for the new leader
        assert em.produce(events[100:], topic, kafka=settings, acks="all", progress=False).delivered == 100
        assert kafka_cluster.leader(topic, 0) not in (None, leader)
    finally:
        kafka_cluster.start_node(leader)
    kafka_cluster.wait_until_in_sync(topic)
    assert [event.id for event in em.read_events(topic, kafka=settings)] == [event.id for event in events]

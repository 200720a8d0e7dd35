"""The local three-node cluster: replication by default, a node stopped and started again with
nothing lost, and the command that runs it."""

from __future__ import annotations

import pytest
from kafka import OffsetAndMetadata, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

import eventml as em
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
    with pytest.raises(BrokerError, match="holds a 2-node cluster, not 3"):
        LocalCluster(brokers=3, data_dir=tmp_path)
    assert LocalCluster(brokers=None, data_dir=tmp_path).bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19094"
    with pytest.raises(BrokerError, match="holds a 2-node cluster: start it with `eventml kafka start`"):
        LocalKafka(port=19092, data_dir=tmp_path).start()


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

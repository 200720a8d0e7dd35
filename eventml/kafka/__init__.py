"""eventml's one Kafka boundary: the only code of eventml that imports a Kafka client.

==================  ==========================================================================
module              job
==================  ==========================================================================
``settings``        :class:`KafkaSettings`: bootstrap servers and security, from keywords, the
                    ``EVENTML_*`` environment or defaults; rendered for both clients; secrets masked
``connection``      the fail-fast check before any client: reach (TCP), trust (TLS), log in
                    (SASL), each failure one sentence
``clients``         kafka-python producers, consumers and admin clients (the notebook-facing
                    helpers' client), with eventml's tuned defaults
``rdkafka``         confluent-kafka (librdkafka) producers and consumers (the live updater's)
``topics``          create, delete, list and describe topics; their offsets
``node``            one KRaft node process (controller and broker): its properties, storage, start and stop
``local``           :class:`LocalKafka`, the local single-node broker, and ``kafka_for``
``cluster``         :class:`LocalCluster`, a local multi-node KRaft cluster (replication factor 3)
                    whose nodes stop and start one by one
``secure``          the secured local broker (``LocalKafka(secure=True)``): SASL/SCRAM-SHA-512 over
                    TLS, certificates made with the JDK's keytool, random passwords in files
``jars``            the Kafka jars (Maven) and the JDK that runs them
``logs``            the filter that masks passwords in Kafka clients' log lines
==================  ==========================================================================

Examples
--------
>>> from eventml.kafka import KafkaSettings
>>> KafkaSettings("broker:9092", environ={}).for_librdkafka()["bootstrap.servers"]
'broker:9092'
"""

from __future__ import annotations

from eventml.lazy import attach

#: where each name lives, imported on first use (``eventml live`` needs neither kafka-python's helpers,
#: pandas nor the local brokers)
_LAZY = {
    **dict.fromkeys(["CONSUMER_DEFAULTS", "PRODUCER_DEFAULTS"], "eventml.kafka.clients"),
    **dict.fromkeys(["ClusterStatus", "LocalCluster", "NodeStatus"], "eventml.kafka.cluster"),
    "check_connection": "eventml.kafka.connection",
    **dict.fromkeys(["KAFKA_VERSION", "MIN_JAVA", "check_java", "resolve_jars"], "eventml.kafka.jars"),
    **dict.fromkeys(["DEFAULT_PORT", "DEFAULT_SECURE_PORT", "BrokerStatus", "LocalKafka", "free_port", "kafka_for"],
                    "eventml.kafka.local"),
    **dict.fromkeys(["ENV_BOOTSTRAP", "MECHANISMS", "PROTOCOLS", "KafkaSettings", "bootstrap_servers"],
                    "eventml.kafka.settings"),
    **dict.fromkeys(["create_topic", "delete_topic", "describe_topic", "list_topics", "recreate_topic",
                     "topic_offsets"], "eventml.kafka.topics"),
}

__all__ = [
    "KafkaSettings", "bootstrap_servers", "ENV_BOOTSTRAP", "PROTOCOLS", "MECHANISMS", "check_connection",
    "PRODUCER_DEFAULTS", "CONSUMER_DEFAULTS", "LocalKafka", "BrokerStatus", "kafka_for", "free_port",
    "LocalCluster", "ClusterStatus", "NodeStatus",
    "DEFAULT_PORT", "DEFAULT_SECURE_PORT", "KAFKA_VERSION", "MIN_JAVA", "check_java", "resolve_jars",
    "create_topic", "delete_topic", "describe_topic", "list_topics", "recreate_topic", "topic_offsets",
]


__getattr__, __dir__ = attach(__name__, _LAZY)

"""Kafka client settings: eventml's tuned defaults, the bootstrap address, and overrides.

The bootstrap servers come from the ``bootstrap_servers`` argument, else the
``EVENTML_BOOTSTRAP_SERVERS`` environment variable, else ``127.0.0.1:9092``. Security options
(SASL, SSL) pass through to kafka-python under their kafka-python names. An unknown key is an
error that lists the accepted ones, so a typo never silently does nothing.

The live updater's clients are confluent-kafka (librdkafka) ones: :func:`rdkafka_config` takes
the few settings it uses under their kafka-python names and gives them librdkafka's names.

Examples
--------
>>> from eventml.config import producer_config
>>> cfg = producer_config(bootstrap_servers="broker:9092", linger_ms=5)
>>> cfg["bootstrap_servers"], cfg["linger_ms"], cfg["batch_size"]
('broker:9092', 5, 1048576)
"""

from __future__ import annotations

import os
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from eventml.errors import ConfigError

ENV_BOOTSTRAP = "EVENTML_BOOTSTRAP_SERVERS"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"

#: eventml's producer defaults; see benchmarks/bench_produce_consume.py for what they buy.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": 1,  # one broker confirms each batch; "all" is the kafka-python default
    "linger_ms": 20,  # wait up to 20 ms to fill batches
    "batch_size": 1 << 20,  # 1 MiB batches: fewer requests, fewer CRC calls
    "max_request_size": 8 << 20,
    "retries": 5,
}

#: eventml's consumer defaults.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable_auto_commit": False,
    "fetch_max_bytes": 64 << 20,
    "max_partition_fetch_bytes": 16 << 20,
    "max_poll_records": 5000,
}

_SECURITY_KEYS = {
    "security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
    "sasl_kerberos_service_name", "sasl_kerberos_domain_name", "sasl_oauth_token_provider",
    "ssl_context", "ssl_check_hostname", "ssl_cafile", "ssl_certfile", "ssl_keyfile",
    "ssl_password", "ssl_crlfile", "ssl_ciphers",
}


def bootstrap_servers(value: str | None = None) -> str:
    """The bootstrap address to use: ``value``, else the environment, else the default.

    Examples
    --------
    >>> bootstrap_servers("kafka:29092")
    'kafka:29092'
    """
    return value or os.environ.get(ENV_BOOTSTRAP) or DEFAULT_BOOTSTRAP


_resolve_bootstrap = bootstrap_servers  # for functions whose parameter has the same name


def _merge(kind: str, accepted: dict[str, Any], defaults: dict[str, Any],
           bootstrap: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(accepted) - _SECURITY_KEYS)
    if unknown:
        names = ", ".join(sorted(set(accepted) | _SECURITY_KEYS))
        raise ConfigError(f"unknown {kind} setting(s) {', '.join(map(repr, unknown))}; accepted settings: {names}")
    return {**defaults, **overrides, "bootstrap_servers": bootstrap_servers(bootstrap)}


def producer_config(bootstrap_servers: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Settings for a kafka-python ``KafkaProducer``: eventml's defaults, then ``overrides``."""
    return _merge("producer", KafkaProducer.DEFAULT_CONFIG, PRODUCER_DEFAULTS, bootstrap_servers, overrides)


def consumer_config(bootstrap_servers: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Settings for a kafka-python ``KafkaConsumer``: eventml's defaults, then ``overrides``."""
    return _merge("consumer", KafkaConsumer.DEFAULT_CONFIG, CONSUMER_DEFAULTS, bootstrap_servers, overrides)


def admin_config(bootstrap_servers: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Settings for a kafka-python ``KafkaAdminClient``."""
    return _merge("admin", KafkaAdminClient.DEFAULT_CONFIG, {}, bootstrap_servers, overrides)


#: kafka-python names of the settings the live updater gives its confluent-kafka clients -> librdkafka names.
RDKAFKA_NAMES: dict[str, str] = {
    "bootstrap_servers": "bootstrap.servers",
    "acks": "acks",
    "linger_ms": "linger.ms",
    "retry_backoff_ms": "retry.backoff.ms",
    "reconnect_backoff_max_ms": "reconnect.backoff.max.ms",
    "transactional_id": "transactional.id",
    "group_id": "group.id",
    "isolation_level": "isolation.level",
    "enable_auto_commit": "enable.auto.commit",
    "auto_offset_reset": "auto.offset.reset",
    "enable_partition_eof": "enable.partition.eof",
    "partitioner": "partitioner",
    "metadata_recovery_strategy": "metadata.recovery.strategy",
}


def rdkafka_config(bootstrap_servers: str | None = None, **settings: Any) -> dict[str, Any]:
    """Settings for a confluent-kafka (librdkafka) client, given under kafka-python's names.

    Examples
    --------
    >>> rdkafka_config("broker:9092", linger_ms=5, group_id="g")
    {'linger.ms': 5, 'group.id': 'g', 'bootstrap.servers': 'broker:9092'}
    """
    unknown = sorted(set(settings) - set(RDKAFKA_NAMES))
    if unknown:
        raise ConfigError(f"unknown librdkafka setting(s) {', '.join(map(repr, unknown))}; "
                          f"accepted settings: {', '.join(sorted(RDKAFKA_NAMES))}")
    return {**{RDKAFKA_NAMES[name]: value for name, value in settings.items()},
            "bootstrap.servers": _resolve_bootstrap(bootstrap_servers)}

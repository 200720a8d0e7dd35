"""kafka-python clients for the notebook-facing helpers, made from :class:`KafkaSettings`.

Each factory takes the connection settings and the client's own tuning settings under
kafka-python's names (``linger_ms``, ``group_id``, ``isolation_level``, ...), over eventml's tuned
defaults (:data:`PRODUCER_DEFAULTS`, :data:`CONSUMER_DEFAULTS`). A tuning name kafka-python does
not know is an error that lists the accepted ones, so a typo never silently does nothing; a
connection setting given under kafka-python's name (``sasl_plain_username``) is an error that
names eventml's (``sasl_username``), so credentials have one spelling. kafka-python's other
security options (``ssl_crlfile``, ``ssl_ciphers``, ``sasl_kerberos_service_name``, ...) pass
through as tuning, to kafka-python clients only.

Before a client is made, :func:`~eventml.kafka.connection.check_connection` says in one sentence
if no broker answers or the security settings fail; kafka-python's own failures while it
connects become the same sentences.

Examples
--------
>>> from eventml.kafka.settings import KafkaSettings
>>> cfg = producer_config(KafkaSettings("broker:9092", environ={}), linger_ms=5)
>>> cfg["bootstrap_servers"], cfg["linger_ms"], cfg["acks"], cfg["enable_idempotence"]
('broker:9092', 5, 'all', True)
>>> producer_config(KafkaSettings("broker:9092", environ={}), acks=1)["enable_idempotence"]
False
>>> producer_config(KafkaSettings("broker:9092", environ={}), sasl_plain_username="alice")
Traceback (most recent call last):
...
eventml.errors.ConfigError: sasl_plain_username is a connection setting: give it as sasl_username (or EVENTML_SASL_USERNAME)
"""

from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError as ClientError
from kafka.errors import (KafkaTimeoutError, MessageSizeTooLargeError,
                          SaslAuthenticationFailedError, UnsupportedSaslMechanismError)

from eventml.errors import ConfigError
from eventml.kafka import logs
from eventml.kafka.connection import check_connection, forget, login_error, no_broker_error, silent_broker_error
from eventml.kafka.settings import ENV_NAMES, KafkaSettings

__all__ = ["PRODUCER_DEFAULTS", "CONSUMER_DEFAULTS", "producer", "consumer", "admin", "producer_config",
           "consumer_config", "admin_config", "ClientError", "KafkaTimeoutError", "MessageSizeTooLargeError",
           "TopicPartition", "KafkaProducer", "KafkaConsumer", "KafkaAdminClient"]

Client = TypeVar("Client")

#: eventml's producer defaults; see benchmarks/bench_produce_consume.py for what they buy and cost.
#: A write counts as delivered once every in-sync replica has it, and a retried write is neither
#: duplicated nor reordered: ``acks="all"`` with idempotence, as Kafka's own clients since 3.0. Retries
#: are kafka-python's: until ``delivery_timeout_ms`` (2 minutes), which outlasts a leader's failover.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",  # a leader that dies after acknowledging leaves the write on the new leader
    "enable_idempotence": True,  # gives way to an acks, retries or max_in_flight it cannot go with
    "linger_ms": 20,  # wait up to 20 ms to fill batches
    "batch_size": 1 << 20,  # 1 MiB batches: fewer requests, fewer CRC calls
    "max_request_size": 8 << 20,
}

#: eventml's consumer defaults.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable_auto_commit": False,
    "fetch_max_bytes": 64 << 20,
    "max_partition_fetch_bytes": 16 << 20,
    "max_poll_records": 5000,
}

#: kafka-python's names of the settings :class:`KafkaSettings` owns -> eventml's names.
_OWNED = {"bootstrap_servers": "bootstrap_servers", "security_protocol": "security_protocol",
          "sasl_mechanism": "sasl_mechanism", "sasl_plain_username": "sasl_username",
          "sasl_plain_password": "sasl_password", "ssl_cafile": "ssl_cafile", "ssl_certfile": "ssl_certfile",
          "ssl_keyfile": "ssl_keyfile", "ssl_password": "ssl_password", "ssl_check_hostname": "ssl_check_hostname"}


def _config(kind: str, accepted: dict[str, Any], defaults: dict[str, Any], settings: KafkaSettings,
            tuning: dict[str, Any]) -> dict[str, Any]:
    owned = [name for name in tuning if name in _OWNED]
    if owned:
        name = _OWNED[owned[0]]
        raise ConfigError(f"{owned[0]} is a connection setting: give it as {name} (or {ENV_NAMES[name]})")
    unknown = sorted(set(tuning) - set(accepted))
    if unknown:
        names = ", ".join(sorted(set(accepted) - set(_OWNED)))
        raise ConfigError(f"unknown {kind} setting(s) {', '.join(map(repr, unknown))}; accepted settings: {names}; "
                          f"connection settings: {', '.join(ENV_NAMES)}")
    return {**defaults, **tuning, **settings.for_kafka_python()}


def producer_config(settings: KafkaSettings, **tuning: Any) -> dict[str, Any]:
    """Settings for a kafka-python ``KafkaProducer``: eventml's defaults, then ``tuning``, then the connection.

    Idempotence needs ``acks="all"``, ``retries`` above 0 and at most 5 requests in flight: a
    ``tuning`` that asks otherwise (``acks=1``) gets a producer without it, unless it gives
    ``enable_idempotence`` (or a ``transactional_id``) too, which kafka-python then refuses.
    """
    config = _config("producer", KafkaProducer.DEFAULT_CONFIG, PRODUCER_DEFAULTS, settings, tuning)
    if "enable_idempotence" not in tuning and not tuning.get("transactional_id") and not _idempotence_fits(config):
        config["enable_idempotence"] = False
    return config


def _idempotence_fits(config: dict[str, Any]) -> bool:
    return (str(config["acks"]) in ("all", "-1") and config.get("retries", 1) != 0
            and config.get("max_in_flight_requests_per_connection", 5) <= 5)


def consumer_config(settings: KafkaSettings, **tuning: Any) -> dict[str, Any]:
    """Settings for a kafka-python ``KafkaConsumer``: eventml's defaults, then ``tuning``, then the connection."""
    return _config("consumer", KafkaConsumer.DEFAULT_CONFIG, CONSUMER_DEFAULTS, settings, tuning)


def admin_config(settings: KafkaSettings, **tuning: Any) -> dict[str, Any]:
    """Settings for a kafka-python ``KafkaAdminClient``."""
    return _config("admin", KafkaAdminClient.DEFAULT_CONFIG, {}, settings, tuning)


def admin_tuning(tuning: dict[str, Any]) -> dict[str, Any]:
    """The part of another client's tuning an admin client takes too (timeouts, client id, ...)."""
    return {name: value for name, value in tuning.items() if name in KafkaAdminClient.DEFAULT_CONFIG}


def producer(settings: KafkaSettings, **tuning: Any) -> KafkaProducer:
    """A kafka-python producer, after :func:`~eventml.kafka.connection.check_connection`."""
    return _make(KafkaProducer, settings, producer_config(settings, **tuning))


def consumer(settings: KafkaSettings, **tuning: Any) -> KafkaConsumer:
    """A kafka-python consumer (not subscribed), after :func:`~eventml.kafka.connection.check_connection`."""
    return _make(KafkaConsumer, settings, consumer_config(settings, **tuning))


def admin(settings: KafkaSettings, **tuning: Any) -> KafkaAdminClient:
    """A kafka-python admin client, after :func:`~eventml.kafka.connection.check_connection`."""
    return _make(KafkaAdminClient, settings, admin_config(settings, **tuning))


def _make(factory: Callable[..., Client], settings: KafkaSettings, config: dict[str, Any]) -> Client:
    check_connection(settings)
    logs.protect_tree("kafka")  # kafka-python creates some loggers as it goes
    started = time.monotonic()
    try:
        return factory(**config)
    except SaslAuthenticationFailedError as exc:
        raise login_error(settings, str(exc)) from None
    except UnsupportedSaslMechanismError as exc:
        raise login_error(settings, f"unsupported mechanism: {exc}") from None
    except KafkaTimeoutError:
        waited = time.monotonic() - started
        forget(settings)
        try:
            check_connection(settings)  # gone since, or the credentials refused? then say so
        except Exception as exc:
            raise exc from None
        raise (silent_broker_error(settings, round(waited)) if settings.security_protocol != "PLAINTEXT"
               or waited > 5 else no_broker_error(settings)) from None


logs.protect_tree("kafka")

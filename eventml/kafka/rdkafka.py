"""confluent-kafka (librdkafka) clients for the live loop, made from :class:`KafkaSettings`.

The live updater runs on librdkafka, whose produce and fetch run in C threads outside Python's
GIL (see :mod:`eventml.live`). Its clients come from here: the connection settings rendered in
librdkafka's dialect (:meth:`KafkaSettings.for_librdkafka`), then the client's tuning given under
librdkafka's own names (``"linger.ms"``, ``"isolation.level"``, ...), which librdkafka checks
itself: an unknown name or a bad value is a :class:`~eventml.errors.ConfigError` with its
message. Connection names (``bootstrap.servers``, ``security.protocol``, ``sasl.*``, ``ssl.*``) are
refused in the tuning: they come from the settings only, so the two clients never disagree.
Producers start from :data:`PRODUCER_DEFAULTS`: ``acks=all`` with idempotence, as the kafka-python
producers (:data:`eventml.kafka.clients.PRODUCER_DEFAULTS`).

A client is made after :func:`~eventml.kafka.connection.check_connection`, so an unreachable
broker, a refused login or an untrusted certificate is one sentence, not a timeout. librdkafka's
log lines go to the ``logger`` given, with passwords masked.

The librdkafka types the live updater handles are re-exported here (``KafkaError``,
``KafkaException``, ``TopicPartition``, ``Producer``, ``Consumer``), so that no module outside
:mod:`eventml.kafka` imports a Kafka client.

Examples
--------
>>> from eventml.kafka.settings import KafkaSettings
>>> rdkafka_config(KafkaSettings("broker:9092", environ={}), {"linger.ms": 5})
{'linger.ms': 5, 'bootstrap.servers': 'broker:9092', 'security.protocol': 'PLAINTEXT'}
>>> rdkafka_config(KafkaSettings("broker:9092", environ={}), {"sasl.username": "alice"})
Traceback (most recent call last):
...
eventml.errors.ConfigError: 'sasl.username' is a connection setting: give it in KafkaSettings (sasl_username, ssl_cafile, ...) or the EVENTML_* environment variables
>>> producer_config(KafkaSettings("broker:9092", environ={}), {"acks": 1})["enable.idempotence"]
False
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from eventml.errors import ConfigError
from eventml.kafka import logs
from eventml.kafka.connection import check_connection
from eventml.kafka.settings import KafkaSettings

__all__ = ["PRODUCER_DEFAULTS", "producer", "consumer", "committed_offsets", "kafka_error", "rdkafka_config", "producer_config",
           "Consumer", "KafkaError", "KafkaException", "Producer", "TopicPartition"]

#: eventml's librdkafka producer defaults: a write counts as delivered once every in-sync replica has
#: it, and a retried write is neither duplicated nor reordered (librdkafka's own default is
#: ``acks=all`` without idempotence). A transactional producer is idempotent anyway.
PRODUCER_DEFAULTS: dict[str, Any] = {"acks": "all", "enable.idempotence": True}

_CONNECTION = ("bootstrap.servers", "metadata.broker.list", "security.protocol")
_CONNECTION_PREFIXES = ("sasl.", "ssl.", "ssl_")


def rdkafka_config(settings: KafkaSettings, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """librdkafka settings: ``config`` (librdkafka names), then the connection settings."""
    config = dict(config or {})
    owned = [name for name in config if name in _CONNECTION or name.startswith(_CONNECTION_PREFIXES)]
    if owned:
        raise ConfigError(f"{owned[0]!r} is a connection setting: give it in KafkaSettings (sasl_username, "
                          "ssl_cafile, ...) or the EVENTML_* environment variables")
    return {**config, **settings.for_librdkafka()}


def producer_config(settings: KafkaSettings, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """librdkafka producer settings: :data:`PRODUCER_DEFAULTS`, then ``config``, then the connection.

    Idempotence needs ``acks=all``, retries and at most 5 requests in flight: a ``config`` that asks
    otherwise (``{"acks": 1}``) gets a producer without it, unless it names ``enable.idempotence``
    (or a ``transactional.id``) too, which librdkafka then refuses.
    """
    config = dict(config or {})
    tuned = {**PRODUCER_DEFAULTS, **config}
    if "enable.idempotence" not in config and "transactional.id" not in config and not _idempotence_fits(tuned):
        tuned["enable.idempotence"] = False
    return rdkafka_config(settings, tuned)


def _idempotence_fits(config: dict[str, Any]) -> bool:
    """False if ``config`` asks for what idempotence cannot go with (a value librdkafka cannot read is
    left for librdkafka to refuse)."""
    def given(*names: str) -> list[str]:
        return [str(config[name]) for name in names if name in config]

    return not (any(acks not in ("all", "-1") for acks in given("acks", "request.required.acks"))
                or "0" in given("retries", "message.send.max.retries")
                or any(n.isdigit() and int(n) > 5
                       for n in given("max.in.flight", "max.in.flight.requests.per.connection")))


def producer(settings: KafkaSettings, config: Mapping[str, Any] | None = None, *,
             logger: logging.Logger | None = None, error_cb: Callable[[KafkaError], None] | None = None) -> Producer:
    """A confluent-kafka producer with ``config`` (librdkafka names) over :data:`PRODUCER_DEFAULTS`,
    after the connection check."""
    return _make(Producer, settings, producer_config(settings, config), logger, error_cb)


def consumer(settings: KafkaSettings, config: Mapping[str, Any] | None = None, *,
             logger: logging.Logger | None = None, error_cb: Callable[[KafkaError], None] | None = None) -> Consumer:
    """A confluent-kafka consumer with ``config`` (librdkafka names, ``group.id`` among them), after
    the connection check."""
    return _make(Consumer, settings, rdkafka_config(settings, config), logger, error_cb)


def committed_offsets(consumer: Any, partitions: list, timeout_s: float) -> dict[str, int]:
    """``{"topic:partition": next offset}`` the consumer's group committed for ``partitions``
    (a list of ``TopicPartition``), those with nothing committed left out; a partition's error is raised as a
    ``KafkaException``."""
    found = consumer.committed(partitions, timeout=timeout_s)
    errors = [tp.error for tp in found if tp.error is not None]
    if errors:
        raise KafkaException(errors[0])
    return {f"{tp.topic}:{tp.partition}": tp.offset for tp in found if tp.offset >= 0}  # OFFSET_INVALID: none


def kafka_error(error: BaseException) -> KafkaError | None:
    """The ``KafkaError`` a confluent-kafka ``KafkaException`` carries; None for any other exception."""
    err = error.args[0] if isinstance(error, KafkaException) and error.args else None
    return err if isinstance(err, KafkaError) else None


def _make(factory: Callable[[dict], Any], settings: KafkaSettings, conf: dict[str, Any],
          logger: logging.Logger | None, error_cb: Callable[[KafkaError], None] | None) -> Any:
    check_connection(settings)
    if logger is not None:
        logs.protect(logger)
        logs.quiet_retries(logger)
        conf["logger"] = logger
    if error_cb is not None:
        conf["error_cb"] = error_cb
    try:
        return factory(conf)
    except KafkaException as exc:  # a setting librdkafka does not take (its message names it, never a value)
        error = exc.args[0] if exc.args else exc
        raise ConfigError(f"librdkafka refused the client's settings: {getattr(error, 'str', lambda: error)()}") from None

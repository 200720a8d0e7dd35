"""Write events to a topic: validated JSON, keyed by id, batched, with delivery accounting.

By default nothing acknowledged is lost with its leader, and nothing is written twice (``acks="all"``
with idempotence; see :class:`EventProducer`).

Examples
--------
>>> from eventml.producer import produce
>>> from eventml.sources import synthetic
>>> report = produce(synthetic("sea", 1000, seed=1), "sea-events")  # doctest: +SKIP
>>> report.delivered  # doctest: +SKIP
1000
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import Any, Iterable, Iterator

from eventml.errors import TopicNotFoundError
from eventml.events import Event, Label, encode_event, encode_label, key_feature, record_key
from eventml.kafka import clients
from eventml.kafka.clients import KafkaProducer, KafkaTimeoutError
from eventml.kafka.settings import KafkaSettings, split_settings
from eventml.progress import progress_bar

#: Seconds an :class:`EventProducer` waits for a new topic's partitions before it asks the cluster
#: whether the topic exists at all: a cluster that creates topics on first use does so well within
#: this; one that does not gets a :class:`~eventml.errors.TopicNotFoundError` instead of a minute's wait.
TOPIC_WAIT_S = 5.0


@dataclasses.dataclass
class ProduceReport:
    """What a :func:`produce` call did: counts, failures and the rate it reached."""

    topic: str
    sent: int = 0
    failed: int = 0
    seconds: float = 0.0
    first_error: str | None = None

    @property
    def delivered(self) -> int:
        """Events the broker acknowledged (valid once the producer was flushed)."""
        return self.sent - self.failed

    @property
    def events_per_s(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class EventProducer:
    """A producer of wire-format events to one topic.

    Every event is validated and encoded as JSON, keyed by its id, or by one of its features
    (``key="user"``: all the events of a user go to one partition, in order, as windowed features per
    user need). Failed deliveries are counted in :attr:`report`, not silently lost.

    Guaranteed with the default settings: an event counted as delivered is on every in-sync
    replica of its partition (``acks="all"``; with ``min.insync.replicas=2`` it survives its leader's
    crash), and an event is written at most once however often it is retried (idempotence).
    Not guaranteed: with ``acks=1`` (or 0) a delivered event can be lost with its leader.

    Parameters
    ----------
    topic
        The topic to write to.
    bootstrap_servers
        Overrides ``EVENTML_BOOTSTRAP_SERVERS``.
    kafka
        The connection settings as one object; keywords given next to it override its fields.
    key
        The feature whose value keys each event's record (a string as it is, another value as its
        JSON); None keys by the event's id, as does an event without that feature. Labels are always
        keyed by id.
    **config
        The other connection keywords (``security_protocol``, ``sasl_username``, ...; see
        :mod:`eventml.kafka.settings`), and kafka-python producer settings over eventml's defaults
        (:data:`eventml.kafka.clients.PRODUCER_DEFAULTS`; ``acks=1`` trades durability for speed).

    Raises
    ------
    TopicNotFoundError
        If the topic does not exist and the cluster did not create it within
        :data:`TOPIC_WAIT_S` (automatic topic creation is off): nothing was sent.

    Notes
    -----
    On a cluster that creates topics on first use (Kafka's default, and eventml's local broker)
    a new topic is created here, with the broker's default number of partitions. If the topic
    exists but its partitions have no leader yet, the producer waits up to ``max_block_ms`` as
    kafka-python does.

    Examples
    --------
    >>> with EventProducer("clicks") as producer:  # doctest: +SKIP
    ...     producer.send({"id": "e-1", "features": {"x": 1.0}, "label": 0})
    >>> producer.report.delivered  # doctest: +SKIP
    1
    """

    def __init__(self, topic: str, *, bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                 key: str | None = None, **config: Any):
        self.topic = topic
        self.key = key_feature(key)
        self.report = ProduceReport(topic)
        self.kafka, tuning = split_settings(kafka, {"bootstrap_servers": bootstrap_servers, **config})
        self._producer = clients.producer(self.kafka, **tuning)
        with _quiet_about(topic):  # until closed: its sender thread may still log the missing topic
            try:
                partitions = _partitions_for(self._producer, topic, self.kafka, tuning)
            except BaseException:
                self._producer.close()
                raise
        # With one partition there is nothing to choose: skipping the key hash saves ~10% per event.
        self._partition = 0 if partitions == {0} else None
        self._started = time.perf_counter()

    def _on_error(self, exc: BaseException) -> None:
        self.report.failed += 1
        if self.report.first_error is None:
            self.report.first_error = repr(exc)

    def send(self, event: Event | Label | dict[str, Any]) -> Any:
        """Validate, encode and send one event, or a :class:`~eventml.events.Label` for a labels
        topic (asynchronously; see :meth:`flush`); return its delivery's future (kafka-python's:
        ``add_callback(fn)`` runs ``fn(metadata)`` once the broker acknowledged it)."""
        if isinstance(event, Label):
            return self.send_raw(encode_label(event), event.id.encode())
        value = encode_event(event)  # validates it first
        event_id, features = (event.id, event.features) if isinstance(event, Event) else (event["id"], event["features"])
        return self.send_raw(value, record_key(event_id, features, self.key))

    def send_raw(self, value: bytes | None, key: bytes | None = None,
                 headers: list[tuple[str, bytes]] | None = None) -> Any:
        """Send bytes as they are: for labels, predictions and records of other formats; return
        the delivery's future, as :meth:`send`."""
        future = self._producer.send(self.topic, value=value, key=key, headers=headers, partition=self._partition)
        future.add_errback(self._on_error)
        self.report.sent += 1
        return future

    def flush(self, timeout_s: float | None = None) -> ProduceReport:
        """Wait until every sent event is acknowledged or failed; return the report."""
        self._producer.flush(timeout=timeout_s)
        self.report.seconds = time.perf_counter() - self._started
        return self.report

    def close(self) -> ProduceReport:
        self.flush()
        self._producer.close()
        return self.report

    def __enter__(self) -> "EventProducer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _partitions_for(producer: KafkaProducer, topic: str, settings: KafkaSettings, tuning: dict[str, Any]) -> set[int]:
    """The topic's partitions, or :class:`TopicNotFoundError` after :data:`TOPIC_WAIT_S` if it does not exist.

    kafka-python's ``partitions_for`` waits ``max_block_ms`` (60 s) for a topic that never comes;
    the setting is lowered for this one call only (sends still block up to the full value), and
    the cluster is asked whether the topic exists before giving up on it.
    """
    max_block_ms = producer.config["max_block_ms"]
    wait_ms = min(max_block_ms, int(TOPIC_WAIT_S * 1000))
    producer.config["max_block_ms"] = wait_ms
    try:
        return producer.partitions_for(topic)
    except KafkaTimeoutError:
        pass
    finally:
        producer.config["max_block_ms"] = max_block_ms
    if not _topic_exists(topic, settings, tuning):
        raise TopicNotFoundError(topic, settings.bootstrap_servers, wait_ms / 1000)
    return producer.partitions_for(topic)  # it exists, e.g. with its leader moving: wait as kafka-python does


def _topic_exists(topic: str, settings: KafkaSettings, tuning: dict[str, Any]) -> bool:
    """Whether the cluster lists ``topic``, asked with the producer's connection settings."""
    from eventml.kafka.topics import admin_client

    with admin_client(settings, **clients.admin_tuning(tuning)) as admin:
        return topic in admin.list_topics()


class _DropTopicLog(logging.Filter):
    """Drops kafka-python's per-retry log lines about one topic (ERROR "not found in cluster metadata")."""

    def __init__(self, topic: str):
        super().__init__()
        self.topic = topic

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.args, tuple) and self.topic in record.args)


@contextlib.contextmanager
def _quiet_about(topic: str) -> Iterator[None]:
    """While waiting for a topic, its missing metadata is eventml's to report, once, not a log line per retry."""
    log, drop = logging.getLogger("kafka.cluster"), _DropTopicLog(topic)
    log.addFilter(drop)
    try:
        yield
    finally:
        log.removeFilter(drop)


def produce(events: Iterable[Event | dict[str, Any]], topic: str, *, bootstrap_servers: str | None = None,
            kafka: KafkaSettings | None = None, rate: float | None = None, progress: bool = True,
            total: int | None = None, key: str | None = None, **config: Any) -> ProduceReport:
    """Write events to a topic and wait until all are acknowledged.

    Parameters
    ----------
    events
        Any iterable of :class:`~eventml.events.Event` or wire-format dicts (a source, a list),
        or of :class:`~eventml.events.Label` for a labels topic.
    topic
        The topic to write to. If it does not exist, a cluster that creates topics on first use
        (eventml's local broker does, with one partition) creates it; on one that does not,
        :class:`~eventml.errors.TopicNotFoundError` says how to create it, within seconds.
    rate
        Target events per second; ``None`` sends as fast as possible.
    progress
        Show a tqdm progress bar.
    total
        Expected number of events, for the progress bar (taken from ``len(events)`` if any).
    key
        The feature whose value keys the records (``key="user"``: a user's events in one partition, in
        order); None keys by event id. See :class:`EventProducer`.
    bootstrap_servers, kafka, **config
        The connection settings (keywords, ``kafka=KafkaSettings(...)``, else the ``EVENTML_*``
        environment; see :mod:`eventml.kafka.settings`) and kafka-python producer settings over
        eventml's defaults.

    Returns
    -------
    ProduceReport
        ``sent``, ``delivered``, ``failed``, ``seconds`` and ``events_per_s``.
    """
    if rate is not None:
        from eventml.sources import rate_limited

        events = rate_limited(events, rate)
    if total is None and hasattr(events, "__len__"):
        total = len(events)
    with EventProducer(topic, bootstrap_servers=bootstrap_servers, kafka=kafka, key=key, **config) as producer:
        with progress_bar(total=total, desc=f"produce {topic}", unit="ev", enabled=progress) as bar:
            for event in events:
                producer.send(event)
                bar.tick()
    return producer.report


def produce_dataframe(df, topic: str, *, target: str | None = None, id_column: str | None = None,
                      ts_column: str | None = None, **kwargs: Any) -> ProduceReport:
    """Write one event per DataFrame row (see :func:`eventml.sources.from_dataframe`)."""
    from eventml.sources import from_dataframe

    events = from_dataframe(df, target=target, id_column=id_column, ts_column=ts_column)
    return produce(events, topic, total=len(df), **kwargs)


class BackgroundProduce:
    """:func:`produce` running in a thread, e.g. a paced stream while a live updater reads it.

    Examples
    --------
    >>> import eventml as em
    >>> job = em.produce_in_background(em.synthetic("sea", 5000), "sea", rate=500)  # doctest: +SKIP
    >>> job.join().delivered  # doctest: +SKIP
    5000
    """

    def __init__(self, events: Iterable[Event | dict[str, Any]], topic: str, **kwargs: Any):
        import threading

        self.report: ProduceReport | None = None
        self._error: BaseException | None = None
        kwargs.setdefault("progress", False)

        def target() -> None:
            try:
                self.report = produce(events, topic, **kwargs)
            except BaseException as exc:  # handed to join()
                self._error = exc

        self._thread = threading.Thread(target=target, name=f"eventml-produce-{topic}", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout_s: float | None = None) -> ProduceReport | None:
        """Wait until every event is sent and acknowledged; return the report (None if the
        timeout came first); re-raise the error if producing failed."""
        self._thread.join(timeout_s)
        if self._error is not None:
            raise self._error
        return self.report


def produce_in_background(events: Iterable[Event | dict[str, Any]], topic: str, **kwargs: Any) -> BackgroundProduce:
    """Start :func:`produce` in a background thread (no progress bar by default) and return
    its handle; ``handle.join()`` gives the :class:`ProduceReport`. Takes the parameters of
    :func:`produce`, e.g. ``rate`` in events per second."""
    return BackgroundProduce(events, topic, **kwargs)

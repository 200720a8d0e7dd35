"""A live updater's two Kafka clients: a transactional producer and a ``read_committed`` consumer.

Both are confluent-kafka (librdkafka) clients made by :mod:`eventml.kafka.rdkafka` from the
updater's :class:`~eventml.kafka.settings.KafkaSettings` (security included). Making them fences any
earlier instance with the same transactional id and aborts what it left open
(``init_transactions``). librdkafka details that matter here:

- "read to the end" compares the offset after the last fetched record with the high watermark
  the last fetch brought (librdkafka's end-of-partition event only comes with the next, empty,
  fetch, up to 500 ms later; it still covers a partition held below its high watermark by an open
  transaction upstream);
- librdkafka reconnects by itself; re-bootstrap is off (``metadata.recovery.strategy=none``):
  after one, librdkafka 2.16 can wait forever for a group coordinator it dropped (#5511), so the
  updater's restore path makes new clients instead;
- a Producer has no ``close()``: after the last commit nothing is queued, and records of a
  transaction that failed are purged; that transaction is aborted by the next
  ``init_transactions`` with this transactional id (or by the broker's transaction timeout);
- after a ``kill -9`` mid-transaction, the first ``InitProducerId`` of the restarted updater meets
  the abort of that transaction in progress (``CONCURRENT_TRANSACTIONS``), and librdkafka asks again
  only after a fixed 500 ms (``rd_kafka_idemp_pid_timer_restart`` in ``rdkafka_idempotence.c``; no
  setting changes it). :class:`ClientsInBackground` makes the clients of a restart while the
  process is still importing its model, and first has the broker finish that abort with a client
  that asks again every 5 ms (:func:`abort_left_open`), so ``init_transactions`` finds nothing in
  progress.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from eventml.errors import KafkaAuthError, KafkaUnavailableError
from eventml.kafka import rdkafka
from eventml.kafka.clients import ClientError as KafkaPythonError
from eventml.kafka.connection import forget, login_error
from eventml.kafka.rdkafka import KafkaError, KafkaException, TopicPartition, kafka_error
from eventml.kafka.settings import KafkaSettings
from eventml.live.merge import InputPartition

__all__ = ["CLIENT_ERRORS", "LiveClients", "ClientsInBackground", "abort_left_open", "connect_with_backoff", "live_id",
           "restart_clients_early", "setup_timeout", "watermarks"]

log = logging.getLogger("eventml.live")
client_log = logging.getLogger("eventml.live.librdkafka")  # librdkafka's own lines, instead of stderr

#: the errors of a Kafka client that send the updater down its restore path (kafka-python's only from
#: eventml.kafka.topics.create_topic, which makes a missing topic)
CLIENT_ERRORS = (KafkaException, KafkaPythonError)
_BATCH = 5000  # messages taken from the consumer's local queue at a time
_COORDINATOR_NOT_READY = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                          KafkaError.COORDINATOR_NOT_AVAILABLE)
_LEADER_MOVING = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)
_SETUP_TIMEOUT_S = 30.0  # at least this long for the calls that set up the clients (a new broker's first
#                          transaction creates its internal topics)


def setup_timeout(reconnect_timeout_s: float) -> float:
    """How long the calls that set up an updater's clients may take."""
    return max(reconnect_timeout_s, _SETUP_TIMEOUT_S)


def connect_with_backoff(connect: Callable[[], None], close: Callable[[], None], timeout_s: float,
                         kafka: KafkaSettings, advice: str = "", first: bool = False) -> None:
    """``connect()`` until it works, at the start (``first``) or after a Kafka failure: ``close()`` and a
    wait between tries (0.2 s, doubling up to 5 s), for up to ``timeout_s``; then a
    :class:`KafkaUnavailableError` naming the address, the last error and ``advice``. Refused credentials
    or certificates are raised at once, as are errors that are not Kafka's (a wrong setting, a state that
    does not match)."""
    deadline = time.monotonic() + timeout_s
    wait = 0.2
    while True:
        try:
            connect()
            return
        except KafkaAuthError:  # credentials or certificates do not get better by waiting
            raise
        except (*CLIENT_ERRORS, KafkaUnavailableError) as exc:
            if time.monotonic() + wait > deadline:
                raise KafkaUnavailableError(
                    f"Kafka at {kafka.bootstrap_servers or 'the default address'} did not "
                    f"{'answer' if first else 'come back'} within {timeout_s:g} s (last error: {exc}){advice}") from None
            close()
            time.sleep(wait)
            wait = min(wait * 2, 5.0)


def watermarks(consumer: Any, tp: TopicPartition, deadline: float) -> tuple[int, int]:
    """The partition's low and high watermarks (``read_committed``: the high one is the last stable offset),
    asked of its leader, again while the leader moves (a broker that stopped or restarts, e.g. while a
    group rebalances) until ``deadline``."""
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=max(0.01, deadline - time.monotonic()), cached=False)
        except KafkaException as exc:
            if exc.args[0].code() not in _LEADER_MOVING or time.monotonic() + 0.1 >= deadline:
                raise
            time.sleep(0.1)


def live_id(name: str) -> str:
    """The consumer group and the transactional id of the live updater named ``name``."""
    return f"eventml-live-{name}"


def end_of_partition(error: KafkaError) -> bool:
    """For an error the consumer delivers in place of a record: True at the end of a partition, False
    for one librdkafka recovers from by itself (e.g. a broker that went away); a fatal one is raised."""
    if error.code() == KafkaError._PARTITION_EOF:
        return True
    if error.fatal():
        raise KafkaException(error)
    log.debug("consumer: %s", error)
    return False


class LiveClients:
    """The producer and consumer of one live updater, made, fenced and closed together.

    Parameters
    ----------
    kafka
        Where the cluster is and how to log in.
    transactional_id, group_id
        The updater's ids, stable across restarts.
    setup_timeout_s
        How long the calls that set the clients up may take.
    producer_config, consumer_config
        More librdkafka settings for either client (e.g. a group member's session timeout).
    """

    def __init__(self, kafka: KafkaSettings, transactional_id: str, group_id: str, setup_timeout_s: float,
                 producer_config: dict | None = None, consumer_config: dict | None = None):
        self.kafka = kafka
        self.setup_timeout_s = setup_timeout_s
        self.brokers_down_at: float | None = None  # when librdkafka said every broker is down
        self.refused: KafkaError | None = None  # a refused login or TLS handshake librdkafka reported
        tuning = {"reconnect.backoff.max.ms": 1000, "metadata.recovery.strategy": "none"}
        # murmur2_random: keyed records go to the partition Java and kafka-python clients choose, so a
        # prediction lands where its event id would; retry.backoff.ms small: nearly every transaction's
        # first AddOffsetsToTxn and AddPartitionsToTxn meet the broker still writing the last commit's
        # markers (CONCURRENT_TRANSACTIONS) and are retried: after 2 ms rather than 20 (send_offsets p99
        # 33 -> 16 ms at 2,000 events/s)
        self._producer_config = {
            **tuning, "transactional.id": transactional_id, "acks": "all", "linger.ms": 5, "retry.backoff.ms": 2,
            "retry.backoff.max.ms": 100, "partitioner": "murmur2_random", **(producer_config or {})}
        self.producer = rdkafka.producer(kafka, self._producer_config, logger=client_log, error_cb=self._on_error)
        self.consumer = None
        try:
            # librdkafka retries a coordinator lookup that finds no broker metadata yet after a fixed
            # 500 ms: with the metadata fetched first, init_transactions takes ~70 ms
            self._wait_for_metadata(setup_timeout_s)
            # fences a zombie and aborts its open transaction; after a kill -9 mid-transaction the first
            # request meets that abort in progress and librdkafka retries it after a fixed 500 ms
            self.producer.init_transactions(setup_timeout_s)
            self.consumer = rdkafka.consumer(kafka, {
                **tuning, "group.id": group_id, "isolation.level": "read_committed", "enable.auto.commit": False,
                "auto.offset.reset": "earliest", "enable.partition.eof": True, **(consumer_config or {})}, logger=client_log,
                error_cb=self._on_error)
        except BaseException:
            self.close()
            raise
        self._topics_ready: set[str] = set()

    def _wait_for_metadata(self, timeout_s: float) -> None:
        """Fetch the cluster's metadata in short waits that serve the error callback: credentials or a
        certificate the broker refuses (e.g. changed since the connection check passed) are one
        sentence at once, not a timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.producer.list_topics(timeout=max(0.01, min(0.5, deadline - time.monotonic())))
                return
            except KafkaException:
                self.producer.poll(0)  # serves the error callback
                if self.refused is not None:
                    forget(self.kafka)  # the next connection check runs in full
                    raise login_error(self.kafka, self.refused.str(),
                                      tls=self.refused.code() == KafkaError._SSL) from None
                if time.monotonic() >= deadline:
                    raise

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's error callback (called inside consume() and the producer's calls)."""
        if error.code() == KafkaError._ALL_BROKERS_DOWN and self.brokers_down_at is None:
            self.brokers_down_at = time.monotonic()
        refused = error.code() == KafkaError._AUTHENTICATION or (
            error.code() == KafkaError._SSL and "certificate" in error.str().lower())  # not a dropped handshake
        if refused and self.refused is None:
            self.refused = error
        # a fatal error's reason is only said here: the calls that fail after it say "Fatal error"
        log.log(logging.WARNING if error.fatal() else logging.DEBUG, "Kafka client error: %s", error)

    # ------------------------------------------------------------------ topics and offsets

    def partitions(self, topic: str) -> list[int]:
        """The partitions of a topic, which is created (one partition) if it does not exist yet."""
        from eventml.kafka.topics import create_topic

        def partitions() -> list[int]:
            meta = self.consumer.list_topics(topic, timeout=self.setup_timeout_s).topics.get(topic)
            return sorted(meta.partitions) if meta is not None and meta.error is None else []

        parts = partitions()
        if not parts:
            log.info("topic %r does not exist: creating it with one partition", topic)
            create_topic(topic, kafka=self.kafka)
            deadline = time.monotonic() + 10
            while not parts and time.monotonic() < deadline:
                time.sleep(0.1)
                parts = partitions()
            if not parts:
                raise KafkaUnavailableError(f"topic {topic!r} was created but has no partitions yet")
        self._topics_ready.add(topic)
        return parts

    def committed(self, inputs: list[InputPartition]) -> dict[str, int]:
        """The offsets the updater's consumer group committed, ``{"topic:partition": offset}``."""
        tps = [TopicPartition(i.topic, i.partition) for i in inputs]
        deadline = time.monotonic() + self.setup_timeout_s
        while True:
            try:
                return rdkafka.committed_offsets(self.consumer, tps, max(0.1, deadline - time.monotonic()))
            except KafkaException as exc:
                # a new broker's group coordinator may not be ready yet: librdkafka says so, and asking
                # again a moment later works
                err = kafka_error(exc)
                code = err.code() if err is not None else None
                if code not in _COORDINATOR_NOT_READY or time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def earliest(self, where: InputPartition) -> int:
        """The first offset the partition still holds."""
        tp = TopicPartition(where.topic, where.partition)
        return self.consumer.get_watermark_offsets(tp, timeout=self.setup_timeout_s, cached=False)[0]

    def assign(self, inputs: list[InputPartition]) -> None:
        """Read each input partition from its ``fetched`` offset."""
        self.consumer.assign([TopicPartition(i.topic, i.partition, i.fetched) for i in inputs])

    def high_watermark(self, where: InputPartition) -> int:
        """The partition's high watermark as the last fetch brought it (-1001 before the first)."""
        return self.consumer.get_watermark_offsets(TopicPartition(where.topic, where.partition), cached=True)[1]

    # ------------------------------------------------------------------ reading and writing

    def poll(self, timeout_s: float) -> list:
        """The messages the consumer has now, or, if none, the first within ``timeout_s`` and what came
        with it (``consume(n, timeout)`` would wait for n messages)."""
        consume = self.consumer.consume
        messages = consume(_BATCH, 0)
        if not messages:
            messages = consume(1, timeout_s)
            if messages:
                messages.extend(consume(_BATCH, 0))
        return messages

    def send(self, topic: str, value: bytes | None, key: bytes | None, partition: int = -1,
             headers: list | None = None) -> bool:
        """Produce one record in the open transaction; False if it is too large for the producer.

        Waits while the producer's local queue is full (a very large transaction); a dead-letter
        topic is created first if it does not exist (on a cluster that does not create topics).
        """
        if topic not in self._topics_ready and topic.endswith(".dlq"):
            self.partitions(topic)
        while True:
            try:
                self.producer.produce(topic, value, key, partition, headers=headers)
                return True
            except BufferError:
                self.producer.poll(0.05)
            except KafkaException as exc:  # librdkafka checks the size before it sends
                if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                    raise
                return False

    def fetch_unread(self, inputs: list[InputPartition], timeout_s: float) -> list[str]:
        """The input partitions that have records after what the consumer read, as each partition's leader says
        now (``read_committed``: its last stable offset), each fetched again from there; one line each."""
        consumer = self.consumer
        tps = [TopicPartition(where.topic, where.partition) for where in inputs]
        deadline = time.monotonic() + timeout_s
        left = []
        for where, tp, position in zip(inputs, tps, consumer.position(tps) if tps else []):
            read = max(position.offset, where.fetched)  # the position is past control records, or not known yet
            end = watermarks(consumer, tp, deadline)[1]
            if where.buf or end > read:
                left.append(f"{where.key} ({end - read} records from offset {read})")
                if not where.buf:
                    consumer.resume([tp])  # a no-op unless paused
                    consumer.seek(TopicPartition(where.topic, where.partition, read))
        return left

    def wake_fetchers(self, timeout_s: float = 0.5) -> None:
        """Have the consumer fetch its partitions again at once after a rebalance callback.

        librdkafka pauses every assigned partition while the application's rebalance callback runs and resumes
        them after it, but a broker thread whose partitions were all paused is not told: it sleeps until its
        fixed longest wait (``rd_kafka_max_block_ms``, 1 s) is over before it fetches again, so a group member's
        partitions that did not move paused 0.4-1.0 s at every rebalance. A request to each leader (the
        watermarks of one of its partitions) wakes its thread; what it answers is not needed.
        """
        consumer, leaders, woken = self.consumer, {}, set()
        for tp in consumer.assignment():
            try:
                if tp.topic not in leaders:
                    leaders[tp.topic] = {}  # asked once, even if the question fails
                    meta = consumer.list_topics(tp.topic, timeout=timeout_s).topics.get(tp.topic)
                    leaders[tp.topic] = {number: part.leader for number, part in (meta.partitions if meta else {}).items()}
                leader = leaders[tp.topic].get(tp.partition, -1)
                if leader not in woken:
                    woken.add(leader)
                    consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=timeout_s, cached=False)
            except KafkaException:  # a leader that moves or a broker that is down: its thread woke anyway
                log.debug("waking the fetcher of %s [%d] failed", tp.topic, tp.partition, exc_info=True)

    def check_brokers(self, topic: str, timeout_s: float) -> None:
        """After librdkafka said every broker is down: is one back? (Raises if none answers.)"""
        self.consumer.list_topics(topic, timeout=timeout_s)
        self.brokers_down_at = None

    def abort_if_needed(self, error: BaseException, timeout_s: float) -> bool:
        """Abort the open transaction at once if ``error`` requires it (``init_transactions`` would
        abort it too, later); False if that abort failed."""
        err = kafka_error(error)
        if err is not None and err.txn_requires_abort():
            try:
                self.producer.abort_transaction(timeout_s)
            except KafkaException:
                log.debug("aborting the failed transaction failed", exc_info=True)
                return False
        return True

    def renew_producer(self, timeout_s: float) -> None:
        """Replace the producer with a new one of the same transactional id (whose ``init_transactions`` aborts
        the open transaction and fences the old one), e.g. after an error that left the old one's sequence
        numbers out of step with the broker's; the consumer, and so the group membership, stays."""
        old, self.producer = self.producer, None
        try:
            old.purge()
        except Exception:
            log.debug("purging the producer failed", exc_info=True)
        self.producer = rdkafka.producer(self.kafka, self._producer_config, logger=client_log,
                                         error_cb=self._on_error)
        self.producer.init_transactions(timeout_s)

    def close(self) -> None:
        consumer, producer = self.consumer, self.producer
        self.consumer = self.producer = None
        if consumer is not None:
            try:
                consumer.close()
            except Exception:  # a client of a dead broker may fail to close: it is dropped anyway
                log.debug("closing the consumer failed", exc_info=True)
        if producer is not None:
            try:
                producer.purge()
            except Exception:
                log.debug("purging the producer failed", exc_info=True)


class ClientsInBackground:
    """:class:`LiveClients` made in a daemon thread, so that a starting process makes them (metadata,
    ``init_transactions``, the consumer: network waits, the GIL released) while it imports its model.

    :meth:`result` waits for them (or raises what making them raised); :meth:`discard` closes them
    once made, if nobody takes them.
    """

    def __init__(self, kafka: KafkaSettings, transactional_id: str, group_id: str, setup_timeout_s: float):
        self.kafka, self.transactional_id, self.group_id = kafka, transactional_id, group_id
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._clients: LiveClients | None = None
        self._error: BaseException | None = None
        self._discarded = False
        threading.Thread(target=self._make, args=(setup_timeout_s,), name="eventml-live-connect", daemon=True).start()

    def _make(self, setup_timeout_s: float) -> None:
        try:
            abort_left_open(self.kafka, self.transactional_id)
            clients = LiveClients(self.kafka, self.transactional_id, self.group_id, setup_timeout_s)
        except BaseException as exc:  # handed to result()
            self._error = exc
        else:
            with self._lock:
                self._clients = clients
                if self._discarded:
                    self._close()
        self._done.set()

    def matches(self, kafka: KafkaSettings, transactional_id: str, group_id: str) -> bool:
        """True if these clients are the ones an updater with these settings and ids would make."""
        return (kafka, transactional_id, group_id) == (self.kafka, self.transactional_id, self.group_id)

    def result(self) -> LiveClients:
        self._done.wait()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        clients, self._clients = self._clients, None
        return clients

    def _close(self) -> None:
        if self._clients is not None:
            self._clients.close()
            self._clients = None

    def discard(self) -> None:
        """Close the clients now, or as soon as they are made (without waiting for them)."""
        with self._lock:
            self._discarded = True
            self._close()


def abort_left_open(kafka: KafkaSettings, transactional_id: str, timeout_s: float = 3.0) -> None:
    """Have the broker abort the transaction a killed updater left open, asking again every 5 ms until it
    is done, so that librdkafka's ``init_transactions`` then finds nothing in progress (it would ask again
    only after a fixed 500 ms, see the module docstring). A kafka-python producer with the updater's
    transactional id does it (its ``InitProducerId`` starts the abort and is retried after
    ``retry_backoff_ms``) and is closed unused; the updater's own producer fences it at once. Any failure is
    left to ``init_transactions``, which aborts the transaction too, later."""
    from eventml.kafka import clients as kafka_python

    started = time.monotonic()
    try:
        producer = kafka_python.producer(kafka, transactional_id=transactional_id, retry_backoff_ms=5,
                                         max_block_ms=int(timeout_s * 1000))
        try:
            producer.init_transactions()
        finally:
            producer.close(timeout=0)
    except Exception as exc:  # e.g. no broker: init_transactions says so, with its own timeout
        log.debug("aborting the open transaction of %s ahead of init_transactions failed: %s", transactional_id, exc)
    else:
        log.debug("transactions of %s completed in %.3f s", transactional_id, time.monotonic() - started)


def restart_clients_early(state_dir: str | Path, kafka: KafkaSettings, wanted: dict[str, Any], name: str | None,
                          setup_timeout_s: float) -> ClientsInBackground | None:
    """Start making the clients of the updater a state directory belongs to, for a restart.

    None on a first start (no ``updater.json``) or when ``updater.json`` names another updater
    than ``wanted`` (topics and model) and ``name`` describe, so that nothing is fenced before the
    updater itself says what is wrong (:func:`eventml.live.state.read_identity`).
    """
    try:
        saved = json.loads((Path(state_dir) / "updater.json").read_text())  # state.IDENTITY_FILE
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or "name" not in saved or any(saved.get(k) != v for k, v in wanted.items()):
        return None
    if name is not None and name != saved["name"]:
        return None
    ids = live_id(saved["name"])
    return ClientsInBackground(kafka, ids, ids, setup_timeout_s)

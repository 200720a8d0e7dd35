"""The live updater: consume events, predict, publish, learn, checkpoint — exactly once.

For every event the updater predicts with the current model (before learning), publishes a
:class:`~eventml.events.Prediction` keyed by the event id, and learns as soon as the label is
known: in the event itself, or later from a labels topic, joined to the features kept from
prediction time. Pending features are bounded by a time to live (seconds of event time) and a
maximum count; the ones that expire are counted, as are labels for unknown or expired ids.
Records that break the wire format go, unchanged, to ``<topic>.dlq`` and are counted. So does an
event the model fails on (reason ``model_error``, the message naming the learner and its exception):
no prediction is published for it, and the run goes on. A model that raised in ``learn_one`` may
have changed part of its state first; a restart makes the same decision for the same event, since
it replays the same records on the same committed model. A label the model fails to learn from
goes to the labels topic's DLQ the same way (its event's prediction was already published).

Kafka client
------------
The updater's consumer and transactional producer are confluent-kafka (librdkafka: C, with its
own I/O threads); the rest of eventml, and :func:`read_predictions`, use kafka-python. The reason
is speed. On a 2-core machine, with river StandardScaler + LogisticRegression, the live loop on
kafka-python ran at 0.23x the same model's in-memory prequential rate: kafka-python does its
protocol work (decoding fetches, building record batches) in Python, next to the model. On
librdkafka it runs at 0.47-0.63x (medians of 3 rounds in separate runs on a shared machine),
and predictions become readable 20-30 ms (p50) and 40-80 ms (p99) after their event is
written, at 500 and 2,000 events/s (kafka-python: 30-31 and 83-100 ms). See ``benchmarks/bench_live.py``;
``benchmarks/experiment_confluent.py`` compares the two clients.

How "exactly once" works
------------------------
The updater reads with ``isolation.level=read_committed`` and writes with a *transactional*
producer. It works in transactions of up to ``checkpoint_every`` input records or
``checkpoint_interval_s`` seconds, and closes a transaction early once it has read every input
partition to its end (so at a steady produce rate predictions become readable within tens of
milliseconds, while a replay fills transactions to the limits); such early commits are spaced
so that writing snapshots takes at most a quarter of the time (a big model's snapshot, e.g.
river_arf's 4 MB in ~45 ms, means fewer, larger transactions). Inside one transaction
it publishes the predictions and the dead letters of its records; at the end it writes a
*snapshot* to the state directory (the model, the pending features, the metrics, the counters,
and the next offset of every input partition; see :mod:`eventml.checkpoint`), then adds the
input offsets to the transaction (``send_offsets_to_transaction``) and commits. So the
predictions, the dead letters and the consumer offsets become visible together or not at all,
and the snapshot that goes with the committed offsets is already on disk. Older snapshots are
deleted only after the commit. The snapshot is the one thing outside the transaction; it is
named after the offsets it follows, so a restart uses it only if those offsets committed.

On start the updater calls ``init_transactions`` with a transactional id that is stable for
its state directory, which fences a zombie instance and aborts whatever transaction it left
open. It then reads the committed offsets of its consumer group from Kafka and loads the
snapshot written for exactly those offsets (a snapshot ahead of them belongs to an aborted
transaction and is ignored). No committed offsets and no snapshot means a fresh start from the
beginning of the topics. If a Kafka call fails, or a transaction step does not finish within
``reconnect_timeout_s``, the updater drops its clients and does the same restore, retrying
with backoff for up to ``reconnect_timeout_s``.

Guaranteed: after a ``kill -9`` at any moment (or a broker restart) and a restart with the
same state directory, a ``read_committed`` reader of the predictions topic sees exactly one
prediction per input event, and the model ends equal to the model of an uninterrupted run. The
model equality needs the same processing order after a restart: the input partitions are
merged by record timestamp (at each step the partition whose next record is oldest goes first;
events before labels on a tie, then the lower partition number; within a partition, offset
order, so write a labels topic in time order), and the updater only moves on once every
partition has a record buffered or has been read to its end. Over topics that are already
written (a replay, the tests) this order is fixed; while producers are still writing, a label
that arrives after its partition was read to the end may be merged later than its timestamp
says, so a restarted run can learn in a slightly different order. Predictions are exactly once
in every case. librdkafka reconnects by itself, so a broker that stops and comes back within
``reconnect_timeout_s`` is ridden through inside the open transaction (the test restarts the
broker mid-run); an error that does surface aborts to the restore path above. Not guaranteed: readers with ``read_uncommitted``
also see predictions of aborted transactions; predictions are readable only once their
transaction commits, so while a backlog is read they trail the events by up to
``checkpoint_interval_s``.

librdkafka details that matter here: "read to the end" compares the offset after the last
fetched record with the high watermark the last fetch brought (librdkafka's end-of-partition
event only comes with the next, empty, fetch, up to 500 ms later; it still covers a partition
held below its high watermark by an open transaction upstream). librdkafka 2.16's
``send_offsets_to_transaction`` can ignore its timeout (librdkafka issue #5456), and after a
re-bootstrap it can wait forever for a group coordinator it dropped (#5511). So re-bootstrap is
off (``metadata.recovery.strategy=none``: the restore path makes new clients instead), and the
commit step runs in a helper thread that the updater stops waiting for after
``reconnect_timeout_s`` + 2 s. A producer stuck in such a call is left to its thread (the next
``init_transactions`` fences it) and the run restores.

Examples
--------
>>> from eventml.live import LiveUpdater
>>> updater = LiveUpdater("sea", "sea-predictions", model="river_logreg",
...                       state_dir="runs/live", idle_timeout_s=5)  # doctest: +SKIP
>>> updater.run().events  # doctest: +SKIP
20000
>>> updater.summary()[["events", "accuracy", "rolling_accuracy", "model_version"]]  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import json
import logging
import os
import queue
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eventml.checkpoint import find_snapshot, list_snapshots, load_snapshot, prune_snapshots, write_snapshot
from eventml.dlq import dead_letter_headers, dlq_topic, shorter_copies
from eventml.errors import (ConfigError, EventFormatError, EventmlError, KafkaAuthError, KafkaUnavailableError,
                            ModelError, SnapshotError)
from eventml.kafka import rdkafka
from eventml.kafka.clients import ClientError as KafkaPythonError
from eventml.kafka.rdkafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from eventml.kafka.settings import KafkaSettings
from eventml.scoring import Scorer
from eventml.events import Prediction, decode_event, decode_label, decode_prediction, encode_prediction
from eventml.learners import CLASSIFICATION, make_learner
from eventml.progress import progress_bar

__all__ = ["LiveUpdater", "LiveStats", "load_model", "read_predictions", "SnapshotError"]

log = logging.getLogger(__name__)
_client_log = logging.getLogger(f"{__name__}.librdkafka")  # librdkafka's own lines, instead of stderr

#: Test hook: ``"before_commit:N"`` or ``"after_commit:N"`` makes the process SIGKILL itself
#: between writing the N-th snapshot of this process and committing it, or right after the commit.
KILL_ENV = "EVENTML_LIVE_KILL_AT"

_WAIT = object()  # "a partition may still have earlier records: poll before choosing"
_EVENTS, _LABELS = 0, 1
_STATE_FILE = "updater.json"
_SNAPSHOT_SHARE = 0.25  # commits for being caught up spend at most this share of the time on snapshots
_BATCH = 5000  # messages taken from the consumer's local queue at a time
_GRACE_S = 2.0  # for librdkafka to report its own timeout before the updater stops waiting for it
_SETUP_TIMEOUT_S = 30.0  # at least this long for the calls that set up the clients (a new broker's first
#                          transaction creates its internal topics)
#: the errors of a Kafka client that send the updater down its restore path (kafka-python's only from
#: eventml.kafka.topics.create_topic, which makes a missing topic)
_CLIENT_ERRORS = (KafkaException, KafkaPythonError)


@dataclasses.dataclass(frozen=True)
class LiveStats:
    """The live figures of an updater, as of its last committed transaction.

    ``score`` and ``rolling_score`` are the cumulative and rolling value (river
    ``utils.Rolling`` over ``rolling_window`` scored predictions) of ``metric``: accuracy for
    classifiers, MAE for regressors. Latencies are from the time an event was written to Kafka
    (its record timestamp) to the commit that made its prediction readable, over the last
    2,000 events. ``lag`` is how many records of the events topic are not read yet.
    ``dead_letters`` counts every record sent to a DLQ, ``model_errors`` those of them the model
    failed on.

    Examples
    --------
    >>> stats = LiveStats(events=1000, labelled=900, model_version=900, score=0.95)
    >>> print(stats.to_dict()["accuracy"], stats.to_dict()["model_version"])
    0.95 900
    """

    events: int = 0
    labelled: int = 0
    model_version: int = 0
    metric: str = "accuracy"
    score: float | None = None
    rolling_score: float | None = None
    events_per_s: float = 0.0
    lag: int | None = None
    latency_p50_s: float | None = None
    latency_p99_s: float | None = None
    dead_letters: int = 0
    model_errors: int = 0
    expired: int = 0
    unknown_labels: int = 0
    pending: int = 0
    restarts: int = 0
    transactions: int = 0
    running: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The figures as a flat dict (``score`` named after the metric, e.g. ``accuracy``)."""
        out = dataclasses.asdict(self)
        out[self.metric] = out.pop("score")
        out[f"rolling_{self.metric}"] = out.pop("rolling_score")
        return out


@dataclasses.dataclass
class _State:
    """What a snapshot holds: everything needed to resume exactly where the commit left off."""

    track: Any  # eventml.scoring.Scorer: the learner and its cumulative and rolling metrics
    offsets: dict[str, int]
    pending: collections.OrderedDict = dataclasses.field(default_factory=collections.OrderedDict)
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    dlq_reasons: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    rows: list = dataclasses.field(default_factory=list)
    sequence: int = 0
    newest_ts: float = float("-inf")


class _Input:
    """One input partition: its records read but not processed yet, and how far it has been fetched."""

    __slots__ = ("topic", "partition", "key", "rank", "tp", "buf", "fetched", "eof")

    def __init__(self, topic: str, partition: int, rank: int):
        self.topic, self.partition, self.rank = topic, partition, rank
        self.key = f"{topic}:{partition}"  # as in _State.offsets and the snapshots' names
        self.tp = TopicPartition(topic, partition)
        self.buf: collections.deque = collections.deque()
        self.fetched = 0  # the offset after the last record taken from the consumer
        self.eof = False  # the consumer said it reached the end (of the last stable offset)


class _BoundedCalls:
    """Runs calls in a daemon thread and waits for each at most a given time.

    librdkafka 2.16's ``send_offsets_to_transaction`` can block past its own timeout: its request
    to the group coordinator never checks it (librdkafka issue #5456), and after a broker restart
    it may wait for a coordinator that librdkafka has dropped (#5511). A call that does not return
    in time is left to its thread, which keeps the client it uses alive (destroying a client
    inside a call would crash), and the next call gets a new thread.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue | None = None

    @staticmethod
    def _serve(requests: queue.SimpleQueue) -> None:
        while (request := requests.get()) is not None:
            function, done, result = request
            try:
                result.append((True, function()))
            except BaseException as exc:  # handed to the waiting thread
                result.append((False, exc))
            del function, request  # a stuck call's client is released once it returns
            done.set()

    def call(self, function: Any, timeout_s: float) -> Any:
        """``function()``, or a KafkaException (_TIMED_OUT) if it takes longer than ``timeout_s``."""
        if self._requests is None:
            self._requests = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(self._requests,), name="eventml-live-commit",
                             daemon=True).start()
        done, result = threading.Event(), []
        self._requests.put((function, done, result))
        if not done.wait(timeout_s):
            self._requests.put(None)  # the stuck thread ends once its call returns
            self._requests = None
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT,
                                            f"a transaction step did not finish within {timeout_s:g} s"))
        ok, value = result[0]
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Let the thread end (after its call, if one is still running); a next call starts another."""
        if self._requests is not None:
            self._requests.put(None)
            self._requests = None


def _fenced(error: KafkaException) -> bool:
    """True when another producer with the same transactional id took over (a fatal error)."""
    err = error.args[0] if error.args else None
    if not isinstance(err, KafkaError):
        return False
    code = err.code()
    return code in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED) or (
        code == KafkaError.INVALID_PRODUCER_EPOCH and err.fatal())


def _positive(name: str, value: Any, allow_none: bool = False, kind: type = int) -> Any:
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool) and value > 0
    if not ok:
        accepted = "a positive number" if kind is float else "a positive integer"
        raise ConfigError(f"{name} must be {accepted}{' or None' if allow_none else ''}, got {value!r}")
    return value


class LiveUpdater:
    """Consume events, predict, publish predictions, learn, and checkpoint, exactly once.

    Parameters
    ----------
    events_topic
        Topic of the events (wire format; ``label`` optional).
    predictions_topic
        Topic the predictions are published to, keyed by event id.
    model
        A learner name (see :func:`eventml.learners.learner_names`) or a learner object. On a
        restart the model comes from the snapshot; the name must match the state directory's.
    state_dir
        Folder of the snapshots and ``updater.json`` (the ids of this updater). Restart with
        the same folder to resume; use a new folder to start over.
    labels_topic
        Topic of late labels ``{"id": ..., "label": ...}``, or None if labels come in events.
    bootstrap_servers
        Kafka address (default: ``$EVENTML_BOOTSTRAP_SERVERS`` or ``127.0.0.1:9092``).
    kafka, **connection
        The other connection settings (``security_protocol``, ``sasl_mechanism``,
        ``sasl_username``, ``sasl_password``, ``ssl_cafile``, ...) as keywords or as one
        :class:`~eventml.kafka.settings.KafkaSettings`, else the ``EVENTML_*`` environment; both
        confluent-kafka clients and the topic creation use them (see :mod:`eventml.kafka.settings`).
    max_events
        Stop once this many events have been predicted *in total*, counted across restarts
        (a restarted run finishes the same job). Dead letters do not count.
    idle_timeout_s
        Stop when no input record arrived for this long. With neither limit, :meth:`run`
        goes on until :meth:`stop`.
    checkpoint_every
        Input records (events, labels, dead letters) per transaction at most.
    checkpoint_interval_s
        Seconds a transaction stays open at most: predictions become readable by then (sooner
        when the updater has read everything there is).
    label_ttl_s
        Features of an unlabelled event wait this long, in event time, for their label (None:
        no limit). Only kept when there is a ``labels_topic``.
    max_pending
        At most this many unlabelled events wait; the oldest expire first.
    rolling_window
        Window of the rolling metric, in scored predictions.
    reconnect_timeout_s
        How long to wait for a broker that went away before giving up.
    name
        Name of this updater; its consumer group and transactional id derive from it. Default:
        the state directory's name plus a random suffix, fixed in ``updater.json``.
    seed
        Seed for a learner given by name.
    progress
        Show a tqdm progress bar of the events.
    summary_every
        A row of :meth:`summary` every this many events (and at the end of a run).

    Examples
    --------
    >>> updater = LiveUpdater("sea", "sea-predictions", model="no_such_model", state_dir="s")
    Traceback (most recent call last):
    ...
    eventml.errors.ConfigError: unknown learner 'no_such_model'; known learners: batch_forest, ...
    """

    def __init__(self, events_topic: str, predictions_topic: str, *, model: Any = "river_logreg",
                 state_dir: str | os.PathLike, labels_topic: str | None = None,
                 bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                 max_events: int | None = None,
                 idle_timeout_s: float | None = None, checkpoint_every: int = 10_000,
                 checkpoint_interval_s: float = 0.5, label_ttl_s: float | None = None,
                 max_pending: int = 100_000, rolling_window: int = 500, reconnect_timeout_s: float = 60.0,
                 name: str | None = None, seed: int | None = 42, progress: bool = False,
                 summary_every: int = 1000, **connection: Any):
        self.learner = make_learner(model, seed=seed)
        if max_events is not None and (isinstance(max_events, bool) or not isinstance(max_events, int)
                                       or max_events < 0):
            raise ConfigError(f"max_events must be 0 or a positive integer, or None, got {max_events!r}")
        if labels_topic is not None and labels_topic == events_topic:
            raise ConfigError("labels_topic must differ from events_topic (labels inside events need no topic)")
        if predictions_topic in (events_topic, labels_topic):
            raise ConfigError("predictions_topic must differ from the input topics")
        self.events_topic = events_topic
        self.predictions_topic = predictions_topic
        self.labels_topic = labels_topic
        self.state_dir = Path(state_dir)
        self.kafka = KafkaSettings.resolve(kafka, bootstrap_servers=bootstrap_servers, **connection)
        self.bootstrap_servers = self.kafka.bootstrap_servers
        self.max_events = max_events
        self.idle_timeout_s = _positive("idle_timeout_s", idle_timeout_s, True, float)
        self.checkpoint_every = _positive("checkpoint_every", checkpoint_every)
        self.checkpoint_interval_s = _positive("checkpoint_interval_s", checkpoint_interval_s, kind=float)
        self.label_ttl_s = _positive("label_ttl_s", label_ttl_s, True, float)
        self.max_pending = _positive("max_pending", max_pending)
        self.rolling_window = _positive("rolling_window", rolling_window)
        self.reconnect_timeout_s = _positive("reconnect_timeout_s", reconnect_timeout_s, kind=float)
        self.summary_every = _positive("summary_every", summary_every)
        self.progress = progress
        self.metric = "accuracy" if self.learner.task == CLASSIFICATION else "mae"
        self._metrics = ["accuracy", "log_loss"] if self.learner.task == CLASSIFICATION else ["mae"]
        self.name = self._identity(name)

        self.stats = LiveStats(metric=self.metric)
        self._state: _State | None = None
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._inputs: list[_Input] = []
        self._dlq_ready: set[str] = set()  # dead-letter topics known to exist
        self._brokers_down_at: float | None = None  # when librdkafka said every broker is down
        self._setup_timeout_s = max(self.reconnect_timeout_s, _SETUP_TIMEOUT_S)
        self._bounded = _BoundedCalls()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._latencies: collections.deque = collections.deque(maxlen=2000)
        self._rates: collections.deque = collections.deque(maxlen=20)
        self._kill_at = self._parse_kill_hook()

    # ------------------------------------------------------------------ identity and hooks

    def _identity(self, name: str | None) -> str:
        """Read or create ``updater.json``: the name behind the group and transactional ids."""
        path = self.state_dir / _STATE_FILE
        wanted = {"events_topic": self.events_topic, "labels_topic": self.labels_topic,
                  "predictions_topic": self.predictions_topic, "model": self.learner.name}
        if path.exists():
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise SnapshotError(f"{path} is unreadable ({exc}); it names this updater's Kafka ids") from None
            different = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
            if different:
                text = "; ".join(f"{k} was {old!r}, now {new!r}" for k, (old, new) in different.items())
                raise ConfigError(f"state_dir {self.state_dir} belongs to another live updater ({text}); "
                                  "use a new state_dir to start over")
            if name is not None and name != saved["name"]:
                raise ConfigError(f"state_dir {self.state_dir} belongs to updater {saved['name']!r}, not {name!r}")
            return saved["name"]
        name = name or f"{self.state_dir.resolve().name}-{uuid.uuid4().hex[:8]}"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"name": name, **wanted}, indent=1))
        os.replace(tmp, path)
        return name

    @property
    def group_id(self) -> str:
        """The consumer group whose committed offsets say how far the updater got."""
        return f"eventml-live-{self.name}"

    @property
    def transactional_id(self) -> str:
        """Stable across restarts, so a restart fences the previous instance."""
        return f"eventml-live-{self.name}"

    @staticmethod
    def _parse_kill_hook() -> tuple[str, int] | None:
        value = os.environ.get(KILL_ENV)
        if not value:
            return None
        where, _, n = value.partition(":")
        if where not in ("before_commit", "after_commit") or not n.isdigit():
            raise ConfigError(f"{KILL_ENV} must be before_commit:N or after_commit:N, got {value!r}")
        return where, int(n)

    def _maybe_die(self, where: str, transactions: int) -> None:
        if self._kill_at is not None and self._kill_at == (where, transactions):
            os.kill(os.getpid(), signal.SIGKILL)

    # ------------------------------------------------------------------ connecting and restoring

    def _partitions(self, topic: str) -> list[int]:
        """The partitions of a topic, which is created (one partition) if it does not exist yet."""
        from eventml.kafka.topics import create_topic

        def partitions() -> list[int]:
            meta = self._consumer.list_topics(topic, timeout=self._setup_timeout_s).topics.get(topic)
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
        return parts

    def _fresh_state(self, offsets: dict[str, int]) -> _State:
        return _State(track=Scorer(self.learner.clone(), self._metrics, self.rolling_window), offsets=offsets)

    def _client_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        # librdkafka names. librdkafka reconnects by itself; its backoff grows to 10 s by default, 1 s
        # here: a broker that comes back is found within a second. When every broker is down,
        # librdkafka 2.16 would also re-bootstrap, dropping the brokers it knew, and a transaction step
        # can then wait forever for a dropped group coordinator (librdkafka #5511): no re-bootstrap
        # ("none"), the updater's restore path makes new clients instead
        return {"reconnect.backoff.max.ms": 1000, "metadata.recovery.strategy": "none", **settings}

    def _connect(self) -> None:
        """Make the clients, fence any previous instance, and load the committed state."""
        self._close_clients()
        timeout = self._setup_timeout_s
        self._brokers_down_at = None
        # murmur2_random: keyed records go to the partition Java and kafka-python clients choose, so a
        # prediction lands where its event id would; retry_backoff_ms as small as kafka-python's was
        # (the first request of a transaction that starts while the broker completes the last commit
        # is retried). The factory checks the connection first: one sentence at once, not a timeout later
        self._producer = rdkafka.producer(self.kafka, self._client_settings({
            "transactional.id": self.transactional_id, "acks": "all", "linger.ms": 5, "retry.backoff.ms": 20,
            "partitioner": "murmur2_random"}), logger=_client_log, error_cb=self._on_client_error)
        # librdkafka retries a coordinator lookup that finds no broker metadata yet after a fixed
        # 500 ms: with the metadata fetched first, init_transactions takes ~70 ms
        self._producer.list_topics(timeout=timeout)
        # fences a zombie and aborts its open transaction; after a kill -9 mid-transaction the first
        # request meets that abort in progress and librdkafka retries it after a fixed 500 ms
        self._producer.init_transactions(timeout)
        self._consumer = rdkafka.consumer(self.kafka, self._client_settings({
            "group.id": self.group_id, "isolation.level": "read_committed", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": True}), logger=_client_log,
            error_cb=self._on_client_error)
        # one partition: nothing to choose, and skipping the key hash saves time per prediction
        outputs = self._partitions(self.predictions_topic)
        self._prediction_partition = 0 if outputs == [0] else -1  # -1: by key
        inputs = [_Input(topic, p, rank)
                  for rank, topic in ((_EVENTS, self.events_topic), (_LABELS, self.labels_topic)) if topic is not None
                  for p in self._partitions(topic)]  # its metadata now known: no 500 ms wait at the first fetch
        committed = {}
        for tp in self._consumer.committed([i.tp for i in inputs], timeout=timeout):
            if tp.error is not None:
                raise KafkaException(tp.error)
            if tp.offset >= 0:  # OFFSET_INVALID (-1001): nothing committed
                committed[f"{tp.topic}:{tp.partition}"] = tp.offset
        state = self._restore(committed)
        for i in inputs:
            if i.key not in state.offsets:  # a partition this state never read: from its beginning
                state.offsets[i.key] = self._consumer.get_watermark_offsets(i.tp, timeout=timeout, cached=False)[0]
            i.fetched = state.offsets[i.key]
        self._consumer.assign([TopicPartition(i.topic, i.partition, i.fetched) for i in inputs])
        self._group_metadata = self._consumer.consumer_group_metadata()
        self._inputs = inputs
        self._by_partition = {(i.topic, i.partition): i for i in inputs}
        self._event_inputs = [i for i in inputs if i.rank == _EVENTS]
        self._tps = {i.key: (i.topic, i.partition) for i in inputs}
        self._empty_polls = 0
        self._state = state

    def _restore(self, committed: dict[str, int]) -> _State:
        if not committed:
            later = [p for p in list_snapshots(self.state_dir) if int(p.name.split("-")[1]) > 1]
            if later:
                raise SnapshotError(
                    f"consumer group {self.group_id!r} has no committed offsets, but {self.state_dir} holds "
                    f"snapshot {later[-1].name} of a later transaction: the offsets were deleted or expired. "
                    "Resuming would repeat predictions; use a new state_dir to start over.")
            return self._fresh_state({})
        path = find_snapshot(self.state_dir, committed)
        if path is None:
            raise SnapshotError(
                f"consumer group {self.group_id!r} committed offsets {committed}, but {self.state_dir} has no "
                "snapshot for them; the state directory is not the one this updater wrote")
        snapshot = load_snapshot(path)
        if snapshot.offsets != committed:
            raise SnapshotError(f"snapshot {path} is for offsets {snapshot.offsets}, not the committed {committed}")
        state: _State = snapshot.state
        state.counts["restarts"] += 1
        log.info("restored %s: %d events, model version %d", path.name, state.counts["events"],
                 state.counts["learned"])
        return state

    def _on_client_error(self, error: KafkaError) -> None:
        """librdkafka's error callback (called inside consume() and the producer's calls)."""
        if error.code() == KafkaError._ALL_BROKERS_DOWN and self._brokers_down_at is None:
            self._brokers_down_at = time.monotonic()
        log.debug("Kafka client error: %s", error)

    def _check_brokers(self) -> None:
        """Between transactions, after librdkafka said every broker is down: is one back?

        librdkafka reconnects by itself, so this only asks for metadata; if no broker answers,
        the error sends the run down the restore path, which waits ``reconnect_timeout_s``.
        """
        self._consumer.list_topics(self.events_topic, timeout=min(self.reconnect_timeout_s, 5.0))
        self._brokers_down_at = None

    def _close_clients(self) -> None:
        consumer, producer = self._consumer, self._producer
        self._consumer = self._producer = None
        self._inputs = []
        if consumer is not None:
            try:
                consumer.close()
            except Exception:  # a client of a dead broker may fail to close: it is dropped anyway
                log.debug("closing the consumer failed", exc_info=True)
        if producer is not None:
            # a Producer has no close(): after the last commit nothing is queued, and records of a
            # transaction that failed are purged here; that transaction is aborted by the next
            # init_transactions with this transactional id (or by the broker's transaction timeout)
            try:
                producer.purge()
            except Exception:
                log.debug("purging the producer failed", exc_info=True)
            del producer

    def _reconnect(self, error: BaseException) -> None:
        """After a Kafka failure: drop the clients and restore the committed state, with backoff."""
        log.warning("Kafka failed (%s); restoring the last committed state", error)
        err = error.args[0] if isinstance(error, KafkaException) and error.args else None
        if self._producer is not None and isinstance(err, KafkaError) and err.txn_requires_abort():
            try:  # the next init_transactions would abort it too; this is sooner
                self._producer.abort_transaction(min(self.reconnect_timeout_s, 5.0))
            except KafkaException:
                log.debug("aborting the failed transaction failed", exc_info=True)
        self._close_clients()
        deadline = time.monotonic() + self.reconnect_timeout_s
        wait = 0.2
        while True:
            try:
                self._connect()
                return
            except KafkaAuthError:  # credentials or certificates do not get better by waiting
                raise
            except (*_CLIENT_ERRORS, KafkaUnavailableError) as exc:
                if time.monotonic() + wait > deadline:
                    raise KafkaUnavailableError(
                        f"Kafka at {self.bootstrap_servers or 'the default address'} did not come back within "
                        f"{self.reconnect_timeout_s:g} s (last error: {exc}); restart the updater with the "
                        f"same state_dir ({self.state_dir}) to resume") from None
                self._close_clients()
                time.sleep(wait)
                wait = min(wait * 2, 5.0)

    # ------------------------------------------------------------------ reading in a fixed order

    def _poll(self, timeout_s: float) -> bool:
        """Move the records the consumer has into the partitions' buffers; True if there were any.

        ``consume(n, timeout)`` waits until it has n messages or the timeout is over, so it is asked
        for what is there (timeout 0) and, only when that is nothing, waits for one.
        """
        consume = self._consumer.consume
        messages = consume(_BATCH, 0)
        if not messages:
            messages = consume(1, timeout_s)
            if messages:
                messages.extend(consume(_BATCH, 0))
        got = False
        by_partition = self._by_partition
        for message in messages:
            error = message.error()
            where = by_partition[message.topic(), message.partition()]
            if error is None:
                where.buf.append(message)
                where.fetched = message.offset() + 1
                where.eof = False
                got = True
            elif error.code() == KafkaError._PARTITION_EOF:
                where.eof = True
            elif error.fatal():
                raise KafkaException(error)
            else:  # librdkafka recovers from these by itself (e.g. a broker that went away)
                log.debug("consumer: %s", error)
        return got

    def _drained(self, where: _Input) -> bool:
        """True when every record of the partition that is there now has been fetched.

        The consumer's "end of partition" event comes only with the next, empty, fetch (up to
        ``fetch.wait.max.ms``, 500 ms, later), so this compares with the high watermark the last
        fetch brought, as kafka-python's ``highwater`` did; the event is for a partition that
        stays below it (an open transaction upstream: read_committed stops at the last stable offset).
        """
        if where.eof:
            return True
        high = self._consumer.get_watermark_offsets(where.tp, cached=True)[1]
        return high >= 0 and where.fetched >= high

    def _caught_up(self) -> bool:
        """True when no record is buffered and every input partition is read to its end."""
        for where in self._inputs:
            if where.buf or not self._drained(where):
                return False
        return True

    def _pick(self, force: bool) -> Any:
        """The next (partition, record) in merge order, None if all are read to the end, or _WAIT."""
        inputs = self._inputs
        if len(inputs) == 1:
            where = inputs[0]
            return (where, where.buf.popleft()) if where.buf else None
        best = best_key = None
        for where in inputs:
            if where.buf:
                key = (where.buf[0].timestamp()[1], where.rank, where.partition)
                if best is None or key < best_key:
                    best, best_key = where, key
            elif not force and not self._drained(where):
                return _WAIT
        return None if best is None else (best, best.buf.popleft())

    def _next_record(self, timeout_s: float) -> Any:
        picked = self._pick(force=False)
        if picked is None or picked is _WAIT:
            if self._poll(timeout_s):
                self._empty_polls = 0
            else:
                self._empty_polls += 1
            # a partition that stays silent (e.g. an open transaction upstream) is skipped after 3 polls
            picked = self._pick(force=self._empty_polls >= 3)
        return None if picked is _WAIT else picked

    # ------------------------------------------------------------------ the work

    def _produce(self, topic: str, value: bytes | None, key: bytes | None, partition: int = -1,
                 headers: list | None = None) -> None:
        """``producer.produce``, waiting while its local queue is full (a very large transaction)."""
        while True:
            try:
                self._producer.produce(topic, value, key, partition, headers=headers)
                return
            except BufferError:
                self._producer.poll(0.05)

    def _process_event(self, record: Any, state: _State) -> None:
        ts_ms = record.timestamp()[1]
        try:
            event = decode_event(record.value(), ts_ms / 1000.0)
        except EventFormatError as error:
            self._dead_letter(record, error, state)
            return
        track = state.track
        x, y = event.features, event.label
        try:
            label, proba = track.predict(x)
        except Exception as exc:  # the learner's own failure: this event ends in the DLQ, the run goes on
            self._dead_letter(record, ModelError(self.learner.name, event.id, "predict", exc), state)
            return
        counts = state.counts
        prediction = Prediction(event.id, label, self.learner.name, counts["learned"], proba, event.ts, time.time())
        if y is not None:
            try:
                track.learner.learn_one(x, y)
                track.update(y, label, proba)
            except Exception as exc:
                self._dead_letter(record, ModelError(self.learner.name, event.id, "learn", exc), state)
                return
            counts["learned"] += 1
        value, key = encode_prediction(prediction), record.key() or event.id.encode()
        try:
            self._producer.produce(self.predictions_topic, value, key, self._prediction_partition)
        except BufferError:
            self._produce(self.predictions_topic, value, key, self._prediction_partition)
        counts["events"] += 1
        self._txn_timestamps.append(ts_ms)
        if y is None and self.labels_topic is not None:
            self._keep_pending(event, label, proba, state)
        if counts["events"] % self.summary_every == 0:
            state.rows.append(self._row(state))

    def _keep_pending(self, event: Any, label: Any, proba: Any, state: _State) -> None:
        pending = state.pending
        pending.pop(event.id, None)
        pending[event.id] = (event.features, label, proba, event.ts)
        if event.ts is not None and event.ts > state.newest_ts:
            state.newest_ts = event.ts
        while len(pending) > self.max_pending:
            pending.popitem(last=False)
            state.counts["expired"] += 1
        if self.label_ttl_s is not None:
            oldest = state.newest_ts - self.label_ttl_s
            while pending:
                ts = next(iter(pending.values()))[3]
                if ts is None or ts >= oldest:
                    break
                pending.popitem(last=False)
                state.counts["expired"] += 1

    def _process_label(self, record: Any, state: _State) -> None:
        try:
            label = decode_label(record.value(), record.timestamp()[1] / 1000.0)
        except EventFormatError as error:
            self._dead_letter(record, error, state)
            return
        kept = state.pending.pop(label.id, None)
        if kept is None:
            state.counts["unknown_labels"] += 1
            return
        x, predicted, proba, _ = kept
        try:
            state.track.learner.learn_one(x, label.label)
            state.track.update(label.label, predicted, proba)
        except Exception as exc:  # the label record ends in the labels' DLQ; its prediction is published
            self._dead_letter(record, ModelError(self.learner.name, label.id, "learn", exc), state)
            return
        state.counts["learned"] += 1

    def _dead_letter(self, record: Any, error: EventFormatError | ModelError, state: _State) -> None:
        """Write a record, unchanged, to its topic's DLQ inside the open transaction; one too large
        to copy with its headers leaves a shorter copy (see :mod:`eventml.dlq`)."""
        topic = record.topic()
        target = dlq_topic(topic)
        if target not in self._dlq_ready:  # on a cluster that does not create topics by itself too
            self._partitions(target)
            self._dlq_ready.add(target)
        headers = dead_letter_headers(error, topic, record.partition(), record.offset())
        value, key = record.value(), record.key()
        copies = iter(shorter_copies(value, headers) if value else ())
        while True:
            try:
                self._produce(target, value, key, headers=headers)
                break
            except KafkaException as exc:  # librdkafka checks the size before it sends
                if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                    raise
                value, headers = next(copies)  # the last copy has no value: it always fits
        state.counts["dead_letters"] += 1
        state.dlq_reasons[error.reason] += 1
        if error.reason == "model_error":
            state.counts["model_errors"] += 1

    def _limit_reached(self) -> bool:
        return self.max_events is not None and self._state.counts["events"] >= self.max_events

    def _transaction(self) -> bool:
        """Process one transaction; False when the run should end (stop, limit or idle)."""
        state, producer = self._state, self._producer
        offsets = state.offsets
        self._txn_timestamps = []
        began = False
        deadline = 0.0
        n = 0
        keep_going = True
        while n < self.checkpoint_every:
            if self._stop.is_set() or self._limit_reached():
                keep_going = False
                break
            now = time.monotonic()
            if began and now >= deadline:
                break
            wait = 0.1 if not began else max(0.005, min(0.1, deadline - now))
            picked = self._next_record(wait)
            if picked is None:
                if not began and self._brokers_down_at is not None:
                    self._check_brokers()
                if self.idle_timeout_s is not None and time.monotonic() - self._last_record_at >= self.idle_timeout_s:
                    keep_going = False
                    break
                continue
            where, record = picked
            self._last_record_at = time.monotonic()
            if not began:
                producer.begin_transaction()
                began = True
                deadline = self._last_record_at + self.checkpoint_interval_s
            offsets[where.key] = record.offset() + 1
            if where.rank == _EVENTS:
                self._process_event(record, state)
            else:
                self._process_label(record, state)
            n += 1
            if self._caught_up():  # nothing left to read now: commit soon, so predictions become readable
                deadline = min(deadline, self._earliest_early_commit)
                if time.monotonic() >= deadline:
                    break
        if began:
            self._commit()
        return keep_going

    def _commit(self) -> None:
        state, producer = self._state, self._producer
        state.sequence += 1
        self._transactions += 1
        started = time.monotonic()
        path = write_snapshot(self.state_dir, state.sequence, state.offsets, state)
        snapshot_s = time.monotonic() - started
        self._maybe_die("before_commit", self._transactions)
        offsets = [TopicPartition(*self._tps[key], offset) for key, offset in state.offsets.items()]
        group, timeout = self._group_metadata, self.reconnect_timeout_s

        def commit() -> None:
            ends = time.monotonic() + timeout
            producer.send_offsets_to_transaction(offsets, group, timeout)
            producer.commit_transaction(max(0.1, ends - time.monotonic()))

        # a broker that does not come back within reconnect_timeout_s is a KafkaException (_TIMED_OUT),
        # from librdkafka or, if one of its waits ignores the timeout, from here; the run then restores
        self._bounded.call(commit, timeout + _GRACE_S)
        committed_at = time.time()
        self._brokers_down_at = None
        self._maybe_die("after_commit", self._transactions)
        prune_snapshots(self.state_dir, keep=path)
        # the next commit for being caught up comes no sooner than this, so snapshots take at most
        # _SNAPSHOT_SHARE of the time at any produce rate, even for a big model
        self._earliest_early_commit = time.monotonic() + snapshot_s / _SNAPSHOT_SHARE
        self._latencies.extend(committed_at - ts / 1000.0 for ts in self._txn_timestamps)
        self._bar.tick(len(self._txn_timestamps))
        self._publish_stats(running=True)

    # ------------------------------------------------------------------ figures

    def _lag(self) -> int | None:
        total = 0
        for where in self._event_inputs:
            # the high watermark the last fetch brought (OFFSET_INVALID, -1001, before the first one)
            high = self._consumer.get_watermark_offsets(where.tp, cached=True)[1] if self._consumer else -1
            if high < 0:
                return None
            total += max(0, high - self._state.offsets.get(where.key, 0))
        return total

    def _publish_stats(self, running: bool) -> None:
        state = self._state
        counts, track = state.counts, state.track
        now = time.monotonic()
        self._rates.append((now, counts["events"]))
        (t0, e0), (t1, e1) = self._rates[0], self._rates[-1]
        latencies = np.fromiter(self._latencies, float) if self._latencies else None
        self.stats = LiveStats(
            events=counts["events"], labelled=counts["learned"], model_version=counts["learned"],
            metric=self.metric, score=track.cumulative[0].get() if counts["learned"] else None,
            rolling_score=track.rolling[0].get() if counts["learned"] else None,
            events_per_s=(e1 - e0) / (t1 - t0) if t1 > t0 else 0.0, lag=self._lag(),
            latency_p50_s=float(np.percentile(latencies, 50)) if latencies is not None else None,
            latency_p99_s=float(np.percentile(latencies, 99)) if latencies is not None else None,
            dead_letters=counts["dead_letters"], model_errors=counts["model_errors"], expired=counts["expired"],
            unknown_labels=counts["unknown_labels"], pending=len(state.pending), restarts=counts["restarts"], transactions=state.sequence, running=running)

    def _row(self, state: _State) -> dict[str, Any]:
        counts, track = state.counts, state.track
        row = {"events": counts["events"], "labelled": counts["learned"], "model_version": counts["learned"]}
        for name, metric in zip(track.names, track.cumulative):
            row[name] = metric.get()
        for name, metric in zip(track.names, track.rolling):
            row[f"rolling_{name}"] = metric.get()
        row.update(dead_letters=counts["dead_letters"], model_errors=counts["model_errors"], expired=counts["expired"],
                   unknown_labels=counts["unknown_labels"], pending=len(state.pending),
                   restarts=counts["restarts"], lag=self._lag(), time=time.time())
        return row

    def figures(self) -> dict[str, Any]:
        """The live figures as a flat dict (see :class:`LiveStats`), e.g. for a results JSON."""
        return self.stats.to_dict()

    def summary(self) -> pd.DataFrame:
        """One row every ``summary_every`` events (and one at the end of each run), across restarts.

        Columns: ``events``, ``labelled``, ``model_version``, the metrics (cumulative, then
        ``rolling_`` ones), ``dead_letters``, ``model_errors``, ``expired``, ``unknown_labels``, ``pending``,
        ``restarts``, ``lag`` and ``time`` (epoch seconds).
        """
        rows = self._state.rows if self._state is not None else []
        return pd.DataFrame(rows)

    @property
    def model(self) -> Any:
        """The learner as of the last processed record (the one a restart would resume from
        after the next commit)."""
        return self._state.track.learner if self._state is not None else self.learner

    # ------------------------------------------------------------------ running

    def run(self) -> LiveStats:
        """Run until ``max_events``, ``idle_timeout_s`` or :meth:`stop`; return the final figures.

        Raises
        ------
        KafkaUnavailableError
            If no broker answers at the start, or one that went away does not come back within
            ``reconnect_timeout_s``.
        SnapshotError
            If the state directory does not match the offsets committed in Kafka, or its
            snapshot is unreadable.
        """
        self._error = None
        self._transactions = 0
        self._earliest_early_commit = 0.0
        froze = False
        try:
            try:
                self._connect()
            except _CLIENT_ERRORS as error:  # e.g. a cluster that refuses transactions or topic creation
                raise KafkaUnavailableError(f"the live updater could not set up its Kafka clients at "
                                            f"{self.bootstrap_servers or 'the default address'}: {error}") from None
            self._last_record_at = time.monotonic()
            self._rates.clear()
            self._publish_stats(running=True)
            # Every record allocates a few dozen objects, so Python's full collections come often, and
            # each one walks every object of the process (river, pandas, the Kafka clients): ~9% of
            # the loop. Objects frozen now are left out of them until the run ends.
            froze = gc.get_freeze_count() == 0  # a freeze made by someone else is left alone
            if froze:
                gc.freeze()
            with progress_bar(total=self.max_events, desc=f"live {self.events_topic}",
                              enabled=self.progress) as self._bar:
                self._bar.tick(self._state.counts["events"])
                while True:
                    try:
                        if not self._transaction():
                            break
                    except (*_CLIENT_ERRORS, KafkaUnavailableError) as error:
                        if isinstance(error, KafkaException) and _fenced(error):
                            raise EventmlError(
                                f"Kafka fenced this live updater (transactional id {self.transactional_id!r}): "
                                f"another one with state_dir {self.state_dir} took over, or the broker timed out "
                                "its open transaction; nothing committed is lost: run it again to resume") from None
                        self._reconnect(error)
            if not self._state.rows or self._state.rows[-1]["events"] != self._state.counts["events"]:
                self._state.rows.append(self._row(self._state))  # a closing row: in memory, not in the snapshot
            self._publish_stats(running=False)
        finally:
            if froze:
                gc.unfreeze()
            self._close_clients()
            self._bounded.close()
        return self.stats

    def start(self) -> "LiveUpdater":
        """Run in a background thread; see :meth:`stop` and :meth:`join`."""
        if self._thread is not None and self._thread.is_alive():
            raise EventmlError("this live updater is already running")
        self._stop.clear()

        def target() -> None:
            try:
                self.run()
            except BaseException as exc:  # handed to join()
                self._error = exc

        self._thread = threading.Thread(target=target, name=f"eventml-live-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the run to end after the current record; the open transaction is committed."""
        self._stop.set()

    def join(self, timeout_s: float | None = None) -> LiveStats:
        """Wait for a background run to end; re-raise its error, if any."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self.stats

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def load_model(state_dir: str | os.PathLike) -> Any:
    """The learner of the newest snapshot in a state directory (e.g. to use it offline).

    Raises
    ------
    SnapshotError
        If the folder holds no snapshot or the newest one is unreadable.
    """
    snapshots = list_snapshots(state_dir)
    if not snapshots:
        raise SnapshotError(f"{state_dir} holds no snapshot")
    return load_snapshot(snapshots[-1]).state.track.learner


def read_predictions(topic: str, *, bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                     idle_timeout_s: float = 2.0, **config: Any) -> pd.DataFrame:
    """The committed predictions of a topic as a DataFrame, read with ``read_committed``.

    Columns: ``id``, ``prediction``, ``proba`` (a dict), ``model``, ``model_version``,
    ``event_ts``, ``ts``, ``partition``, ``offset``. Reads from the beginning to the end the
    topic has when the read starts; a record that is not a prediction goes to ``<topic>.dlq``.
    """
    from eventml.consumer import replay

    rows = []
    with replay(topic, bootstrap_servers=bootstrap_servers, kafka=kafka, idle_timeout_s=idle_timeout_s, **config,
                decode=lambda raw, ts: decode_prediction(raw), isolation_level="read_committed") as consumer:
        for p, where in consumer.records():
            rows.append([p.id, p.prediction, p.proba, p.model, p.model_version, p.event_ts, p.ts,
                         where.partition, where.offset])
    columns = ["id", "prediction", "proba", "model", "model_version", "event_ts", "ts", "partition", "offset"]
    return pd.DataFrame(rows, columns=columns)

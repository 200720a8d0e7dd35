"""The live updater: the orchestrator that reads top to bottom.

:class:`LiveUpdater` connects (:class:`~eventml.live.clients.LiveClients`), restores the state
that goes with the committed offsets (:mod:`eventml.live.snapshots`), then runs transactions: it
takes records in merge order (:class:`~eventml.live.merge.PartitionMerge`), hands each to the
:class:`~eventml.live.processor.RecordProcessor`, and closes each transaction with
:class:`~eventml.live.commit.TransactionCommit`. A Kafka failure drops the clients and restores
again. See :mod:`eventml.live` for what is guaranteed.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventml.errors import EventmlError, KafkaUnavailableError, SnapshotError
from eventml.kafka.rdkafka import KafkaException
from eventml.kafka.settings import KafkaSettings
from eventml.learners import make_learner
from eventml.live.background import BackgroundRun
from eventml.live.clients import (CLIENT_ERRORS, ClientsInBackground, LiveClients, connect_with_backoff,
                                  end_of_partition, live_id, setup_timeout)
from eventml.live.commit import TransactionCommit, fenced
from eventml.live.merge import EVENTS, LABELS, SILENT_POLLS, WAIT, InputPartition, PartitionMerge
from eventml.live.processor import MAX_RUN, RecordProcessor
from eventml.live.snapshots import find_snapshot, list_snapshots, load_snapshot, sync_files
from eventml.live.state import IDENTITY_FILE, UpdaterState, check_topics, live_metrics, read_identity
from eventml.live.stats import LiveStats, StatsMeter, summary_row
from eventml.validation import int_in_range, positive_int, positive_number

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LiveUpdater"]

log = logging.getLogger("eventml.live")



class LiveUpdater(BackgroundRun):
    """Consume events, predict, publish predictions, learn, and snapshot, exactly once.

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
    records_per_transaction
        Input records (events, labels, dead letters) per transaction at most.
    transaction_interval_s
        Seconds a transaction stays open at most: predictions become readable by then (sooner
        when the updater has read everything there is).
    label_ttl_s
        Features of an unlabelled event wait this long, in event time, for their label (None:
        no limit); a label later than that is late. Only kept when there is a ``labels_topic``
        (the join is :class:`~eventml.labels.PendingLabels`, the same as offline).
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
                 idle_timeout_s: float | None = None, records_per_transaction: int = 10_000,
                 transaction_interval_s: float = 0.5, label_ttl_s: float | None = None,
                 max_pending: int = 100_000, rolling_window: int = 500, reconnect_timeout_s: float = 60.0,
                 name: str | None = None, seed: int | None = 42, progress: bool = False,
                 summary_every: int = 1000, **connection: Any):
        self.learner = make_learner(model, seed=seed)
        check_topics(events_topic, predictions_topic, labels_topic)
        self.events_topic = events_topic
        self.predictions_topic = predictions_topic
        self.labels_topic = labels_topic
        self.state_dir = Path(state_dir)
        self.kafka = KafkaSettings.resolve(kafka, bootstrap_servers=bootstrap_servers, **connection)
        self.bootstrap_servers = self.kafka.bootstrap_servers
        self.max_events = int_in_range("max_events", max_events, 0, allow_none=True)
        self.idle_timeout_s = positive_number("idle_timeout_s", idle_timeout_s, allow_none=True)
        self.records_per_transaction = positive_int("records_per_transaction", records_per_transaction)
        self.transaction_interval_s = positive_number("transaction_interval_s", transaction_interval_s)
        self.label_ttl_s = positive_number("label_ttl_s", label_ttl_s, allow_none=True)
        self.max_pending = positive_int("max_pending", max_pending)
        self.rolling_window = positive_int("rolling_window", rolling_window)
        self.reconnect_timeout_s = positive_number("reconnect_timeout_s", reconnect_timeout_s)
        self.summary_every = positive_int("summary_every", summary_every)
        self.progress = progress
        self._metrics = live_metrics(self.learner)
        self.metric = self._metrics[0]
        self.name = read_identity(self.state_dir, {
            "events_topic": events_topic, "labels_topic": labels_topic, "predictions_topic": predictions_topic,
            "model": self.learner.name}, name)

        self.stats = LiveStats(metric=self.metric)
        self._meter = StatsMeter(self.metric)
        self._state: UpdaterState | None = None
        self._clients: LiveClients | None = None
        self._commit = TransactionCommit(self.state_dir, self.reconnect_timeout_s)
        self._early: ClientsInBackground | None = None

    @property
    def group_id(self) -> str:
        """The consumer group whose committed offsets say how far the updater got."""
        return live_id(self.name)

    @property
    def transactional_id(self) -> str:
        """Stable across restarts, so a restart fences the previous instance."""
        return live_id(self.name)

    def use_clients(self, early: ClientsInBackground) -> None:
        """Take clients being made in the background for the next :meth:`run` (``eventml live`` starts
        making them before it imports the model; see :func:`~eventml.live.clients.restart_clients_early`).
        Clients made for other settings or ids are closed and the run makes its own."""
        self._early = early

    # ------------------------------------------------------------------ connecting and restoring

    def _connect(self) -> None:
        """Make the clients, fence any previous instance, and load the committed state."""
        self._close_clients()
        early, self._early = self._early, None
        if early is not None and early.matches(self.kafka, self.transactional_id, self.group_id):
            self._clients = clients = early.result()
        else:
            if early is not None:
                early.discard()
            self._clients = clients = LiveClients(self.kafka, self.transactional_id, self.group_id,
                                                  setup_timeout(self.reconnect_timeout_s))
        # one partition: nothing to choose, and skipping the key hash saves time per prediction
        prediction_partition = 0 if clients.partitions(self.predictions_topic) == [0] else -1  # -1: by key
        inputs = [InputPartition(topic, p, rank)
                  for rank, topic in ((EVENTS, self.events_topic), (LABELS, self.labels_topic)) if topic is not None
                  for p in clients.partitions(topic)]  # its metadata now known: no 500 ms wait at the first fetch
        state = self._restore(clients.committed(inputs))
        for where in inputs:
            if where.key not in state.offsets:  # a partition this state never read: from its beginning
                state.offsets[where.key] = clients.earliest(where)
            where.fetched = state.offsets[where.key]
        clients.assign(inputs)
        self._merge = PartitionMerge(inputs, clients.high_watermark, end_of_partition)
        self._partitions = {where.key: (where.topic, where.partition) for where in inputs}
        self._processor = RecordProcessor(state, self.learner.name, self.predictions_topic, clients.send,
                                          prediction_partition, keep_unlabelled=self.labels_topic is not None)
        self._empty_polls = 0
        self._state = state

    def _restore(self, committed: dict[str, int]) -> UpdaterState:
        if not committed:
            later = [p for p in list_snapshots(self.state_dir) if int(p.name.split("-")[1]) > 1]
            if later:
                raise SnapshotError(
                    f"consumer group {self.group_id!r} has no committed offsets, but {self.state_dir} holds "
                    f"snapshot {later[-1].name} of a later transaction: the offsets were deleted or expired. "
                    "Resuming would repeat predictions; use a new state_dir to start over.")
            return UpdaterState.fresh(self.learner, self._metrics, self.rolling_window, self.label_ttl_s,
                                      self.max_pending)
        path = find_snapshot(self.state_dir, committed)
        if path is None:
            raise SnapshotError(
                f"consumer group {self.group_id!r} committed offsets {committed}, but {self.state_dir} has no "
                "snapshot for them: the machine stopped (an OS crash or a power loss) before the snapshot reached "
                "the disk, since snapshots are not fsynced, or the state directory is not the one this updater "
                "wrote; resuming from anything else would repeat or skip predictions, so start over with a new "
                "state_dir (the predictions already committed stay in Kafka)")
        snapshot = load_snapshot(path)
        if snapshot.offsets != committed:
            raise SnapshotError(f"snapshot {path} is for offsets {snapshot.offsets}, not the committed {committed}")
        state: UpdaterState = snapshot.state
        state.counts["restarts"] += 1
        log.info("restored %s: %d events, model version %d", path.name, state.counts["events"],
                 state.counts["learned"])
        return state

    def _close_clients(self) -> None:
        if self._clients is not None:
            self._clients.close()
            self._clients = None

    def _reconnect(self, error: BaseException) -> None:
        """After a Kafka failure: drop the clients and restore the committed state, with backoff."""
        log.warning("Kafka failed (%s); restoring the last committed state", error)
        if self._clients is not None:
            self._clients.abort_if_needed(error, min(self.reconnect_timeout_s, 5.0))
        self._close_clients()
        connect_with_backoff(self._connect, self._close_clients, self.reconnect_timeout_s, self.kafka,
                             f"; restart the updater with the same state_dir ({self.state_dir}) to resume")

    # ------------------------------------------------------------------ one transaction

    def _next_run(self, timeout_s: float, limit: int) -> Any:
        """The next ``(partition, records)`` in merge order (see :meth:`PartitionMerge.take`), polling if
        nothing is buffered; None if there is none yet."""
        merge = self._merge
        run = merge.take(False, limit)
        if run is None or run is WAIT:
            if merge.fill(self._clients.poll(timeout_s)):
                self._empty_polls = 0
            else:
                self._empty_polls += 1
            run = merge.take(self._empty_polls >= SILENT_POLLS, limit)
        return None if run is WAIT else run

    def _transaction(self) -> bool:
        """Process one transaction; False when the run should end (stop, limit or idle).

        A transaction begins with its first record and closes after ``records_per_transaction`` records,
        after ``transaction_interval_s``, or soon after everything there is has been read (spaced so
        that snapshots take at most a quarter of the time). Records already fetched are processed in
        runs of up to ``MAX_RUN`` (:meth:`RecordProcessor.events`), ending where a summary row is due.
        """
        state, clients, processor = self._state, self._clients, self._processor
        offsets, counts = state.offsets, state.counts
        # bound once: this loop runs per run of records
        stop_set, monotonic, next_run, take = self.stopping.is_set, time.monotonic, self._next_run, self._merge.take
        caught_up, events, label = self._merge.caught_up, processor.events, processor.label
        max_events, limit, summary_every = self.max_events, self.records_per_transaction, self.summary_every
        timestamps: list[int] = []  # of the events predicted in this transaction, for the latency figures
        began, deadline, n = False, 0.0, 0
        keep_going = True
        while n < limit:
            if stop_set() or (max_events is not None and counts["events"] >= max_events):
                keep_going = False
                break
            # a run publishes at most as many predictions as it has records: it ends where a summary row
            # is due or max_events is reached, as one record at a time would
            run_limit = min(MAX_RUN, limit - n, summary_every - counts["events"] % summary_every)
            if max_events is not None:
                run_limit = min(run_limit, max_events - counts["events"])
            now = monotonic()
            if began:
                if now >= deadline:
                    break
                picked = take(False, run_limit)  # buffered records, without a poll (None or WAIT: poll below)
                if picked is None or picked is WAIT:
                    picked = next_run(max(0.001, min(0.1, deadline - now)), run_limit)
                    now = monotonic()
            else:
                picked = next_run(0.1, run_limit)
                now = monotonic()
            if picked is None:
                if not began and clients.brokers_down_at is not None:
                    clients.check_brokers(self.events_topic, min(self.reconnect_timeout_s, 5.0))
                if self.idle_timeout_s is not None and monotonic() - self._last_record_at >= self.idle_timeout_s:
                    keep_going = False
                    break
                continue
            where, records = picked
            self._last_record_at = now
            if not began:
                clients.producer.begin_transaction()
                began, deadline = True, now + self.transaction_interval_s
            offsets[where.key] = records[-1].offset() + 1
            if where.rank == EVENTS:
                published = events(records)
                if published:
                    timestamps.extend(published)
                    if counts["events"] % summary_every == 0:
                        state.rows.append(summary_row(state, self._lag()))
            else:
                for record in records:
                    label(record)
            n += len(records)
            # nothing left to read now: commit soon, so predictions become readable (a partition with records
            # still buffered is not caught up: no need to ask the others)
            if not where.buf and caught_up():
                deadline = min(deadline, self._earliest_early_commit)
                if monotonic() >= deadline:
                    break
        if began:
            self._commit(clients.producer, clients.group_metadata, state, self._partitions)
            committed_at = time.time()
            clients.brokers_down_at = None
            # snapshots take at most a quarter of the time at any produce rate, even for a big model
            self._earliest_early_commit = self._commit.state_cost.next_early_commit()
            self._meter.latencies.extend(committed_at - ts / 1000.0 for ts in timestamps)
            self._bar.tick(len(timestamps))
            self._publish_stats(running=True)
        return keep_going

    # ------------------------------------------------------------------ figures

    def _lag(self) -> int | None:
        """Records of the events topic not read yet, as of the last fetch (None before the first)."""
        if self._clients is None:
            return None
        total = 0
        for where in self._merge.inputs:
            if where.rank == EVENTS:
                high = self._clients.high_watermark(where)
                if high < 0:
                    return None
                total += max(0, high - self._state.offsets.get(where.key, 0))
        return total

    def _publish_stats(self, running: bool) -> None:
        self.stats = self._meter.stats(self._state, self._lag(), running)

    def figures(self) -> dict[str, Any]:
        """The live figures as a flat dict (see :class:`LiveStats`), e.g. for a results JSON."""
        return self.stats.to_dict()

    def summary(self) -> pd.DataFrame:
        """One row every ``summary_every`` events (and one at the end of each run), across restarts.

        Columns: ``events``, ``labelled``, ``model_version``, the metrics (cumulative, then
        ``rolling_`` ones), ``dead_letters``, ``model_errors``, ``late``, ``expired``, ``unknown_id``,
        ``duplicate``, ``pending``, ``restarts``, ``lag`` and ``time`` (epoch seconds).
        """
        import pandas as pd  # only here: `eventml live` need not import it

        # a copy: the updater's thread may append a row meanwhile
        return pd.DataFrame(list(self._state.rows) if self._state is not None else [])

    @property
    def model(self) -> Any:
        """The learner as of the last processed record (the one a restart would resume from
        after the next commit)."""
        return self._state.scorer.learner if self._state is not None else self.learner

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
        self._earliest_early_commit = 0.0
        froze = False
        try:
            try:
                self._connect()
            except CLIENT_ERRORS as error:  # e.g. a cluster that refuses transactions or topic creation
                raise KafkaUnavailableError(f"the live updater could not set up its Kafka clients at "
                                            f"{self.bootstrap_servers or 'the default address'}: {error}") from None
            # the Kafka ids survive an OS crash (snapshots need not: see eventml.live.snapshots)
            sync_files(self.state_dir, IDENTITY_FILE)
            self._last_record_at = time.monotonic()
            self._meter.restart()
            self._publish_stats(running=True)
            # Every record allocates a few dozen objects, so Python's full collections come often, and
            # each one walks every object of the process (river, pandas, the Kafka clients): ~9% of
            # the loop. Objects frozen now are left out of them until the run ends.
            froze = gc.get_freeze_count() == 0  # a freeze made by someone else is left alone
            if froze:
                gc.freeze()
            from eventml.progress import progress_bar  # tqdm, imported once connected

            with progress_bar(total=self.max_events, desc=f"live {self.events_topic}",
                              enabled=self.progress) as self._bar:
                self._bar.tick(self._state.counts["events"])
                while True:
                    try:
                        if not self._transaction():
                            break
                    except (*CLIENT_ERRORS, KafkaUnavailableError) as error:
                        if isinstance(error, KafkaException) and fenced(error):
                            raise EventmlError(
                                f"Kafka fenced this live updater (transactional id {self.transactional_id!r}): "
                                f"another one with state_dir {self.state_dir} took over, or the broker timed out "
                                "its open transaction; nothing committed is lost: run it again to resume") from None
                        self._reconnect(error)
            state = self._state
            if not state.rows or state.rows[-1]["events"] != state.counts["events"]:
                state.rows.append(summary_row(state, self._lag()))  # a closing row: in memory, not in the snapshot
            self._publish_stats(running=False)
        finally:
            if froze:
                gc.unfreeze()
            if self._early is not None:
                self._early.discard()
                self._early = None
            self._close_clients()
            self._commit.close()
        return self.stats

    def _result(self) -> LiveStats:
        return self.stats


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
    return load_snapshot(snapshots[-1]).state.scorer.learner

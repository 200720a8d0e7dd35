"""The live engine: one transaction loop over tasks, the same in every mode.

A *task* is an events partition (or all of them) with its labels partitions: their merge
(:class:`~eventml.live.merge.PartitionMerge`), its processor (:class:`~eventml.live.processor.RecordProcessor`)
and its state (:class:`~eventml.live.state.UpdaterState`). The :class:`Engine` connects
(:class:`~eventml.live.clients.LiveClients`), lets its *assignment* (:mod:`eventml.live.assignment`)
open and close tasks, each restored from its *state store* (:mod:`eventml.live.stores`), and runs
transactions: it takes runs of records in each task's merge order, hands them to the task's processor,
and closes each transaction with the numbered :class:`~eventml.live.commit.TransactionCommit`. A Kafka
failure drops the clients and connects again, with backoff, from the committed state (the first
connection too). See :mod:`eventml.live` for what is guaranteed, and :class:`~eventml.live.LiveUpdater`
for the modes.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import TYPE_CHECKING, Any

from eventml.alerts import AlertWatch, check_alerts
from eventml.errors import ConfigError, EventmlError, KafkaUnavailableError
from eventml.kafka.rdkafka import KafkaException
from eventml.learners.base import CLASSIFICATION
from eventml.live.background import BackgroundRun
from eventml.live.clients import CLIENT_ERRORS, LiveClients, connect_with_backoff, end_of_partition, setup_timeout
from eventml.live.commit import TransactionCommit, abortable, fenced
from eventml.live.merge import EVENTS, LABELS, WAIT, InputPartition, PartitionMerge, Silence
from eventml.live.processor import MAX_RUN, RecordProcessor
from eventml.live.state import UpdaterState, check_resumable
from eventml.live.stats import LiveStats, StatsMeter, summary_row
from eventml.live.task import Task

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Engine"]

log = logging.getLogger("eventml.live")


class Engine(BackgroundRun):
    """The transaction loop of a live updater (see the module docstring); made by
    :class:`~eventml.live.LiveUpdater`, which chooses the store, the assignment and the ids."""

    windows: Any = None  # the WindowedFeatures every task's state starts from (set by the face), or None
    exporter: Any = None  # its /metrics (eventml.metrics.live.LiveMetrics), told each commit's time

    def _setup(self, learners: list[Any], metrics: list[str], store: Any, assignment: Any, ids: tuple[str, str],
               promotion: Any = None, alerts: Any = None) -> None:
        """Called by the face's ``__init__`` once its settings are checked (the alert rules are checked here)."""
        self.alert_rules = check_alerts(alerts, [learner.name for learner in learners], learners[0].task)
        self.learners = learners
        self.learner = learners[0]  # the champion at the start
        self.promotion = promotion
        self._metrics = metrics
        self.metric = metrics[0]
        self.store = store
        self.assignment = assignment
        self.transactional_id, self.group_id = ids
        self.stats = LiveStats(metric=self.metric)
        self._meter = StatsMeter(self.metric)
        # a commit waits at most until the broker would have aborted its transaction anyway (a group member's:
        # 10 s, +5 for the broker's abort check): a member that does not poll holds every rebalance of its group
        # (after a broker restart a commit once waited ~60 s, and a joiner got nothing meanwhile)
        txn_s = self.settings.transaction_timeout_s
        self._commit = TransactionCommit(store, self.settings.reconnect_timeout_s if txn_s is None
                                         else min(self.settings.reconnect_timeout_s, txn_s + 5.0),
                                         deliver_first=not assignment.fixed)
        self._tasks: dict[int, Task] = {}
        self._owner: dict[tuple[str, int], Task] = {}  # (topic, partition) -> the task it is an input of
        self._clients: LiveClients | None = None
        self._early: Any = None
        self._txn_open = False
        self._session_events = 0  # predicted by this object

    # ------------------------------------------------------------------ ids and clients

    def use_clients(self, early: Any) -> None:
        """Take clients being made in the background for the next :meth:`run` (``eventml live`` starts
        making them before it imports the model; see :func:`~eventml.live.clients.restart_clients_early`).
        Clients made for other settings or ids are closed and the run makes its own."""
        self._early = early

    def _make_clients(self) -> LiveClients:
        early, self._early = self._early, None
        if early is not None and early.matches(self.kafka, self.transactional_id, self.group_id):
            return early.result()
        if early is not None:
            early.discard()
        producer_config = {}
        if self.settings.transaction_timeout_s is not None:
            producer_config["transaction.timeout.ms"] = int(self.settings.transaction_timeout_s * 1000)
        return LiveClients(self.kafka, self.transactional_id, self.group_id, setup_timeout(self.settings.reconnect_timeout_s),
                           producer_config=producer_config, consumer_config=self.assignment.consumer_config)

    def _connect(self) -> None:
        """Make the clients (fencing any previous instance), open the store, and let the assignment start."""
        self._close_clients()
        self._clients = clients = self._make_clients()
        self.partitions = clients.partitions(self.events_topic)
        if self.labels_topic is not None:
            labels = clients.partitions(self.labels_topic)
            if self.assignment.co_partitioned and len(labels) != len(self.partitions):
                raise ConfigError(
                    f"labels topic {self.labels_topic!r} has {len(labels)} partitions and events topic "
                    f"{self.events_topic!r} has {len(self.partitions)}: a group of updaters needs both partitioned "
                    "alike (the same number of partitions, labels keyed by event id)")
        # one partition: nothing to choose, and skipping the key hash saves time per prediction
        self._prediction_partition = 0 if clients.partitions(self.predictions_topic) == [0] else -1  # -1: by key
        self.store.open(clients, self.kafka, len(self.partitions))
        self._silence = Silence()
        self.assignment.start(self, clients)

    def _close_clients(self, drop_tasks: bool = True) -> None:
        if drop_tasks:
            self._drop_tasks()
        self.store.close()
        if self._clients is not None:
            self._clients.close()
            self._clients = None

    def _reconnect(self, error: BaseException) -> None:
        """After a Kafka failure: drop the clients and connect again from the committed state, with backoff."""
        log.warning("Kafka failed (%s); resuming from the last committed state", error)
        self.abort(error)
        self._close_clients()
        connect_with_backoff(self._connect, self._close_clients, self.settings.reconnect_timeout_s, self.kafka,
                             self._resume_advice)

    def abort(self, error: BaseException | None = None) -> bool:
        """Abort the open transaction (after ``error``: if that needs it); its predictions were not this updater's.
        False if the abort failed (the producer is not ready for another transaction)."""
        timeout_s = min(self.settings.reconnect_timeout_s, 5.0)
        aborted = True
        if self._clients is not None and error is not None:
            aborted = self._clients.abort_if_needed(error, timeout_s)
        elif self._clients is not None and self._txn_open:
            try:
                self._clients.producer.abort_transaction(timeout_s)
            except KafkaException:
                log.debug("aborting the open transaction failed", exc_info=True)
                aborted = False
        self.forget_transaction()
        return aborted

    def forget_transaction(self) -> None:
        """The open transaction's predictions are not this updater's: it was aborted (or a new producer aborts it)."""
        self._txn_open = False
        self._session_events -= len(self._timestamps)
        self._timestamps.clear()

    # ------------------------------------------------------------------ tasks (called by the assignment)

    def inputs(self, numbers: list[int]) -> list[InputPartition]:
        """The input partitions of events partitions ``numbers`` (and of the same labels partitions)."""
        if self.labels_topic is not None and not self.assignment.co_partitioned:
            labels = self._clients.partitions(self.labels_topic)
            return ([InputPartition(self.events_topic, n, EVENTS) for n in numbers]
                    + [InputPartition(self.labels_topic, n, LABELS) for n in labels])
        return [InputPartition(topic, n, rank)
                for rank, topic in ((EVENTS, self.events_topic), (LABELS, self.labels_topic)) if topic is not None
                for n in numbers]

    def open_task(self, number: int, key: str, inputs: list[InputPartition], keep_position: bool = False) -> Task:
        """Restore a task from the state committed with its inputs' offsets and start reading it there, or, with
        ``keep_position``, go on reading where the consumer is (the records since were given back to its inputs)."""
        clients = self._clients
        task = Task(number, key, inputs)
        state = self.store.load(task, clients.committed(inputs), clients.setup_timeout_s)
        names = [learner.name for learner in self.learners]
        if state is not None:
            state.counts["restarts"] += 1
            check_resumable(state, names, self.promotion, self.windows, key, self._other_setup_advice)
        else:
            state = UpdaterState.fresh(self.learners, self._metrics, self.settings.rolling_window,
                                       self.settings.label_ttl_s, self.settings.max_pending,
                                       promotion=self.promotion, windows=self.windows)
        # the committed state of the rules it had, a fresh one for rules it did not
        state.alerts = AlertWatch.resume(state.alerts, self.alert_rules, names, self.learner.task == CLASSIFICATION)
        for where in inputs:
            if where.key not in state.offsets:  # a partition this state never read: from its beginning
                state.offsets[where.key] = clients.earliest(where)
            if not keep_position:
                where.fetched = state.offsets[where.key]
        task.state = state
        task.merge = PartitionMerge(inputs, clients.high_watermark, end_of_partition)
        task.processor = RecordProcessor(state, self.predictions_topic, clients.send,
                                         self._prediction_partition, keep_unlabelled=self.labels_topic is not None)
        self._tasks[number] = task
        for where in inputs:
            self._owner[where.topic, where.partition] = task
        log.info("updater %s resumes %s at %s (%d events so far)", self.name, key, state.offsets,
                 state.counts["events"])
        return task

    def _drop_tasks(self, numbers: Any = None) -> None:
        """Forget the tasks of events partitions ``numbers`` (default: every task)."""
        if numbers is None:
            self._tasks.clear()
            self._owner.clear()
            return
        for number in numbers:
            task = self._tasks.pop(number, None)
            if task is not None:
                for where in task.inputs:
                    self._owner.pop((where.topic, where.partition), None)

    @property
    def owned(self) -> list[int]:
        """The events partitions this updater works on now."""
        return self.assignment.owned(self) if self._tasks else []

    # ------------------------------------------------------------------ one transaction

    def begin(self) -> None:
        """Open a transaction, unless one is open."""
        if not self._txn_open:
            self._clients.producer.begin_transaction()
            self._txn_open = True
            self._deadline = time.monotonic() + self.settings.transaction_interval_s

    def _events(self) -> int:
        return sum(task.state.counts["events"] for task in self._tasks.values())

    def _take(self, force: bool, room: int) -> Any:
        """``(task, (partition, records))``: the next run of one task's records in its merge order, at most
        ``room`` and ending where the task's next summary row (or ``max_events``) is due; or None."""
        every, max_events = self.settings.summary_every, self.settings.max_events
        left = room if max_events is None else min(room, max_events - self._events())
        for task in self._tasks.values():
            limit = min(MAX_RUN, left, every - task.state.counts["events"] % every)
            picked = task.merge.take(force, limit)
            if picked is not None and picked is not WAIT:
                return task, picked
        return None

    def _route(self, messages: list) -> bool:
        """Hand polled records to their task's merge; True if there were records."""
        if self.assignment.fixed:  # one task that reads every input partition
            return next(iter(self._tasks.values())).merge.fill(messages)
        by_task: dict[Task, list] = {}
        owner = self._owner
        for message in messages:
            task = owner.get((message.topic(), message.partition()))
            if task is not None:
                by_task.setdefault(task, []).append(message)
            elif message.error() is not None:  # a partition given up meanwhile, or an error of no partition
                end_of_partition(message.error())  # raises a fatal one
        got = False
        for task, batch in by_task.items():
            got = task.merge.fill(batch) or got
        if self.assignment.called_back:  # librdkafka paused every partition for it: fetch them again at once
            self.assignment.called_back = False
            self._clients.wake_fetchers()
        failed = self.assignment.failed  # raised in a rebalance callback of this poll: raised here, records kept
        if failed is not None:
            self.assignment.failed = None
            raise failed
        return got

    def _next_run(self, timeout_s: float, room: int) -> Any:
        """:meth:`_take`, polling if nothing is buffered (a group's rebalance callbacks run in the poll)."""
        picked = self._take(False, room)
        if picked is None:
            got = self._route(self._clients.poll(timeout_s))
            picked = self._take(self._silence.polled(got, time.monotonic()), room)
        return picked

    def _caught_up(self) -> bool:
        return all(task.merge.caught_up() for task in self._tasks.values())

    def _transaction(self) -> bool:
        """Process records until the open transaction should close, then commit; False when the run should end.

        A transaction begins with its first record and closes after ``records_per_transaction`` records,
        after ``transaction_interval_s``, or soon after everything there is has been read (spaced so that
        writing state takes at most a quarter of the time). Records already fetched are processed in runs of
        up to ``MAX_RUN`` (:meth:`RecordProcessor.events`).
        """
        settings, clients = self.settings, self._clients
        stop_set, monotonic, next_run, take = self.stopping.is_set, time.monotonic, self._next_run, self._take
        max_events, limit, every = settings.max_events, settings.records_per_transaction, settings.summary_every
        timestamps = self._timestamps
        n = 0
        keep_going = True
        while n < limit:
            if stop_set() or (max_events is not None and self._events() >= max_events):
                keep_going = False
                break
            now = monotonic()
            if self._txn_open:
                if now >= self._deadline:
                    break
                picked = take(False, limit - n)  # buffered records, without a poll
                if picked is None:
                    picked = next_run(max(0.001, min(0.1, self._deadline - now)), limit - n)
                    now = monotonic()
            else:
                picked = next_run(0.1, limit - n)
                now = monotonic()
            if picked is None:
                if self._txn_open:
                    if self._caught_up() and now >= self._earliest_early_commit:
                        break
                    continue
                if clients.brokers_down_at is not None:
                    clients.check_brokers(self.events_topic, min(settings.reconnect_timeout_s, 5.0))
                if (settings.idle_timeout_s is not None and now - self._last_record_at >= settings.idle_timeout_s
                        and not self.assignment.rebalancing):
                    if self._fetch_again():  # not idle: records of its partitions were not fetched
                        self._last_record_at = monotonic()
                        continue
                    keep_going = False
                    break
                continue
            task, (where, records) = picked
            task.taken.append(picked[1])  # first: an abort gives them back (see GroupAssignment.rewind)
            self._last_record_at = now
            self.begin()
            state = task.state
            state.offsets[where.key] = records[-1].offset() + 1
            if where.rank == EVENTS:
                published = task.processor.events(records)
                if published:
                    timestamps.extend(published)
                    self._session_events += len(published)
                    if state.counts["events"] % every == 0:
                        state.rows.append(summary_row(state, self._lag([task])))
            else:
                for record in records:
                    task.processor.label(record)
            n += len(records)
            # nothing left to read now: commit soon, so predictions become readable (a partition with records
            # still buffered is not caught up: no need to ask the others)
            if not where.buf and self._caught_up():
                self._deadline = min(self._deadline, self._earliest_early_commit)
                if monotonic() >= self._deadline:
                    break
        if self._txn_open:
            self.commit()
        return keep_going

    def _fetch_again(self) -> bool:
        """Before ending on idle: True if an input partition of this updater has records after what its consumer
        read (see :meth:`~eventml.live.clients.LiveClients.fetch_unread`): a fetch can stall after a leader change
        (a broker restart), and a partition handed over as a group's other members end has not been fetched yet;
        ending then would leave its records to no updater."""
        left = self._clients.fetch_unread([where for task in self._tasks.values() for where in task.inputs],
                                          min(self.settings.reconnect_timeout_s, 10.0))
        if left:
            log.warning("updater %s: no record for %g s but %s left to read: fetching again instead of ending",
                        self.name, self.settings.idle_timeout_s, ", ".join(left))
        return bool(left)

    def commit(self) -> None:
        """Close the open transaction (:class:`~eventml.live.commit.TransactionCommit`) with every task that
        processed records in it."""
        clients = self._clients
        dirty = [task for task in self._tasks.values() if task.dirty]
        for task in dirty:  # the lag rules, in the transaction that commits their state
            if task.state.alerts is not None and task.state.alerts.watches_lag:
                task.processor.lag(self._lag([task]))
        self._commit(clients.producer, clients.consumer.consumer_group_metadata, dirty, clients.send)
        committed_at = time.time()
        if self.exporter is not None:
            self.exporter.committed(self._commit.timings["total"])
        self._txn_open = False
        for task in dirty:
            task.taken.clear()
        clients.brokers_down_at = None
        # writing state takes at most a quarter of the time at any produce rate, even for a big model
        self._earliest_early_commit = self._commit.state_cost.next_early_commit()
        timestamps = self._timestamps
        if timestamps:
            self._meter.latencies.extend(committed_at - ts / 1000.0 for ts in timestamps)
            self._bar.tick(len(timestamps))
            timestamps.clear()
        self._publish_stats(running=True)

    # ------------------------------------------------------------------ figures

    def input_lags(self, tasks: Any = None) -> list[tuple[InputPartition, int | None]]:
        """Each input partition of the tasks (default: all) and its records not read yet, as of the last fetch
        (None before the first); called by the updater's thread (the consumer is not called from others)."""
        if self._clients is None:
            return []
        high_watermark, lags = self._clients.high_watermark, []
        for task in self._tasks.values() if tasks is None else tasks:
            for where in task.inputs:
                high = high_watermark(where)
                lags.append((where, max(0, high - task.state.offsets.get(where.key, 0)) if high >= 0 else None))
        return lags

    def _lag(self, tasks: Any = None) -> int | None:
        """Records of the events partitions not read yet, as of the last fetch (None before the first)."""
        if self._clients is None:
            return None
        lags = [lag for where, lag in self.input_lags(tasks) if where.rank == EVENTS]
        return None if None in lags else sum(lags)

    def _publish_stats(self, running: bool) -> None:
        states = [task.state for task in self._tasks.values()]
        self.stats = self._meter.stats(states, self._lag(), running, tuple(self.owned), self._session_events)

    def figures(self) -> dict[str, Any]:
        """The live figures as a flat dict (see :class:`~eventml.live.LiveStats`), e.g. for a results JSON."""
        return self.stats.to_dict()

    def summary(self) -> pd.DataFrame:
        """One row every ``summary_every`` events of a task (and one at the end of each run), across restarts.

        Columns: ``events``, ``labelled``, ``model_version``, the metrics (cumulative, then ``rolling_``
        ones), ``dead_letters``, ``model_errors``, ``late``, ``expired``, ``unknown_id``, ``duplicate``,
        ``pending``, ``restarts``, ``alerts`` (fired so far), ``lag`` and ``time`` (epoch seconds). A group
        member's rows are those of the partitions it works on (at the end of a run: those it had), each starting
        with ``partition``.
        """
        import pandas as pd  # only here: `eventml live` need not import it

        tasks = list(self._tasks.values())  # copies: the updater's thread may change them meanwhile
        if not self.assignment.per_partition:
            return pd.DataFrame([row for task in tasks for row in list(task.state.rows)])
        return pd.DataFrame([{"partition": task.number, **row} for task in sorted(tasks, key=lambda t: t.number)
                             for row in list(task.state.rows)])

    @property
    def model(self) -> Any:
        """The champion's learner as of the last processed record (one task's: a single updater's, or a global
        scope's; see :meth:`models` for a group member's)."""
        tasks = list(self._tasks.values())
        return tasks[0].state.scorer.learner if len(tasks) == 1 else self.learner

    def models(self) -> dict[int, Any]:
        """The champion's learner of each task this updater works on now, by events partition (0 for a task
        over all)."""
        return {number: task.state.scorer.learner for number, task in list(self._tasks.items())}

    @property
    def champion(self) -> str:
        """The name of the model that answers now: one task's; over several tasks (a group member's partitions,
        each with its own champion: see :meth:`champions`), the one that answers in most of them; the first model
        before any task."""
        names = list(self.champions().values())
        return max(names, key=names.count) if names else self.learner.name

    def champions(self) -> dict[int, str]:
        """The name of the model that answers now in each task this updater works on, by events partition (0 for
        a task over all)."""
        return {number: task.state.champion.name for number, task in sorted(self._tasks.items())}

    def promotions(self) -> list[dict[str, Any]]:
        """Every promotion so far, in order, of the tasks this updater works on (see
        :meth:`eventml.promotion.Champion.scored`; a group member's carry ``partition``)."""
        return [{**({"partition": task.number} if self.assignment.per_partition else {}), **promotion}
                for task in sorted(self._tasks.values(), key=lambda t: t.number)
                for promotion in task.state.champion.promotions]

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts so far (fired, or resolved; the last :data:`~eventml.alerts.KEEP_ALERTS` of each task), in
        order, of the tasks this updater works on (see
        :class:`eventml.alerts.AlertWatch`; a group member's carry ``partition``); :func:`eventml.alerts.alert_table`
        makes a DataFrame of them."""
        return [{**({"partition": task.number} if self.assignment.per_partition else {}), **alert}
                for task in sorted(self._tasks.values(), key=lambda t: t.number) if task.state.alerts is not None
                for alert in list(task.state.alerts.alerts)]

    # ------------------------------------------------------------------ running

    def run(self) -> LiveStats:
        """Run until ``max_events``, ``idle_timeout_s`` or :meth:`stop`; return the final figures.

        Raises
        ------
        KafkaUnavailableError
            If no broker answers within ``reconnect_timeout_s``, at the start or after one went away.
        SnapshotError
            If the committed state does not match the offsets committed in Kafka, is unreadable or fails
            authentication.
        """
        self._earliest_early_commit = 0.0
        self._timestamps: list[int] = []  # of the events predicted in the open transaction, for the latencies
        froze = stopped = False
        try:
            connect_with_backoff(self._connect, self._close_clients, self.settings.reconnect_timeout_s, self.kafka,
                                 self._resume_advice, first=True)
            self._started()
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

            with progress_bar(total=self.settings.max_events, desc=f"live {self.events_topic}",
                              enabled=self.progress) as self._bar:
                self._bar.tick(self._events())
                while True:
                    try:
                        if not self._transaction():
                            break
                    except (*CLIENT_ERRORS, KafkaUnavailableError) as error:
                        if isinstance(error, KafkaException) and fenced(error):
                            raise EventmlError(
                                f"Kafka fenced this live updater (transactional id {self.transactional_id!r}): "
                                f"another one {self._same_updater} took over, or the broker timed out its open "
                                "transaction; nothing committed is lost: run it again to resume") from None
                        try:
                            if abortable(error) and self.assignment.rewind(self, error):
                                continue  # only the transaction failed: its tasks resume, the clients stay
                        except (*CLIENT_ERRORS, KafkaUnavailableError) as again:  # e.g. a broker down meanwhile
                            error = again
                        self._reconnect(error)
            self.assignment.stop(self)  # a group member says it leaves (a transaction of its own)
            stopped = True
            for task in self._tasks.values():
                state = task.state
                if not state.rows or state.rows[-1]["events"] != state.counts["events"]:
                    state.rows.append(summary_row(state, self._lag([task])))  # in memory, not in the state
            self._publish_stats(running=False)
        finally:
            if froze:
                gc.unfreeze()
            if self._early is not None:
                self._early.discard()
                self._early = None
            if not stopped:
                self.assignment.stop(self)  # if it can still commit
            # leaving the group hands the partitions over at once; the tasks stay, for the figures
            self._close_clients(drop_tasks=False)
            self._commit.close()
        return self.stats

    def _started(self) -> None:
        """Hook: the first connection of a run is made."""

    def _result(self) -> LiveStats:
        return self.stats

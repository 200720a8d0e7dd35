"""Closing a live updater's transaction: state, then offsets and commit, bounded in time.

:class:`TransactionCommit` closes the open transaction in numbered steps, the same in every mode:

1. write the state of every task that processed records in it, for the input offsets it is about to
   commit, to the updater's state store (:mod:`eventml.live.stores`): a snapshot file named after
   those offsets (a state directory; not fsynced: see :mod:`eventml.live.snapshots` for why, and
   for what an OS crash does), or records produced inside the transaction (a state topic);
2. add the input offsets to the transaction and commit it, in a helper thread that the updater
   stops waiting for after ``timeout_s`` + 2 s (:class:`BoundedCalls`); a group member first waits there
   for the transaction's records to be delivered, then reads its group metadata in its own thread (see
   :meth:`TransactionCommit.__call__`);
3. tell the store the state is committed (a state directory deletes its older snapshots).

A crash between 1 and 2 leaves a snapshot ahead of the committed offsets (or state records of an
aborted transaction), which a restart ignores; a crash after 2 leaves the old snapshots too, which a
restart also ignores. The test hook
``EVENTML_LIVE_KILL_AT=before_commit:N`` (or ``after_commit:N``) makes the process SIGKILL itself
at the N-th commit of the process, right before step 2 (or after it).

Each commit's steps are timed (:attr:`TransactionCommit.timings`); one slower than
``SLOW_COMMIT_S`` is logged (``eventml.live``, INFO) with the step that took the time.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import signal
import threading
import time
from typing import Any

from eventml.errors import ConfigError
from eventml.kafka.rdkafka import KafkaError, KafkaException, TopicPartition, kafka_error

__all__ = ["KILL_ENV", "SNAPSHOT_SHARE", "BoundedCalls", "KillHook", "StateCost", "TransactionCommit", "fenced"]

#: Test hook: ``"before_commit:N"`` or ``"after_commit:N"`` makes the process SIGKILL itself
#: between writing the N-th snapshot of this process and committing it, or right after the commit.
KILL_ENV = "EVENTML_LIVE_KILL_AT"
#: commits for being caught up spend at most this share of the time on writing state (see :class:`StateCost`)
SNAPSHOT_SHARE = 0.25
GRACE_S = 2.0  # for librdkafka to report its own timeout before the updater stops waiting for it
SLOW_COMMIT_S = 0.1  # a commit slower than this is logged with its steps

log = logging.getLogger("eventml.live")


class BoundedCalls:
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


def fenced(error: KafkaException) -> bool:
    """True when another producer with the same transactional id took over (a fatal error)."""
    err = kafka_error(error)
    if err is None:
        return False
    code = err.code()
    return code in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED) or (
        code == KafkaError.INVALID_PRODUCER_EPOCH and err.fatal())


def abortable(error: BaseException) -> bool:
    """True when ``error`` failed only the open transaction (an abortable error: e.g. its offsets carried a group
    generation the group has moved on from, a rebalance having ended between the consumer's last word from the
    group and the commit): aborting it lets the same producer go on."""
    err = kafka_error(error)
    return err is not None and not err.fatal() and err.txn_requires_abort()


def stale_generation(error: BaseException) -> bool:
    """True when a transaction's offsets carried a group generation (or member) the group has moved on from:
    a rebalance ended between the consumer's last word from the group and the commit (an abortable error)."""
    return abortable(error) and kafka_error(error).code() in (
        KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS)


class KillHook:
    """The test hook :data:`KILL_ENV`: counts the commits of this process and SIGKILLs it at the chosen one."""

    def __init__(self) -> None:
        self.commits = 0  # commits of this process
        value = os.environ.get(KILL_ENV)
        self._at = None
        if value:
            where, _, n = value.partition(":")
            if where not in ("before_commit", "after_commit") or not n.isdigit():
                raise ConfigError(f"{KILL_ENV} must be before_commit:N or after_commit:N, got {value!r}")
            self._at = where, int(n)

    def maybe_die(self, where: str) -> None:
        """Called ``"before_commit"`` (after counting the commit) and ``"after_commit"``."""
        if self._at == (where, self.commits):
            os.kill(os.getpid(), signal.SIGKILL)


class StateCost:
    """What writing an updater's state costs, and so when the next commit for being caught up may come.

    The cost is the fastest of the last 20 writes, not the last one: a write that waited for the disk
    or for the CPU (another process's burst) says nothing about the next one, and spacing commits by it
    held predictions back for hundreds of milliseconds; a big model's state is slow every time, so its
    cost is still seen. Commits are spaced so that writing state takes at most :data:`SNAPSHOT_SHARE`
    of the time, at any produce rate.
    """

    def __init__(self) -> None:
        self._times: collections.deque = collections.deque(maxlen=20)

    def add(self, seconds: float) -> None:
        """One write took this long."""
        self._times.append(seconds)

    @property
    def seconds(self) -> float:
        return min(self._times, default=0.0)

    def next_early_commit(self) -> float:
        """The ``time.monotonic()`` before which a commit for being caught up should not come."""
        return time.monotonic() + self.seconds / SNAPSHOT_SHARE


class TransactionCommit:
    """Closes the transactions of one producer (see the module docstring for the steps).

    Parameters
    ----------
    store
        Where the tasks' state goes (a :class:`~eventml.live.stores.StateStore`).
    timeout_s
        How long step 2 may take (the updater's ``reconnect_timeout_s``, or less: see the engine).
    deliver_first
        Step 2 waits for the transaction's records to be delivered before it sends the offsets (a group member:
        offsets refused for a rebalance fail the transaction, and records still queued then are never sent but
        keep their sequence numbers; the next transaction then fails with OUT_OF_ORDER_SEQUENCE_NUMBER).
    """

    def __init__(self, store: Any, timeout_s: float, deliver_first: bool = False):
        self.store = store
        self.timeout_s = timeout_s
        self.deliver_first = deliver_first
        self.state_cost = StateCost()  # of the state writes
        self.timings: dict[str, float] = {}  # seconds of each step of the last commit
        self._bounded = BoundedCalls()
        self._kill = KillHook()

    def __call__(self, producer: Any, group_metadata: Any, tasks: list, send: Any) -> None:
        """Commit the open transaction of ``producer`` with the state of ``tasks`` and their input offsets.

        ``tasks`` are the tasks that processed records in the transaction (each with ``state`` and
        ``inputs``); ``send`` produces a record in the open transaction (a state topic's records);
        ``group_metadata`` gives the consumer's group metadata (``consumer.consumer_group_metadata``; called in this
        thread, which may be inside a rebalance callback).
        Raises a ``KafkaException`` (``_TIMED_OUT`` if step 2 outlived ``timeout_s``).
        """
        self._kill.commits += 1
        started = time.monotonic()
        offsets = []
        for task in tasks:  # 1
            state = task.state
            state.sequence += 1
            self.store.write(task, send)
            offsets.extend(TopicPartition(where.topic, where.partition, state.offsets[where.key])
                           for where in task.inputs)
        written = time.monotonic()
        if tasks:
            self.state_cost.add(written - started)
        self._kill.maybe_die("before_commit")
        timeout = self.timeout_s
        steps = [time.monotonic(), 0.0, 0.0]  # 2 starts; offsets sent; committed
        ends = steps[0] + timeout
        call = ["flush"]  # the call under way, for the log of one that did not return

        def deliver() -> None:  # 2, a group member's: the records first
            if producer.flush(timeout) > 0:
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "the transaction's records were not "
                                                f"delivered within {timeout:g} s"))

        def commit(metadata: Any) -> None:  # 2
            if offsets:
                call[0] = "send_offsets_to_transaction"
                producer.send_offsets_to_transaction(offsets, metadata, max(0.1, ends - time.monotonic()))
            steps[1] = time.monotonic()
            call[0] = "commit_transaction"
            producer.commit_transaction(max(0.1, ends - time.monotonic()))
            steps[2] = time.monotonic()

        # a broker that does not come back within timeout_s is a KafkaException (_TIMED_OUT), from
        # librdkafka or, if one of its waits ignores the timeout, from here; the run then restores
        try:
            if offsets and self.deliver_first:
                self._bounded.call(deliver, timeout + GRACE_S)
            # The group metadata is read here, in the caller's thread, after the delivery: a rebalance may end
            # meanwhile, and offsets sent with the generation before it are refused (ILLEGAL_GENERATION). Not in the
            # helper thread: inside a rebalance callback (which runs inside the consumer's consume()),
            # confluent-kafka >= 2.16 lets no other thread use the consumer until consume() returns, so a commit
            # made there waited for the callback, which waited for the commit, until the bound (17 s).
            metadata = group_metadata() if offsets else None
            self._bounded.call(lambda: commit(metadata), max(0.1, ends - time.monotonic()) + GRACE_S)
        except KafkaException as exc:
            if not steps[2]:  # say which call did not return
                log.info("commit %d: %s failed after %.1f s: %s", self._kill.commits, call[0],
                         time.monotonic() - steps[0], exc)
            raise
        committed = time.monotonic()
        self._kill.maybe_die("after_commit")
        for task in tasks:  # 3
            self.store.committed(task)
        ended = time.monotonic()
        self.timings = {"snapshot": written - started, "handoff": (steps[0] - written) + (committed - steps[2]),
                        "offsets": steps[1] - steps[0], "commit": steps[2] - steps[1], "prune": ended - committed,
                        "total": ended - started}
        if self.timings["total"] > SLOW_COMMIT_S:
            log.info("commit %d took %.0f ms (%s)", self._kill.commits, self.timings["total"] * 1e3,
                     ", ".join(f"{step} {seconds * 1e3:.1f} ms" for step, seconds in self.timings.items()
                               if step != "total"))

    @property
    def snapshot_cost_s(self) -> float:
        """What writing the state costs (see :class:`StateCost`)."""
        return self.state_cost.seconds

    def close(self) -> None:
        self._bounded.close()

"""The live updater: consume events, predict, publish, learn, keep the state — exactly once, in every mode.

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
This section tells it for one updater (``state_dir``); a group member (``group``) works the same way,
with each partition's state written to a state topic inside the transaction instead of a snapshot file
(see :mod:`eventml.live.group`). The updater reads with ``isolation.level=read_committed`` and writes
with a *transactional* producer. It works in transactions of up to ``records_per_transaction`` input records or
``transaction_interval_s`` seconds, and closes a transaction early once it has read every input
partition to its end (so at a steady produce rate predictions become readable within tens of
milliseconds, while a replay fills transactions to the limits); such early commits are spaced
so that writing snapshots takes at most a quarter of the time (a big model's snapshot, e.g.
river_arf's 4 MB in ~45 ms, means fewer, larger transactions). Inside one transaction
it publishes the predictions and the dead letters of its records; at the end it writes a
*snapshot* to the state directory (the model, the pending features, the metrics, the counters,
and the next offset of every input partition; see :mod:`eventml.live.snapshots`), then adds the
input offsets to the transaction (``send_offsets_to_transaction``) and commits. So the
predictions, the dead letters and the consumer offsets become visible together or not at all,
and the snapshot that goes with the committed offsets is already written. It is not fsynced (a
wait for the disk at every commit held predictions back by up to 100 ms): a crash of the process
loses nothing the kernel has, while after an OS crash or power loss that lost it the restart refuses
with a sentence rather than resume from another snapshot (see :mod:`eventml.live.snapshots`). Older
snapshots are deleted only after the commit. The snapshot is the one thing outside the transaction; it is
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
``transaction_interval_s``.

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

Parts
-----
One engine in every mode (:mod:`~eventml.live.engine`): :class:`LiveUpdater` with ``state_dir=`` (one
updater) or ``group=`` (a member of a group, :mod:`~eventml.live.group`; :class:`GroupUpdater` is the same
class with ``group`` required). The engine's parts: :mod:`~eventml.live.settings` (the settings, checked
once), :mod:`~eventml.live.clients` (its two Kafka clients), :mod:`~eventml.live.assignment` (which tasks
it works on: fixed, a consumer group or a lease), :mod:`~eventml.live.stores` (where each task's state
goes: a state directory, :mod:`~eventml.live.snapshots`, or a state topic,
:mod:`~eventml.live.state_topic`), :mod:`~eventml.live.merge` (the timestamp merge of a task's input
partitions), :mod:`~eventml.live.processor` (the per-record work), :mod:`~eventml.live.commit` (closing a
transaction in numbered steps, bounded in time), :mod:`~eventml.live.state` (what is kept),
:mod:`~eventml.live.stats` (figures), :mod:`~eventml.live.background` (a run in a thread) and
:mod:`~eventml.live.supervise` (``--restart-on-crash``).

Examples
--------
>>> from eventml.live import LiveUpdater
>>> updater = LiveUpdater("sea", "sea-predictions", model="river_logreg",
...                       state_dir="runs/live", idle_timeout_s=5)  # doctest: +SKIP
>>> updater.run().events  # doctest: +SKIP
20000
>>> updater.summary()[["events", "accuracy", "rolling_accuracy", "model_version"]]  # doctest: +SKIP
"""

from eventml.errors import SnapshotError
from eventml.lazy import attach

#: imported on first use, so that importing one part (e.g. ``eventml.live.clients``) imports no other
_LAZY = {"LiveUpdater": "eventml.live.updater", "load_model": "eventml.live.updater",
         "LiveStats": "eventml.live.stats", "read_predictions": "eventml.consumer", "KILL_ENV": "eventml.live.commit",
         "Promotion": "eventml.promotion", "read_promotions": "eventml.consumer",
         "Alert": "eventml.alerts", "read_alerts": "eventml.alerts",
         **dict.fromkeys(["GroupUpdater", "load_group_models", "read_assignments"], "eventml.live.group")}

__all__ = ["LiveUpdater", "LiveStats", "load_model", "read_predictions", "SnapshotError", "KILL_ENV",
           "GroupUpdater", "load_group_models", "read_assignments", "Promotion", "read_promotions",
           "Alert", "read_alerts"]


__getattr__, __dir__ = attach(__name__, _LAZY)

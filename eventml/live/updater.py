"""The live updater: one engine, one updater or a member of a group (see :class:`LiveUpdater`).

The face of :class:`~eventml.live.engine.Engine`: it checks the settings once, chooses the state store
(:mod:`eventml.live.stores`) and the assignment (:mod:`eventml.live.assignment`) of its mode, and
fixes the Kafka ids. See :mod:`eventml.live` for what is guaranteed.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from eventml.errors import ConfigError, SnapshotError
from eventml.kafka.settings import KafkaSettings
from eventml.learners import make_learners
from eventml.live.assignment import FixedAssignment, GroupAssignment, LeaseAssignment
from eventml.live.clients import live_id
from eventml.live.engine import Engine
from eventml.live.settings import LiveSettings
from eventml.live.snapshots import list_snapshots, load_snapshot, sync_files
from eventml.live.state import IDENTITY_FILE, check_topics, live_metrics, read_identity
from eventml.live.stores import DirectoryStore, TopicStore
from eventml.promotion import check_promotion
from eventml.validation import one_of
from eventml.windows import windowed

__all__ = ["LiveUpdater", "SCOPES", "load_model", "consumer_group_name", "state_topic_name", "lease_topic_name",
           "assignments_topic_name"]

log = logging.getLogger("eventml.live")

SCOPES = ("partition", "global")
"""A group's scopes: one model per partition, or one model over all partitions (one active member)."""


def state_topic_name(group: str) -> str:
    """The compacted topic that keeps the tasks' state of a group."""
    return f"eventml-{group}-state"


def consumer_group_name(group: str, scope: str = "partition") -> str:
    """The Kafka consumer group of a group of live updaters: its committed offsets say how far each partition
    (or, in the global scope, the one model) got."""
    return f"eventml-{group}" + ("-global" if scope == "global" else "")


def lease_topic_name(group: str) -> str:
    """The one-partition topic whose holder is the active member of a global-scope group."""
    return f"eventml-{group}-lease"


def assignments_topic_name(group: str) -> str:
    """The topic where a group's members announce the partitions they get and give up."""
    return f"eventml-{group}-assignments"


class LiveUpdater(Engine):
    """Consume events, predict, publish predictions, learn, and keep the state, exactly once.

    One engine (:mod:`eventml.live.engine`) in two modes, chosen by where the state goes:

    - ``state_dir=D``: **one updater**, one model over every partition of the inputs (merged by record
      time), its state in a folder of snapshots;
    - ``group=NAME``: **a member of a group** of updaters (started anywhere, any number of times) that
      share the partitions through Kafka's consumer group, one model per events partition
      (``scope="partition"``) or one global model kept by one member while the others wait as hot
      standbys (``scope="global"``); the state in the compacted, authenticated topic
      ``eventml-<group>-state`` (see :mod:`eventml.live.group`).

    Every mode has the same figures (:attr:`stats`, :meth:`summary`, :func:`eventml.watch`), limits and
    commit protocol.

    Parameters
    ----------
    events_topic
        Topic of the events (wire format; ``label`` optional).
    predictions_topic
        Topic the predictions are published to, keyed by event id.
    model
        A learner name (see :func:`eventml.learners.learner_names`) or a learner object (default
        ``"river_logreg"``). On a restart the model comes from the snapshot; the name must match the state
        directory's.
    models
        Instead of ``model``: several learners, in one updater (a list of names or learner objects, or a dict
        ``{name: learner}`` to name them; names must be unique). Each record is decoded once, and each model
        predicts it before it learns, with its own state, version, metrics and label join; a model that
        raises on a record is dead-lettered for that model only (header ``eventml.error.model``). The first
        is the *champion*: its predictions go to ``predictions_topic``, exactly as one model's; the others'
        (the *challengers*) to ``<predictions_topic>.challengers``, each naming its model. The same models in
        the same order are needed to resume.
    promotion
        With ``models``: an :class:`eventml.promotion.Promotion` rule by which a challenger becomes the
        champion (each promotion a record on ``<predictions_topic>.champions``, in the transaction of the
        predictions it affects), or None: the first model stays the champion (shadow only).
    state_dir
        Folder of the snapshots and ``updater.json`` (the ids of this updater). Restart with
        the same folder to resume; use a new folder to start over.
    group
        Instead of ``state_dir``: the name the members of a group share (letters, digits, ``.``, ``_``,
        ``-``); it names the consumer group (``eventml-<group>``), the state topic and the assignments topic.
        A labels topic must then have as many partitions as the events topic (labels keyed by event id).
    scope
        With ``group``: ``"partition"`` (one model per events partition) or ``"global"`` (one model).
    state_key
        With ``group``: the secret that authenticates the state records (at least 16 bytes; default
        ``$EVENTML_STATE_KEY``). Every member of the group needs the same one.
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
        (a restarted run finishes the same job); for a group member, by the partitions it works on.
        Dead letters do not count.
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
        How long to wait for Kafka, at the start or after a broker went away, before giving up.
    session_timeout_s
        With ``group``: how long the group waits for a member that stopped answering before its
        partitions move.
    transaction_timeout_s
        How long the broker keeps a dead updater's transaction open before it aborts it (default:
        librdkafka's 60 s for one updater, whose restart aborts it at once; 10 s in a group, where the
        partitions of a killed member wait for it).
    name
        Name of this updater; its transactional id (and, alone, its consumer group) derive from it.
        Default: the state directory's name plus a random suffix, fixed in ``updater.json``; in a group,
        the host, process id and a random suffix.
    seed
        Seed for a learner given by name.
    progress
        Show a tqdm progress bar of the events.
    summary_every
        A row of :meth:`summary` every this many events (and at the end of a run).
    windows
        :class:`eventml.windows.Window` objects: their features are added to each event's features once
        it is decoded, before the model predicts, exactly as :func:`eventml.prequential` adds them; their
        state is part of each task's committed state (it resumes exactly after a crash and moves with a
        partition), its size in :attr:`stats` (``window_keys``, ``window_values``). A restart needs the
        same windows. A target window needs the labels in the events: not with ``labels_topic``.
    metrics_port
        Serve Prometheus metrics at ``http://<metrics_host>:<metrics_port>/metrics`` (0: a free port, see
        :attr:`metrics_url`) from now until :meth:`close_metrics` (or the process ends), so the figures
        of a run that ended can still be scraped; None (default): no metrics. See :mod:`eventml.metrics.live`.
    metrics_host
        The address ``/metrics`` binds: this machine only unless told otherwise.
    alerts
        :class:`eventml.alerts.Alert` rules (e.g. ``Alert.metric_below("accuracy", 0.8, labels=200)``): each time
        one starts to hold an alert record goes to ``<predictions_topic>.alerts`` (and a ``resolved`` one when it
        stops), in the transaction of the records that decided; the rules' state is part of each task's
        committed state. See :mod:`eventml.alerts`, :meth:`alerts` and :func:`eventml.alerts.read_alerts`.

    Examples
    --------
    >>> updater = LiveUpdater("sea", "sea-predictions", model="no_such_model", state_dir="s")
    Traceback (most recent call last):
    ...
    eventml.errors.ConfigError: unknown learner 'no_such_model'; known learners: batch_forest, ...
    """

    def __init__(self, events_topic: str, predictions_topic: str, *, model: Any = None, models: Any = None,
                 promotion: Any = None,
                 state_dir: str | os.PathLike | None = None, group: str | None = None, scope: str = "partition",
                 state_key: str | bytes | None = None, labels_topic: str | None = None,
                 bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None,
                 max_events: int | None = None, idle_timeout_s: float | None = None,
                 records_per_transaction: int = 10_000, transaction_interval_s: float = 0.5,
                 label_ttl_s: float | None = None, max_pending: int = 100_000, rolling_window: int = 500,
                 reconnect_timeout_s: float = 60.0, session_timeout_s: float = 10.0,
                 transaction_timeout_s: float | None = None, name: str | None = None, seed: int | None = 42,
                 progress: bool = False, summary_every: int = 1000, windows: Any = None,
                 metrics_port: int | None = None, metrics_host: str = "127.0.0.1", alerts: Any = None,
                 **connection: Any):
        if (state_dir is None) == (group is None):
            raise ConfigError("a live updater needs state_dir (one updater, one model over every partition) or "
                              "group (members sharing the partitions, state in Kafka), not both")
        if group is not None and (not isinstance(group, str) or not group
                                  or not all(c.isalnum() or c in "._-" for c in group)):
            raise ConfigError(f"group must be letters, digits, '.', '_' or '-', got {group!r}")
        check_topics(events_topic, predictions_topic, labels_topic)
        self.windows = windowed(windows)
        if self.windows is not None and self.windows.target and labels_topic is not None:
            raise ConfigError("a target window (target=True) uses the labels events carry: not with labels_topic")
        self.scope = one_of("scope", scope, SCOPES)
        if model is not None and models is not None:
            raise ConfigError("give model= (one learner) or models= (several), not both")
        learners = make_learners(["river_logreg" if model is None else model] if models is None else models,
                                 seed=seed, what="models")
        if len({learner.task for learner in learners}) > 1:
            raise ConfigError("models must all be classifiers or all regressors, got "
                              + ", ".join(f"{learner.name}={learner.task}" for learner in learners))
        promotion = check_promotion(promotion, [learner.name for learner in learners])
        self.events_topic, self.predictions_topic, self.labels_topic = events_topic, predictions_topic, labels_topic
        self.kafka = KafkaSettings.resolve(kafka, bootstrap_servers=bootstrap_servers, **connection)
        self.bootstrap_servers = self.kafka.bootstrap_servers
        if group is not None and transaction_timeout_s is None:
            transaction_timeout_s = 10.0
        self.settings = LiveSettings(
            max_events=max_events, idle_timeout_s=idle_timeout_s, records_per_transaction=records_per_transaction,
            transaction_interval_s=transaction_interval_s, label_ttl_s=label_ttl_s, max_pending=max_pending,
            rolling_window=rolling_window, reconnect_timeout_s=reconnect_timeout_s,
            session_timeout_s=session_timeout_s, transaction_timeout_s=transaction_timeout_s,
            summary_every=summary_every)
        self.progress = progress
        self.group = group
        if group is None:
            self.state_dir = Path(state_dir)
            self.name = read_identity(self.state_dir, {
                "events_topic": events_topic, "labels_topic": labels_topic, "predictions_topic": predictions_topic,
                "model": ",".join(learner.name for learner in learners)}, name)
            ids = (live_id(self.name), live_id(self.name))
            store, assignment = DirectoryStore(self.state_dir, ids[1]), FixedAssignment()
            self._resume_advice = f"; restart the updater with the same state_dir ({self.state_dir}) to resume"
            self._same_updater = f"with state_dir {self.state_dir}"
            self._other_setup_advice = "use the same models, promotion rule and windows, or a new state_dir"
        else:
            self.state_dir = None
            self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            group_id = consumer_group_name(group, self.scope)
            ids = (f"eventml-{group}-{self.name}", group_id)
            store = TopicStore(state_topic_name(group), state_key, reader_group=f"{group_id}-state")
            if self.scope == "global":
                assignment = LeaseAssignment(lease_topic_name(group), assignments_topic_name(group), session_timeout_s)
            else:
                assignment = GroupAssignment(events_topic, assignments_topic_name(group), session_timeout_s)
            self._resume_advice = ""
            self._same_updater = f"named {self.name!r} in group {group!r}"
            self._other_setup_advice = "use the same models, promotion rule and windows, or another group name"
        self._setup(learners, live_metrics(learners[0]), store, assignment, ids, promotion, alerts)
        if metrics_port is not None:
            from eventml.metrics.live import LiveMetrics

            self.exporter = LiveMetrics(self, metrics_port, metrics_host)

    def _started(self) -> None:
        if self.state_dir is not None:  # the Kafka ids survive an OS crash (snapshots need not: see snapshots)
            sync_files(self.state_dir, IDENTITY_FILE)

    @property
    def metrics_url(self) -> str | None:
        """Where Prometheus scrapes this updater (``metrics_port``), or None."""
        return self.exporter.url if self.exporter is not None else None

    def close_metrics(self) -> None:
        """Stop serving ``/metrics`` and free its port."""
        if self.exporter is not None:
            self.exporter.close()
            self.exporter = None

    @property
    def assignments(self) -> list[dict[str, Any]]:
        """A group member's announcements, as it made them (see :func:`eventml.live.group.read_assignments`)."""
        return getattr(self.assignment, "rows", [])


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

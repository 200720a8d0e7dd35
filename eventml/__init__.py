"""eventml: a workbench for event-driven machine learning on Apache Kafka.

Everything a notebook needs is one import away::

    import eventml as em
    em.produce(em.synthetic("sea", 10_000, drift_at=5_000), "sea")
    df = em.read_dataframe("sea")

Two tiers of names. ``em.*`` holds what a notebook does every day, walking the five stages: the
topic verbs and the brokers (``create_topic``, ``LocalKafka``, ``KafkaSettings``), the sources
(``synthetic``, ``dataset``, ``from_dataframe``), writing (``produce``) and reading back
(``read_events``, ``replay``, ``read_dead_letters``), the wire types a user builds (``Event``, ``Label``), learning and
evaluating (``make_learner``, ``prequential``, ``drift_table``), running live (``LiveUpdater``,
``GroupUpdater``, ``watch``, ``load_model``), serving (``serve``), and every error a notebook may
catch. The rest is one level down, in the public module that owns it, reached as an attribute:
the codec (``em.events.encode_event``), the classes behind the verbs (``em.producer.EventProducer``,
``em.consumer.EventConsumer``, ``em.learners.RiverLearner``, ``em.scoring.Scorer``), writing dead
letters (``em.dlq``), delayed labels (``em.delay.split_labels``), the engine's parts
(``em.live.read_assignments``, ``em.kafka.check_connection``), experiments (``em.grid.run_grid``)
and the figures (``em.plots``). The rule: a name is at the top if most notebooks would call it;
a name that belongs to one topic stays with its topic, where its neighbours explain it. A name
that moved down raises an ``AttributeError`` naming its new place.

The names are imported when first used (``em.produce`` imports :mod:`eventml.producer`; see
:mod:`eventml.lazy`), so a command that needs one part, e.g. ``eventml live``, does not pay for
the others (river's datasets, scikit-learn, matplotlib, pandas); the errors are always here.
"""

from __future__ import annotations

from eventml.errors import (
    BrokerError,
    ConfigError,
    DeadLetterError,
    EventFormatError,
    EventmlError,
    KafkaAuthError,
    KafkaUnavailableError,
    ModelError,
    NotebookError,
    SnapshotError,
    SourceError,
    TopicNotFoundError,
)
from eventml.lazy import attach

__version__ = "0.1.0"

#: where each name of the top tier lives, imported on first use
_LAZY = {
    **dict.fromkeys(["read_dataframe", "read_dead_letters", "read_events", "read_labels", "read_predictions",
                     "replay"], "eventml.consumer"),
    "drift_table": "eventml.drift",
    **dict.fromkeys(["accuracy_between", "label_counts", "prequential"], "eventml.evaluate"),
    **dict.fromkeys(["Event", "Label", "Prediction"], "eventml.events"),
    **dict.fromkeys(["KafkaSettings", "LocalCluster", "LocalKafka", "bootstrap_servers", "create_topic", "delete_topic",
                     "describe_topic", "list_topics", "recreate_topic", "topic_offsets"], "eventml.kafka"),
    **dict.fromkeys(["learner_names", "make_learner"], "eventml.learners"),
    **dict.fromkeys(["GroupUpdater", "LiveUpdater", "load_group_models", "load_model"], "eventml.live"),
    "watch": "eventml.live_figure",
    **dict.fromkeys(["produce", "produce_dataframe", "produce_in_background"], "eventml.producer"),
    **dict.fromkeys(["serve", "served_scores"], "eventml.service"),
    **dict.fromkeys(["dataset", "from_csv", "from_dataframe", "make_source", "synthetic"], "eventml.sources"),
}

#: names that were at the top before the two tiers, and the module that has them now
_MOVED = {
    **dict.fromkeys(["EventConsumer", "consume"], "eventml.consumer"),
    "split_labels": "eventml.delay",
    **dict.fromkeys(["decode_event", "encode_event", "events_to_dataframe"], "eventml.events"),
    **dict.fromkeys(["collect_grid", "run_grid"], "eventml.grid"),
    "PendingLabels": "eventml.labels",
    **dict.fromkeys(["MicroBatchPartialFit", "RiverLearner", "WindowedBatch"], "eventml.learners"),
    **dict.fromkeys(["LiveStats", "read_assignments"], "eventml.live"),
    "EventProducer": "eventml.producer",
    **dict.fromkeys(["Scorer", "metric_names"], "eventml.scoring"),
    "rate_limited": "eventml.sources",
}

__all__ = ["BrokerError", "ConfigError", "DeadLetterError", "EventFormatError", "EventmlError", "KafkaAuthError",
           "KafkaUnavailableError", "ModelError", "NotebookError", "SnapshotError", "SourceError",
           "TopicNotFoundError", "__version__", *_LAZY]

__getattr__, __dir__ = attach(__name__, _LAZY, moved=_MOVED, submodules=True)

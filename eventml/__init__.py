"""eventml: a workbench for event-driven machine learning on Apache Kafka.

Everything a notebook needs is one import away::

    import eventml as em
    em.produce(em.synthetic("sea", 10_000, drift_at=5_000), "sea")
    df = em.read_dataframe("sea")

The rule for what is here: every verb a notebook calls (produce, read, evaluate, run live, watch,
draw a table), every object it builds (events, learners, settings, the updater, the local broker)
and every error it may catch. The parts behind them (``eventml.live.merge``, ``eventml.kafka.rdkafka``,
...) stay in their modules; the figures are in ``eventml.plots``.

The names are imported when first used (``em.produce`` imports :mod:`eventml.producer`), so a
command that needs one part, e.g. ``eventml live``, does not pay for the others (river's datasets,
scikit-learn, matplotlib, pandas); the errors are always here.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

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

__version__ = "0.1.0"

#: where each name of the package lives, imported on first use
_LAZY = {
    **dict.fromkeys(["EventConsumer", "consume", "read_dataframe", "read_events", "read_labels", "read_predictions",
                     "read_dead_letters", "replay"], "eventml.consumer"),
    "split_labels": "eventml.delay",
    "drift_table": "eventml.drift",
    **dict.fromkeys(["accuracy_between", "prequential"], "eventml.evaluate"),
    **dict.fromkeys(["Event", "Label", "Prediction", "decode_event", "encode_event", "events_to_dataframe"],
                    "eventml.events"),
    **dict.fromkeys(["collect_grid", "run_grid"], "eventml.grid"),
    **dict.fromkeys(["KafkaSettings", "LocalCluster", "LocalKafka", "bootstrap_servers", "create_topic", "delete_topic",
                     "describe_topic", "list_topics", "recreate_topic", "topic_offsets"], "eventml.kafka"),
    **dict.fromkeys(["MicroBatchPartialFit", "RiverLearner", "WindowedBatch", "learner_names", "make_learner"],
                    "eventml.learners"),
    "PendingLabels": "eventml.labels",
    **dict.fromkeys(["GroupUpdater", "LiveStats", "LiveUpdater", "load_group_models", "load_model",
                     "read_assignments"], "eventml.live"),
    **dict.fromkeys(["EventProducer", "produce", "produce_dataframe", "produce_in_background"], "eventml.producer"),
    **dict.fromkeys(["Scorer", "metric_names"], "eventml.scoring"),
    **dict.fromkeys(["serve", "served_scores"], "eventml.serve"),
    **dict.fromkeys(["dataset", "from_csv", "from_dataframe", "make_source", "rate_limited", "synthetic"],
                    "eventml.sources"),
    "watch": "eventml.watch",
}

__all__ = ["BrokerError", "ConfigError", "DeadLetterError", "EventFormatError", "EventmlError", "KafkaAuthError",
           "KafkaUnavailableError", "ModelError", "NotebookError", "SnapshotError", "SourceError",
           "TopicNotFoundError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:  # a module of the package, e.g. em.events.encode_label
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'eventml' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next use is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(types.ModuleType):
    """``eventml.serve`` and ``eventml.watch`` are functions, though modules of the same names exist:
    importing such a module binds the module to the package's attribute, which is set to the
    function instead (as the eager ``from eventml.watch import watch`` of the package did)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__ and hasattr(value, name):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

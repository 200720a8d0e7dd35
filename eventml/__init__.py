"""eventml: a workbench for event-driven machine learning on Apache Kafka.

Everything a notebook needs is one import away::

    import eventml as em
    em.produce(em.synthetic("sea", 10_000, drift_at=5_000), "sea")
    df = em.read_dataframe("sea")

The rule for what is here: every verb a notebook calls (produce, read, evaluate, run live, watch,
draw a table), every object it builds (events, learners, settings, the updater, the local broker)
and every error it may catch. The parts behind them (``eventml.live.merge``, ``eventml.kafka.rdkafka``,
...) stay in their modules; the figures are in ``eventml.plots``.
"""

from eventml.consumer import (EventConsumer, consume, read_dataframe, read_events, read_labels, read_predictions,
                              replay)
from eventml.delay import split_labels
from eventml.dlq import read_dead_letters
from eventml.drift import drift_table
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
from eventml.evaluate import accuracy_between, prequential
from eventml.events import Event, Label, Prediction, decode_event, encode_event, events_to_dataframe
from eventml.grid import collect_grid, run_grid
from eventml.kafka import (KafkaSettings, LocalKafka, bootstrap_servers, create_topic, delete_topic, describe_topic,
                           list_topics, recreate_topic, topic_offsets)
from eventml.learners import MicroBatchPartialFit, RiverLearner, WindowedBatch, learner_names, make_learner
from eventml.labels import PendingLabels
from eventml.live import LiveStats, LiveUpdater, load_model
from eventml.producer import EventProducer, produce, produce_dataframe, produce_in_background
from eventml.scoring import Scorer, metric_names
from eventml.serve import serve, served_scores
from eventml.sources import dataset, from_csv, from_dataframe, make_source, rate_limited, synthetic
from eventml.watch import watch

__version__ = "0.1.0"

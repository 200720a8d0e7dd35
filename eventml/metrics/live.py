"""The ``/metrics`` of a live updater: its figures, read from its tasks' state when Prometheus scrapes.

:class:`LiveCollector` is a prometheus-client *custom collector*: at each scrape it reads what the
updater already counts for its figures (:class:`~eventml.live.LiveStats` and the summary rows come
from the same counters), so the updater does no work per record for its metrics; only each commit's
time goes into a histogram. Series of a partition exist while the updater works on it: a partition
that moved to another member of the group (a rebalance) is no longer reported by this one, not left
stale.

Counters are the state's, counted across restarts (a restart resumes them from the committed state;
what a killed updater had not committed is counted again by the restart, and Prometheus sees the
drop as a counter reset). Every series of a task has the label ``partition``: its events partition
in a group, ``all`` for a task over every partition (one updater, or a group's global model); the
model's series also have ``model`` (the learner's name). See ``docs/monitoring.md`` for the list.

Examples
--------
>>> from types import SimpleNamespace
>>> from prometheus_client import CollectorRegistry, generate_latest
>>> from eventml.learners import make_learner
>>> from eventml.live.state import UpdaterState
>>> state = UpdaterState.fresh(make_learner("river_gnb"), ["accuracy"], 100)
>>> state.counts.update(events=5, learned=4)
>>> engine = SimpleNamespace(_tasks={0: SimpleNamespace(number=0, state=state, inputs=[])},
...                          assignment=SimpleNamespace(per_partition=False), stats=None, name="demo",
...                          events_topic="sea", predictions_topic="sea-p", labels_topic=None, group=None,
...                          scope="partition")
>>> registry = CollectorRegistry()
>>> registry.register(LiveCollector(engine))
>>> text = generate_latest(registry).decode()
>>> print([line for line in text.splitlines() if line.startswith("eventml_live_events_total")])
['eventml_live_events_total{partition="all"} 5.0']
"""

from __future__ import annotations

import logging
from typing import Any, Iterator

from eventml.metrics.exposition import MetricsServer

__all__ = ["LiveCollector", "LiveMetrics", "COMMIT_BUCKETS", "LABEL_OUTCOMES"]

log = logging.getLogger("eventml.live")

COMMIT_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of the commit time histogram's buckets."""

LABEL_OUTCOMES = {"joined": "on_time", "late": "late", "expired": "expired", "unknown_id": "unknown_id",
                  "duplicate": "duplicate"}
"""The ``outcome`` label of ``eventml_live_labels_total`` -> the counter of the pending-label join
(:mod:`eventml.labels`)."""


class LiveCollector:
    """A prometheus-client collector of one live updater (an :class:`~eventml.live.engine.Engine`).

    :meth:`collect` is called from the HTTP server's thread while the updater runs: it copies what it reads
    (a dict is copied whole while the GIL is held), never changes the updater and never calls its Kafka
    clients (a confluent-kafka consumer called from a second thread while the updater's polls it blocked
    the scrape); the lags are read by the updater's thread at each commit (:meth:`committed`).
    """

    def __init__(self, engine: Any):
        self.engine = engine
        self.lags: dict[tuple[str, int], int] = {}  # (topic, partition) -> lag, as of the last commit

    def committed(self) -> None:
        """Called by the updater's own thread after each commit: the lag of each input partition (the consumer is
        asked then, never from the scrape's thread)."""
        self.lags = {(where.topic, where.partition): lag for where, lag in self.engine.input_lags() if lag is not None}

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        engine = self.engine
        info = InfoMetricFamily("eventml_live_updater", "the live updater: its name, topics and mode")
        info.add_metric([], {"updater": engine.name, "events_topic": engine.events_topic,
                             "predictions_topic": engine.predictions_topic,
                             "labels_topic": engine.labels_topic or "", "group": engine.group or "",
                             "scope": engine.scope if engine.group else ""})
        yield info
        stats = engine.stats
        running = GaugeMetricFamily("eventml_live_running", "1 while the updater runs, 0 once its run ended")
        running.add_metric([], float(bool(stats is not None and stats.running)))
        yield running
        latency = GaugeMetricFamily("eventml_live_prediction_latency_seconds",
                                    "from an event's write to Kafka to the commit that made its prediction readable, "
                                    "over the last 2,000 predictions", labels=["quantile"])
        for quantile, value in (("0.5", getattr(stats, "latency_p50_s", None)),
                                ("0.99", getattr(stats, "latency_p99_s", None))):
            if value is not None:
                latency.add_metric([quantile], value)
        yield latency

        def counter(name: str, text: str, *labels: str) -> Any:
            return CounterMetricFamily(name, text, labels=["partition", *labels])

        def gauge(name: str, text: str, *labels: str) -> Any:
            return GaugeMetricFamily(name, text, labels=["partition", *labels])

        families = {
            "events": counter("eventml_live_events", "events predicted, each with its prediction published"),
            "predictions": counter("eventml_live_predictions", "predictions the model made and published", "model"),
            "learned": counter("eventml_live_learned", "labelled events the model learned from", "model"),
            "labels": counter("eventml_live_labels", "late labels by what the champion's pending-label join did "
                              "with them (joined: scored and learned)", "outcome"),
            "dead_letters": counter("eventml_live_dead_letters", "records sent to a dead-letter topic, by reason",
                                    "reason"),
            "model_errors": counter("eventml_live_model_errors", "events and labels the model failed on "
                                    "(dead letters of reason model_error)", "model"),
            "transactions": counter("eventml_live_transactions", "committed transactions that wrote the state"),
            "restarts": counter("eventml_live_restarts", "times the state was resumed from a commit"),
            "pending": gauge("eventml_live_pending_labels", "predictions waiting for their label"),
            "champion": gauge("eventml_live_champion", "1 for the model whose predictions go to the predictions "
                              "topic, 0 for a challenger", "model"),
            "version": gauge("eventml_live_model_version", "labels the model has learned (the model_version of "
                             "its predictions)", "model"),
            "alerts": counter("eventml_live_alerts", "alerts fired: times the rule started to hold (records on "
                              "<predictions>.alerts)", "rule"),
            "alert_firing": gauge("eventml_live_alert_firing", "1 while the alert rule holds (a drift rule: never "
                                  "for longer than its detection)", "rule"),
            "metric": gauge("eventml_live_model_metric", "the model's metric over every scored prediction "
                            "(window cumulative) or the last rolling_window (window rolling)",
                            "model", "metric", "window"),
        }
        per_partition = engine.assignment.per_partition
        tasks = sorted(list(engine._tasks.values()), key=lambda task: task.number)
        for task in tasks:
            state = task.state
            partition = str(task.number) if per_partition else "all"
            counts, join = dict(state.counts), dict(state.pending.counts)
            families["events"].add_metric([partition], counts.get("events", 0))
            for outcome, name in LABEL_OUTCOMES.items():
                families["labels"].add_metric([partition, outcome], join.get(name, 0))
            for reason, n in sorted(dict(state.dlq_reasons).items()):
                families["dead_letters"].add_metric([partition, reason], n)
            families["transactions"].add_metric([partition], state.sequence)
            families["restarts"].add_metric([partition], counts.get("restarts", 0))
            families["pending"].add_metric([partition], len(state.pending))
            alerts = state.alerts
            if alerts is not None:
                holding = alerts.holding()
                for rule, n in alerts.counts().items():
                    families["alerts"].add_metric([partition, rule], n)
                    families["alert_firing"].add_metric([partition, rule], float(holding[rule]))
            champion = state.model
            for model in list(state.models):
                name, model_counts, scorer = model.name, dict(model.counts), model.scorer
                learned = model_counts.get("learned", 0)
                families["predictions"].add_metric([partition, name], model_counts.get("events", 0))
                families["learned"].add_metric([partition, name], learned)
                families["model_errors"].add_metric([partition, name], model_counts.get("model_errors", 0))
                families["version"].add_metric([partition, name], learned)
                families["champion"].add_metric([partition, name], float(model is champion))
                if learned:  # no figure before the first label (as LiveStats)
                    for metric, pair in zip(scorer.names, scorer.pairs):
                        families["metric"].add_metric([partition, name, metric, "cumulative"], pair.get_cumulative())
                        families["metric"].add_metric([partition, name, metric, "rolling"], pair.get_rolling())
        yield from families.values()
        lag = GaugeMetricFamily("eventml_live_consumer_lag", "records of an input partition not read yet, as of the "
                                "last commit", labels=["topic", "partition"])
        owned = {(where.topic, where.partition) for task in tasks for where in task.inputs}
        for (topic, partition), n in sorted(self.lags.items()):
            if (topic, partition) in owned:  # not a partition given up since
                lag.add_metric([topic, str(partition)], n)
        yield lag


class LiveMetrics:
    """A live updater's metrics: a registry of its own with its :class:`LiveCollector` and the commit time
    histogram, served at :attr:`url` by a :class:`~eventml.metrics.exposition.MetricsServer`.

    Parameters
    ----------
    engine
        The updater.
    port, host
        Where ``/metrics`` is served (see :class:`~eventml.metrics.exposition.MetricsServer`).
    """

    def __init__(self, engine: Any, port: int, host: str = "127.0.0.1"):
        from prometheus_client import CollectorRegistry, Histogram

        self.registry = CollectorRegistry()
        self.collector = LiveCollector(engine)
        self.registry.register(self.collector)
        self.commit_seconds = Histogram("eventml_live_commit_seconds", "time to close a transaction: write the state, "
                                        "send the offsets, commit", buckets=COMMIT_BUCKETS, registry=self.registry)
        self.server = MetricsServer(self.registry, port, host)

    @property
    def url(self) -> str:
        return self.server.url

    def committed(self, seconds: float) -> None:
        """A transaction was committed in ``seconds`` (called by the updater's thread)."""
        self.commit_seconds.observe(seconds)
        try:
            self.collector.committed()
        except Exception:  # metrics never stop the updater: the lags stay as of the commit before
            log.debug("reading the lags for /metrics failed", exc_info=True)

    def close(self) -> None:
        self.server.close()

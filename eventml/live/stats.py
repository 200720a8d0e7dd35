"""A live updater's figures: the latest (:class:`LiveStats`) and the summary rows over time.

Examples
--------
>>> stats = LiveStats(events=1000, labelled=900, model_version=900, score=0.95)
>>> print(stats.to_dict()["accuracy"], stats.to_dict()["model_version"])
0.95 900
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any

import numpy as np

__all__ = ["LiveStats", "StatsMeter", "summary_row"]

#: what happened to late labels (see eventml.labels), in the stats and the summary rows
LABEL_FIGURES = ("late", "expired", "unknown_id", "duplicate")


@dataclasses.dataclass(frozen=True)
class LiveStats:
    """The live figures of an updater, as of its last committed transaction.

    ``score`` and ``rolling_score`` are the cumulative and rolling value (river
    ``utils.Rolling`` over ``rolling_window`` scored predictions) of ``metric``: accuracy for
    classifiers, MAE for regressors. Latencies are from the time an event was written to Kafka
    (its record timestamp) to the commit that made its prediction readable, over the last
    2,000 events. ``lag`` is how many records of the events topic are not read yet.
    ``dead_letters`` counts every record sent to a DLQ, ``model_errors`` those of them the model
    failed on. ``late``, ``expired``, ``unknown_id`` and ``duplicate`` are the counters of the
    pending-label join (:mod:`eventml.labels`); ``pending`` is how many predictions wait for a label.
    ``transactions`` counts the commits that wrote the state. ``window_keys`` and ``window_values``
    are the size of the windowed features' state (:meth:`eventml.windows.WindowedFeatures.state_size`).
    ``alerts`` counts the alerts fired (rules that started to hold, :mod:`eventml.alerts`).

    These figures are of the updater's *tasks*, counted across restarts: a single updater has one; a
    group member sums its partitions' (their scores weighted by their labels), ``partitions`` naming
    them. ``session_events`` counts the events this updater object predicted itself, in this process.
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
    late: int = 0
    expired: int = 0
    unknown_id: int = 0
    duplicate: int = 0
    pending: int = 0
    restarts: int = 0
    transactions: int = 0
    window_keys: int = 0
    window_values: int = 0
    alerts: int = 0
    running: bool = False
    partitions: tuple = ()
    session_events: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The figures as a flat dict (``score`` named after the metric, e.g. ``accuracy``)."""
        out = dataclasses.asdict(self)
        out[self.metric] = out.pop("score")
        out[f"rolling_{self.metric}"] = out.pop("rolling_score")
        return out


def _counters(state: Any) -> dict[str, int]:
    counts, labels = state.counts, state.pending.counts
    windows = state.windows.state_size() if state.windows is not None else {"window_keys": 0, "window_values": 0}
    alerts = sum(state.alerts.counts().values()) if state.alerts is not None else 0
    return {"dead_letters": counts["dead_letters"], "model_errors": counts["model_errors"],
            **{name: labels[name] for name in LABEL_FIGURES}, "pending": len(state.pending),
            "restarts": counts["restarts"], **windows, "alerts": alerts}


def _summed(states: list) -> dict[str, int]:
    if len(states) == 1:
        return _counters(states[0])
    total: collections.Counter = collections.Counter()
    for state in states:
        total.update(_counters(state))
    return {name: total[name] for name in ("dead_letters", "model_errors", *LABEL_FIGURES, "pending", "restarts",
                                           "window_keys", "window_values", "alerts")}


def _score(metrics: list, weights: list[int]) -> float | None:
    """A metric over several tasks: each one's value weighted by its labels (exact for accuracy, log loss
    and MAE, which are means; one task's value as it is)."""
    total = sum(weights)
    if not total:
        return None
    if len(metrics) == 1:
        return metrics[0].get()
    return sum(metric.get() * weight for metric, weight in zip(metrics, weights) if weight) / total


def summary_row(state: Any, lag: int | None) -> dict[str, Any]:
    """One row of :meth:`LiveUpdater.summary`: counts, every metric (cumulative, then rolling), the
    counters, the lag and the time (epoch seconds), all of the champion; with several models also
    ``champion`` (its name) and every model's metrics as ``<metric>:<model>`` (e.g. ``rolling_accuracy:river_gnb``)."""
    learned = state.learned
    row = {"events": state.counts["events"], "labelled": learned, "model_version": learned,
           **state.scorer.metrics(), **_counters(state), "lag": lag, "time": time.time()}
    if len(state.models) > 1:  # several models: which one answers, and each one's metrics as "<metric>:<model>"
        row["champion"] = state.champion.name
        for model in state.models:
            row.update((f"{name}:{model.name}", value) for name, value in model.scorer.metrics().items())
    return row


class StatsMeter:
    """Turns the state into :class:`LiveStats`: the event rate over the last 20 commits that
    predicted something (so a run that ends after an idle wait reports the rate it ran at) and the
    latency percentiles over the last 2,000 predictions, computed again at most every
    ``PERCENTILES_EVERY_S`` while running (~0.25 ms each time, after every commit: tens a second)."""

    PERCENTILES_EVERY_S = 0.2

    def __init__(self, metric: str):
        self.metric = metric
        self.latencies: collections.deque = collections.deque(maxlen=2000)
        self._rates: collections.deque = collections.deque(maxlen=20)
        self._percentiles: tuple[float | None, float | None] = (None, None)
        self._percentiles_at = float("-inf")

    def restart(self) -> None:
        """A new run: rates start over (latencies are kept)."""
        self._rates.clear()

    def stats(self, states: list, lag: int | None, running: bool, partitions: tuple = (),
              session_events: int = 0) -> LiveStats:
        """The figures of the tasks' ``states`` (see :class:`LiveStats`)."""
        if not self._rates or self._rates[-1][1] != session_events:  # an idle wait does not lower the rate
            self._rates.append((time.monotonic(), session_events))
        (t0, e0), (t1, e1) = self._rates[0], self._rates[-1]
        now = time.monotonic()
        if self.latencies and (not running or now - self._percentiles_at >= self.PERCENTILES_EVERY_S):
            latencies = np.fromiter(self.latencies, float)
            self._percentiles = (float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99)))
            self._percentiles_at = now
        weights = [state.learned for state in states]
        learned = sum(weights)
        return LiveStats(
            events=sum(state.counts["events"] for state in states), labelled=learned, model_version=learned,
            metric=self.metric, score=_score([state.scorer.cumulative[0] for state in states], weights),
            rolling_score=_score([state.scorer.rolling[0] for state in states], weights),
            events_per_s=(e1 - e0) / (t1 - t0) if t1 > t0 else 0.0, lag=lag,
            latency_p50_s=self._percentiles[0], latency_p99_s=self._percentiles[1],
            **_summed(states), transactions=sum(state.sequence for state in states), running=running,
            partitions=tuple(partitions), session_events=session_events)

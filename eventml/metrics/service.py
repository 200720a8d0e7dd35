"""The ``GET /metrics`` of the prediction service (``eventml serve``): requests, their time, and what is served.

:class:`ServiceMetrics` keeps a registry of its own with

- ``eventml_serve_requests_total{route, method, status}`` and the histogram
  ``eventml_serve_request_seconds{route}``, counted by an ASGI middleware (:class:`RequestMetrics`)
  around the app; ``route`` is the app's route (``/predict``, ``/model``, ``/healthz``, ``/metrics``,
  ``/docs``, ``/openapi.json``) or ``other``, so a scan of random paths does not make series;
- read from the service when scraped (:class:`ServedCollector`): the predictions answered and the
  requests the model failed on, the watcher's swaps, whether a model is ready, and per served model
  (``partition``: the events partition in a group, ``all`` for one model over every partition) its
  ``model_version``, transaction ``sequence``, age (seconds since the updater wrote it) and since
  when it is served; with ``close_loop`` the served records written to Kafka and those that failed.

Examples
--------
>>> from types import SimpleNamespace
>>> service = SimpleNamespace(served=3, model_errors=0, loop=None,
...                           watcher=SimpleNamespace(current=None, swaps=0))
>>> text = ServiceMetrics(service).exposition().decode()
>>> print([line for line in text.splitlines() if line.startswith("eventml_serve_predictions_total")])
['eventml_serve_predictions_total 3.0']
"""

from __future__ import annotations

import time
from typing import Any, Iterator

__all__ = ["ServiceMetrics", "RequestMetrics", "ServedCollector", "ROUTES", "REQUEST_BUCKETS", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Prometheus' text format, as :meth:`ServiceMetrics.exposition` writes it."""

ROUTES = frozenset({"/predict", "/model", "/healthz", "/metrics", "/docs", "/openapi.json"})
"""The ``route`` label's values, besides ``other``."""

REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Upper bounds (seconds) of the request time histogram's buckets."""


def _served_models(current: Any) -> list[tuple[str, Any]]:
    """``(partition label, CommittedModel)`` of each model served now (the champion and each challenger, which
    ``?model=`` answers from): one updater's, or of each partition of a group's."""
    from eventml.service.group_watcher import GroupModels

    if current is None:
        return []
    if isinstance(current, GroupModels):
        states = [("all" if key == "global" else str(key), one) for key, one in current.models.items() if one is not None]
    else:
        states = [("all", current)]
    return [(partition, state.named(name)) for partition, state in states for name in (state.models or [state.model])]


class ServedCollector:
    """A prometheus-client collector of a :class:`~eventml.service.server.PredictionService`, read when scraped."""

    def __init__(self, service: Any):
        self.service = service

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        service = self.service
        watcher = service.watcher
        current = watcher.current  # read once, as a request does
        yield CounterMetricFamily("eventml_serve_predictions", "predictions answered", value=service.served)
        yield CounterMetricFamily("eventml_serve_model_errors", "requests the model failed on (answered 500)",
                                  value=service.model_errors)
        yield CounterMetricFamily("eventml_serve_swaps", "times a newly committed model was swapped in",
                                  value=watcher.swaps)
        yield GaugeMetricFamily("eventml_serve_model_ready", "1 when every partition has a committed model served",
                                value=float(current is not None and current.ready))
        now = time.time()
        families = {
            "version": GaugeMetricFamily("eventml_serve_model_version", "labels the served model had learned",
                                         labels=["partition", "model"]),
            "sequence": GaugeMetricFamily("eventml_serve_model_sequence", "the updater's transaction that committed "
                                          "the served model", labels=["partition", "model"]),
            "age": GaugeMetricFamily("eventml_serve_model_age_seconds", "seconds since the updater wrote the served "
                                     "model", labels=["partition", "model"]),
            "since": GaugeMetricFamily("eventml_serve_model_served_since_seconds", "when the served model was "
                                       "swapped in (epoch seconds)", labels=["partition", "model"]),
        }
        for partition, model in _served_models(current):
            labels = [partition, model.model]
            families["version"].add_metric(labels, model.model_version)
            families["sequence"].add_metric(labels, model.sequence)
            if model.written_at is not None:
                families["age"].add_metric(labels, max(0.0, now - model.written_at))
            families["since"].add_metric(labels, model.served_since)
        yield from families.values()
        if service.loop is not None:
            status = service.loop.status()
            yield CounterMetricFamily("eventml_serve_loop_written", "served events and predictions written to Kafka "
                                      "(close_loop)", value=status["written"])
            yield CounterMetricFamily("eventml_serve_loop_failed", "served records whose write to Kafka failed",
                                      value=status["failed"])


class ServiceMetrics:
    """The metrics of one prediction service: a registry of its own with the request counters, the request
    time histogram and a :class:`ServedCollector`. :meth:`exposition` is what ``GET /metrics`` answers."""

    def __init__(self, service: Any):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("eventml_serve_requests", "HTTP requests answered, by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.request_seconds = Histogram("eventml_serve_request_seconds", "time to answer a request, by route",
                                         ["route"], buckets=REQUEST_BUCKETS, registry=self.registry)
        self.registry.register(ServedCollector(service))

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: counts each HTTP request of ``app`` by route, method and status, and times it."""

    def __init__(self, app: Any, metrics: ServiceMetrics):
        self.app = app
        self.requests, self.seconds = metrics.requests, metrics.request_seconds

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in ROUTES else "other"
        status = 500  # if the app raises before it answers

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.seconds.labels(route).observe(time.perf_counter() - started)
            self.requests.labels(route, scope["method"], str(status)).inc()

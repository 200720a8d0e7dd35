"""Watched from outside the notebook: Prometheus metrics of the live updater and the prediction service.

Both speak Prometheus' text format over HTTP through the official client (``prometheus-client``),
each with a registry of its own (never the client's global one: several updaters may run in one
process):

- a live updater with ``metrics_port`` (``eventml live --metrics-port 9108``) serves ``/metrics`` on
  ``127.0.0.1`` unless told otherwise (:mod:`eventml.metrics.live`), in every mode; its figures are
  read from the updater's state when Prometheus scrapes, so they cost the updater nothing per record;
- ``eventml serve`` answers ``GET /metrics`` on its own port (:mod:`eventml.metrics.service`).

Parts: :mod:`~eventml.metrics.exposition` (the HTTP server of a registry), :mod:`~eventml.metrics.live`,
:mod:`~eventml.metrics.service`. The series are listed in ``docs/monitoring.md``.
"""

from eventml.metrics.exposition import MetricsServer

__all__ = ["MetricsServer"]

"""Matplotlib figures of event streams, preprocessing and learning results.

Every function takes a DataFrame (events from :func:`eventml.read_dataframe`, a result
from :mod:`eventml.preprocess`, from :func:`eventml.prequential` or from
:func:`eventml.grid.run_grid`), draws on ``ax`` (a new figure when not given) and returns
the Axes; none writes files (use :func:`eventml.results.save_plot` on ``ax.figure``).

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import eventml as em
>>> from eventml import plots
>>> df = em.events.events_to_dataframe(em.synthetic("sea", 400, drift_at=200))
>>> ax = plots.plot_label_share(df, window=50, drift_at=200)
>>> [line.get_label() for line in ax.lines]
['label 0', 'label 1', 'drift at 200']
"""

from eventml.plots.learning import plot_grid, plot_metric_vs_speed, plot_rolling_metric, plot_time_per_event
from eventml.plots.live import plot_live, plot_served, streaming_rate
from eventml.plots.scale import plot_ownership, plot_partition_sweep, plot_throughput
from eventml.plots.streams import (plot_event_rate, plot_feature_distributions, plot_label_share, plot_missing_share,
                                   plot_online_vs_batch, plot_transform_gap)

__all__ = [
    "plot_event_rate",
    "plot_label_share",
    "plot_feature_distributions",
    "plot_online_vs_batch",
    "plot_missing_share",
    "plot_transform_gap",
    "plot_rolling_metric",
    "plot_metric_vs_speed",
    "plot_time_per_event",
    "plot_grid",
    "plot_live",
    "plot_served",
    "streaming_rate",
    "plot_ownership",
    "plot_throughput",
    "plot_partition_sweep",
]

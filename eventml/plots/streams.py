"""Figures of event streams and preprocessing: rates, label shares, feature distributions, gaps."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from eventml.plots.base import axes as _axes
from eventml.preprocess import NUMERIC, feature_columns, feature_kinds


def plot_event_rate(df: pd.DataFrame, *, bin_s: float = 1.0, time_column: str = "ts", ax: Axes | None = None) -> Axes:
    """Events per second over time: events counted in bins of ``bin_s`` seconds of ``time_column``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> df = pd.DataFrame({"ts": [0.0, 0.2, 0.5, 1.1, 2.5]})
    >>> ax = plot_event_rate(df)
    >>> ax.lines[0].get_ydata().tolist()
    [3.0, 1.0, 1.0]
    """
    ax = _axes(ax)
    t = df[time_column].to_numpy(dtype=float)
    t = t[~np.isnan(t)]
    start = t.min() if t.size else 0.0
    counts = np.bincount(((t - start) // bin_s).astype(int)) if t.size else np.zeros(0)
    ax.step(np.arange(counts.size) * bin_s, counts / bin_s, where="post", label="events/s")
    ax.set(xlabel=f"seconds since the first event ({time_column})", ylabel="events per second",
           title=f"Event rate ({bin_s:g} s bins)")
    ax.set_ylim(bottom=0)
    return ax


def plot_label_share(df: pd.DataFrame, *, window: int = 500, drift_at: int | None = None,
                     label_column: str = "label", ax: Axes | None = None) -> Axes:
    """Share of each label over the last ``window`` events, along the stream; a dashed
    vertical line marks the event index ``drift_at``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = plot_label_share(pd.DataFrame({"label": [0, 1, 1, 2]}), window=2)
    >>> ax.lines[1].get_ydata().tolist()
    [0.0, 0.5, 1.0, 0.5]
    """
    ax = _axes(ax)
    labels = df[label_column].reset_index(drop=True)
    for value in sorted(labels.dropna().unique()):
        share = (labels == value).astype(float).rolling(window, min_periods=max(1, window // 10)).mean()
        ax.plot(share.index, share.to_numpy(), label=f"label {value}")
    if drift_at is not None:
        ax.axvline(drift_at, color="black", linestyle="--", label=f"drift at {drift_at}")
    ax.set(xlabel="event index", ylabel=f"share (last {window} events)", title="Label share", ylim=(0, 1))
    ax.legend(loc="best")
    return ax


def _draw_distribution(ax: Axes, series: pd.Series, numeric: bool, bins: int, max_categories: int) -> None:
    values = series.dropna()
    if numeric:
        ax.hist(values.to_numpy(dtype=float), bins=bins)
    else:
        counts = values.astype(str).value_counts().head(max_categories).sort_index()
        ax.bar(counts.index.tolist(), counts.to_numpy())
        ax.tick_params(axis="x", labelrotation=90)
    ax.set(title=str(series.name), ylabel="events")


def plot_feature_distributions(df: pd.DataFrame, features: Sequence[str] | None = None, *, bins: int = 30,
                               ncols: int = 3, max_categories: int = 20, axes=None) -> np.ndarray:
    """A grid with one histogram per numeric feature and one bar chart per categorical one
    (its ``max_categories`` most frequent values).

    Returns
    -------
    numpy.ndarray
        The Axes, one per feature, in order (a new figure's unused cells are hidden).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> df = pd.DataFrame({"x": [0.1, 0.5, 0.7], "color": ["red", "blue", "red"]})
    >>> axes = plot_feature_distributions(df, bins=4)
    >>> len(axes), len(axes[0].patches), len(axes[1].patches)
    (2, 4, 2)
    """
    kinds = feature_kinds(df, features)
    if axes is None:
        nrows = max(1, math.ceil(len(kinds) / ncols))
        _, grid = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 3.0 * nrows), squeeze=False, layout="constrained")
        for extra in grid.flat[len(kinds):]:
            extra.set_visible(False)
        axes = grid.flat[:len(kinds)]
    axes = np.asarray(axes, dtype=object).ravel()
    for ax, (feature, kind) in zip(axes, kinds.items()):
        _draw_distribution(ax, df[feature], kind == NUMERIC, bins, max_categories)
    return axes[:len(kinds)]


def plot_online_vs_batch(stats: pd.DataFrame, feature: str, *, ax: Axes | None = None) -> Axes:
    """Running mean and standard deviation of ``feature``: online (river, solid lines) next to
    batch (numpy over the same prefix, dashed), from :func:`eventml.preprocess.online_vs_batch_stats`.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from eventml.preprocess import online_vs_batch_stats
    >>> stats = online_vs_batch_stats(pd.DataFrame({"x": [1.0, 2.0, 4.0, 8.0]}), every=1)
    >>> ax = plot_online_vs_batch(stats, "x")
    >>> [line.get_label() for line in ax.lines]
    ['online mean', 'batch mean', 'online std', 'batch std']
    """
    ax = _axes(ax)
    rows = stats[stats["feature"] == feature]
    for stat, color in (("mean", "C0"), ("std", "C1")):
        ax.plot(rows["step"], rows[f"online_{stat}"], color=color, label=f"online {stat}")
        ax.plot(rows["step"], rows[f"batch_{stat}"], color="black", linestyle=(0, (2, 3)), label=f"batch {stat}")
    ax.set(xlabel="events seen", ylabel=feature, title=f"{feature}: river running stats vs numpy on the prefix")
    ax.legend(loc="best")
    return ax


def plot_missing_share(df: pd.DataFrame, features: Sequence[str] | None = None, *, ax: Axes | None = None) -> Axes:
    """One bar per feature: the share of events where it is missing.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = plot_missing_share(pd.DataFrame({"id": ["a", "b"], "x": [1.0, None], "c": ["u", "v"]}))
    >>> [float(bar.get_height()) for bar in ax.patches]
    [0.5, 0.0]
    """
    ax = _axes(ax)
    features = feature_columns(df) if features is None else list(features)
    share = df[features].isna().mean()
    ax.bar([str(f) for f in features], share.to_numpy())
    ax.set(xlabel="feature", ylabel="share missing", title="Missing values per feature")
    ax.tick_params(axis="x", labelrotation=45)
    return ax


def plot_transform_gap(gap: pd.Series, *, window: int = 50, ax: Axes | None = None) -> Axes:
    """How far the online pipeline's output is from the batch one as the stream goes on:
    ``gap`` from :meth:`eventml.preprocess.PipelineComparison.gap`, averaged over ``window``
    events, on a log scale.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = plot_transform_gap(pd.Series([1.0, 0.5, 0.1, 0.01]), window=2)
    >>> ax.lines[0].get_ydata().tolist()
    [1.0, 0.75, 0.3, 0.055]
    """
    ax = _axes(ax)
    smooth = gap.rolling(window, min_periods=1).mean()
    ax.plot(smooth.index, smooth.to_numpy(), label=f"mean over {window} events")
    ax.set_yscale("log")
    ax.set(xlabel="event number", ylabel="max |online - batch|",
           title="Online transform (as events arrive) vs batch transform")
    ax.legend(loc="best")
    return ax


# ------------------------------------------------------------------ learning results

"""Figures of learning results: rolling metrics, metric against speed, time per event, grids."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from eventml.errors import ConfigError
from eventml.plots.base import axes as _axes
from eventml.plots.base import drift_line as _drift_line
from eventml.plots.base import learners as _learners


def plot_rolling_metric(df: pd.DataFrame, metric: str = "accuracy", *, drift_at: int | None = None,
                        drifts: Sequence[dict] | pd.DataFrame | None = None, ax: Axes | None = None) -> Axes:
    """The rolling ``metric`` of each learner along the stream, from :func:`eventml.prequential`,
    with each learner's drift detections as ``x`` markers on its line and the true drift
    position of a synthetic stream as a dashed vertical line.

    Parameters
    ----------
    df
        A prequential result (its ``rolling_<metric>`` column, against ``events``).
    metric
        A metric the result holds, e.g. ``"accuracy"`` or ``"mae"``.
    drift_at
        The event index where the stream's concept changes, if known.
    drifts
        Detections (dicts or a DataFrame with ``learner`` and ``events``); by default the rows
        of ``df`` whose ``detection`` column names a detector (a prequential result with ``drift``).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> df = pd.DataFrame({"events": [100, 200, 100, 200], "learner": ["a", "a", "b", "b"],
    ...                    "rolling_accuracy": [0.9, 0.5, 0.8, 0.7]})
    >>> ax = plot_rolling_metric(df, drift_at=150, drifts=[{"learner": "a", "events": 200}])
    >>> [line.get_label() for line in ax.lines]
    ['a', 'b', 'true drift at 150', 'a: drift detected']
    >>> ax.lines[3].get_xydata().tolist()
    [[200.0, 0.5]]
    """
    column = f"rolling_{metric}"
    if column not in df:
        known = sorted(c[len("rolling_"):] for c in df.columns if c.startswith("rolling_"))
        raise ConfigError(f"no rolling {metric!r} in this result; it has: {', '.join(known) or 'none'}")
    ax = _axes(ax, (8.0, 3.8))
    colors = {}
    for learner in _learners(df):
        rows = df[df["learner"] == learner]
        (line,) = ax.plot(rows["events"], rows[column], label=learner)
        colors[learner] = line.get_color()
    _drift_line(ax, drift_at)
    if drifts is None:
        drifts = df[df["detection"].notna()] if "detection" in df else []
    detections = pd.DataFrame(list(drifts) if not isinstance(drifts, pd.DataFrame) else drifts,
                              columns=["learner", "events"])
    for learner, hits in detections.groupby("learner", sort=False):
        rows = df[df["learner"] == learner]
        y = np.interp(hits["events"], rows["events"], rows[column])
        ax.plot(hits["events"], y, linestyle="none", marker="x", markersize=8, markeredgewidth=2,
                color=colors.get(learner, "black"), label=f"{learner}: drift detected")
    ax.set(xlabel="events", ylabel=f"rolling {metric}", title=f"Rolling {metric} along the stream")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_metric_vs_speed(df: pd.DataFrame, metric: str = "accuracy", *, ax: Axes | None = None) -> Axes:
    """One point per learner: its final cumulative ``metric`` against the events per second it
    processed (events divided by its predict plus learn seconds), on a log scale.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> df = pd.DataFrame({"events": [1000, 1000], "learner": ["fast", "slow"], "accuracy": [0.8, 0.9],
    ...                    "predict_seconds": [0.01, 0.5], "learn_seconds": [0.01, 0.5]})
    >>> ax = plot_metric_vs_speed(df)
    >>> ax.collections[0].get_offsets().tolist()
    [[50000.0, 0.8], [1000.0, 0.9]]
    """
    final = df.groupby("learner", sort=False).tail(1)
    speed = final["events"] / (final["predict_seconds"] + final["learn_seconds"])
    ax = _axes(ax, (6.0, 4.0))
    ax.scatter(speed, final[metric])
    for name, x, y in zip(final["learner"], speed, final[metric]):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize="small")
    ax.set_xscale("log")
    ax.set(xlabel="events per second (predict + learn)", ylabel=metric, title=f"{metric} against speed")
    return ax


def plot_time_per_event(df: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Microseconds each learner spends per event (predict plus learn) in each interval between
    result rows, as the stream grows: a batch model that refits on everything seen so far
    climbs, an online model stays flat.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> df = pd.DataFrame({"events": [100, 200, 300], "learner": ["a"] * 3,
    ...                    "predict_seconds": [0.001, 0.002, 0.004], "learn_seconds": [0.0, 0.001, 0.003]})
    >>> ax = plot_time_per_event(df)
    >>> np.round(ax.lines[0].get_ydata(), 6).tolist()
    [10.0, 20.0, 40.0]
    """
    ax = _axes(ax)
    for learner in _learners(df):
        rows = df[df["learner"] == learner]
        seconds = (rows["predict_seconds"] + rows["learn_seconds"]).diff().fillna(
            rows["predict_seconds"] + rows["learn_seconds"])
        events = rows["events"].diff().fillna(rows["events"])
        ax.plot(rows["events"], 1e6 * seconds / events, label=learner)
    ax.set_yscale("log")
    ax.set(xlabel="events", ylabel="µs per event (predict + learn)", title="Time per event as the stream grows")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_grid(df: pd.DataFrame, x: str, y: str, *, hue: str | None = None, ax: Axes | None = None) -> Axes:
    """Compare the runs of an experiment grid (:func:`eventml.grid.run_grid`): the mean of
    figure ``y`` for each value of parameter ``x``, one line per value of ``hue``, with a bar
    from the smallest to the largest run (e.g. over seeds). Failed runs are left out.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> runs = pd.DataFrame({"MODEL": ["a", "a", "b", "b"], "SEED": [1, 2, 1, 2],
    ...                      "accuracy": [0.8, 0.9, 0.6, 0.7], "error": [None] * 4})
    >>> ax = plot_grid(runs, x="MODEL", y="accuracy")
    >>> [round(v, 2) for v in ax.lines[0].get_ydata()]
    [0.85, 0.65]
    """
    for column in (x, y, hue):
        if column is not None and column not in df:
            raise ConfigError(f"{column!r} is not a column of the grid result; it has: {', '.join(map(str, df.columns))}")
    ok = df[df["error"].isna()] if "error" in df else df
    hashable = {c: ok[c].map(lambda v: str(v) if isinstance(v, (list, dict)) else v) for c in (x, hue) if c}
    ok = ok.assign(**hashable)  # a grid value may be a list, e.g. LEARNERS
    positions = {value: i for i, value in enumerate(dict.fromkeys(ok[x]))}
    ax = _axes(ax)
    groups = ok.groupby(hue, sort=False) if hue else [(None, ok)]
    for value, rows in groups:
        stats = rows.groupby(x, sort=False)[y].agg(["mean", "min", "max"])
        xs = [positions[v] for v in stats.index]
        ax.errorbar(xs, stats["mean"], yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
                    marker="o", capsize=3, label=None if hue is None else f"{hue}={value}")
    ax.set_xticks(range(len(positions)), [str(v) for v in positions])
    ax.set(xlabel=x, ylabel=y, title=f"{y} by {x}" + (f" and {hue}" if hue else ""))
    if hue:
        ax.legend(loc="best", fontsize="small")
    return ax

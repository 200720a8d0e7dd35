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
>>> df = em.events_to_dataframe(em.synthetic("sea", 400, drift_at=200))
>>> ax = plots.plot_label_share(df, window=50, drift_at=200)
>>> [line.get_label() for line in ax.lines]
['label 0', 'label 1', 'drift at 200']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from eventml.errors import ConfigError
from eventml.preprocess import NUMERIC, feature_columns, feature_kinds
from eventml.validation import positive_int

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
]


def _axes(ax: Axes | None, figsize: tuple[float, float] = (7.0, 3.5)) -> Axes:
    return plt.subplots(figsize=figsize)[1] if ax is None else ax


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


def _learners(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df["learner"]))


def _drift_line(ax: Axes, drift_at: int | None) -> None:
    if drift_at is not None:
        ax.axvline(drift_at, color="black", linestyle="--", linewidth=1, label=f"true drift at {drift_at}")


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
        Detections (dicts or a DataFrame with ``learner`` and ``events``); by default
        ``df.attrs["drifts"]`` when the evaluation watched for drift.

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
        drifts = df.attrs.get("drifts", [])
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


def streaming_rate(summary: pd.DataFrame) -> float | None:
    """Events per second of a live updater's last run while events came, from its summary rows
    (:meth:`eventml.live.LiveUpdater.summary`): between the run's first row and its last but one,
    since the last may be the closing row, written after the wait that ended the run. ``None``
    with fewer than three rows in the run.

    Examples
    --------
    >>> summary = pd.DataFrame({"events": [100, 200, 300, 310], "restarts": [1, 1, 1, 1],
    ...                         "time": [10.0, 10.1, 10.2, 15.0]})  # then 5 s idle before the end
    >>> streaming_rate(summary)
    1000.0
    """
    if not {"events", "time", "restarts"} <= set(summary.columns):
        return None
    run = summary[summary["restarts"] == summary["restarts"].iloc[-1]] if len(summary) else summary
    if len(run) < 3:
        return None
    first, last = run.iloc[0], run.iloc[-2]
    seconds = float(last["time"] - first["time"])
    return round(float(last["events"] - first["events"]) / seconds, 6) if seconds > 0 else None


def _live_title(stats: Any, summary: pd.DataFrame) -> str:
    f = stats if isinstance(stats, dict) else stats.to_dict()
    rate = f["events_per_s"]
    if not f.get("running", True):  # a finished run's recent rate includes the wait that ended it
        rate = streaming_rate(summary) or rate
    parts = [f"{f['events']:,} events", f"{rate:,.0f} ev/s", f"model v{f['model_version']:,}"]
    if f.get("lag") is not None:
        parts.append(f"lag {f['lag']:,}")
    if f.get("latency_p50_s") is not None:
        parts.append(f"latency p50 {f['latency_p50_s']:.2f} s, p99 {f['latency_p99_s']:.2f} s")
    parts.append(f"DLQ {f['dead_letters']:,} · expired {f['expired']:,} · restarts {f['restarts']}")
    return " · ".join(parts)


def plot_live(summary: pd.DataFrame, stats: Any = None, *, metric: str = "accuracy", drift_at: int | None = None,
              ax: Axes | None = None) -> Axes:
    """A live updater's metric along the events it predicted (from
    :meth:`eventml.live.LiveUpdater.summary`): rolling (solid) and cumulative (dotted), the true
    drift position, a dotted vertical line at the first row after each restart, and the updater's figures
    (:class:`eventml.live.LiveStats` or its dict) in the title; a finished run's events per second
    are those while events came (:func:`streaming_rate`).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> summary = pd.DataFrame({"events": [100, 200, 300], "accuracy": [0.5, 0.6, 0.7],
    ...                         "rolling_accuracy": [0.5, 0.7, 0.9], "restarts": [0, 0, 1]})
    >>> ax = plot_live(summary, drift_at=150)
    >>> [line.get_label() for line in ax.lines]
    ['rolling accuracy', 'accuracy', 'true drift at 150', 'restart']
    >>> int(ax.lines[3].get_xdata()[0])
    300
    """
    ax = _axes(ax, (8.0, 3.8))
    if len(summary):
        ax.plot(summary["events"], summary[f"rolling_{metric}"], label=f"rolling {metric}")
        ax.plot(summary["events"], summary[metric], linestyle=":", color="C0", label=metric)
    _drift_line(ax, drift_at)
    if len(summary):
        restarted = summary["events"][summary["restarts"].diff().fillna(0) > 0]
        for i, events in enumerate(restarted):
            ax.axvline(events, color="C3", linestyle=":", label="restart" if i == 0 else None)
    ax.set(xlabel="events predicted", ylabel=metric, title=_live_title(stats, summary) if stats is not None else "Live updater")
    ax.title.set_fontsize("small")
    ax.legend(loc="lower right", fontsize="small")
    return ax


def plot_served(scores: pd.DataFrame, *, x: str | None = None, window: int = 50, drift_at: int | None = None,
                live: pd.DataFrame | None = None, versions: bool = True, ax: Axes | None = None) -> Axes:
    """The accuracy of what a prediction service answered, from :func:`eventml.served_scores`: over
    the last ``window`` scored answers (solid) and so far (dotted), in the order they were served;
    the model version each answer came from on a second y axis (grey steps); the true drift.

    Parameters
    ----------
    scores
        Served predictions joined with their labels (``correct``, ``served_accuracy``,
        ``model_version``), in the order served.
    x
        The column to draw against, e.g. each request's position in the stream; default: the
        request's number (1, 2, ...).
    window
        Answers in the rolling accuracy (drawn from ``window // 10`` answers on).
    drift_at
        Where the concept changes, in the units of ``x``.
    live
        A live updater's summary (:meth:`eventml.live.LiveUpdater.summary`): its own rolling
        accuracy, drawn against the labels it had learned, which is a stream position when labels
        come in the stream's order (so use it with ``x`` a stream position).
    versions
        Draw the model versions (on ``ax.figure.axes[-1]``, sharing x).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> scores = pd.DataFrame({"correct": [False, True, True, True], "model_version": [0, 0, 8, 12],
    ...                        "served_accuracy": [0.0, 0.5, 2 / 3, 0.75], "position": [3, 7, 11, 15]})
    >>> ax = plot_served(scores, x="position", window=2, drift_at=9)
    >>> [line.get_label() for line in ax.lines]
    ['served: rolling accuracy (last 2)', 'served: accuracy so far', 'true drift at 9']
    >>> ax.lines[0].get_ydata().tolist()
    [0.0, 0.5, 1.0, 1.0]
    >>> ax.figure.axes[-1].lines[0].get_ydata().tolist()
    [0, 0, 8, 12]
    """
    window = positive_int("window", window)
    if x is not None and x not in scores:
        raise ConfigError(f"{x!r} is not a column of the scores; they have: {', '.join(map(str, scores.columns))}")
    ax = _axes(ax, (8.0, 3.8))
    xs = scores[x].to_numpy() if x is not None else np.arange(1, len(scores) + 1)
    correct = scores["correct"].astype(float).reset_index(drop=True)
    rolling = correct.rolling(window, min_periods=max(1, window // 10)).mean()
    ax.plot(xs, rolling.to_numpy(), color="C0", label=f"served: rolling accuracy (last {window})")
    ax.plot(xs, scores["served_accuracy"].to_numpy(), color="C0", linestyle=":", label="served: accuracy so far")
    if live is not None and len(live):
        ax.plot(live["labelled"], live["rolling_accuracy"], color="C1", linewidth=1,
                label="the updater's own predictions (rolling)")
    _drift_line(ax, drift_at)
    ax.set(xlabel=x or "request", ylabel="accuracy", ylim=(0, 1.02), title="Accuracy of the answers served")
    handles, names = ax.get_legend_handles_labels()
    if versions:
        right = ax.twinx()
        right.step(xs, scores["model_version"].to_numpy(), where="post", color="grey", alpha=0.6, linewidth=1,
                   label="model version served")
        right.set_ylabel("model version (labels learned)", color="grey")
        right.set_ylim(bottom=0)
        more_handles, more_names = right.get_legend_handles_labels()
        handles, names = handles + more_handles, names + more_names
    ax.legend(handles, names, loc="lower right", fontsize="small")
    return ax

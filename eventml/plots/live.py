"""Figures of live runs: the updater's summary, its streaming rate, and the accuracy of served answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from eventml.errors import ConfigError
from eventml.plots.base import axes as _axes, drift_line as _drift_line
from eventml.validation import positive_int


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
    per_partition = "partition" in summary.columns
    if not f.get("running", True) and not per_partition:  # a finished run's recent rate includes the final wait
        rate = streaming_rate(summary) or rate
    parts = [f"{f['events']:,} events", f"{rate:,.0f} ev/s", f"model v{f['model_version']:,}"]
    if per_partition:
        parts.insert(0, f"partitions {', '.join(map(str, f.get('partitions', ()))) or 'none'}")
    if f.get("lag") is not None:
        parts.append(f"lag {f['lag']:,}")
    if f.get("latency_p50_s") is not None:
        parts.append(f"latency p50 {f['latency_p50_s']:.2f} s, p99 {f['latency_p99_s']:.2f} s")
    parts.append(f"DLQ {f['dead_letters']:,} · expired {f['expired']:,} · restarts {f['restarts']}")
    return " · ".join(parts)


def plot_live(summary: pd.DataFrame, stats: Any = None, *, metric: str = "accuracy", drift_at: int | None = None,
              ax: Axes | None = None, promotions: Any = None, alerts: Any = None) -> Axes:
    """A live updater's metric along the events it predicted (from
    :meth:`eventml.live.LiveUpdater.summary`): rolling (solid) and cumulative (dotted), the true
    drift position, a dotted vertical line at the first row after each restart, and the updater's figures
    (:class:`eventml.live.LiveStats` or its dict) in the title; a finished run's events per second
    are those while events came (:func:`streaming_rate`). A group member's summary (with a ``partition``
    column) draws each partition's rolling metric along that partition's events. An updater with several
    models (a ``champion`` column) draws each model's rolling metric (``rolling_<metric>:<model>``), and
    ``promotions`` (:meth:`eventml.live.LiveUpdater.promotions`, or a table with ``events`` and ``model``) are
    marked where they happened. ``alerts`` (:meth:`eventml.live.LiveUpdater.alerts`, or a table with ``events``,
    ``rule`` and ``state``) are marked too: a red line where each fired, a grey one where it was resolved.

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
    per_partition = "partition" in summary.columns
    if len(summary) and per_partition:  # a group member's: one model per partition, each along its own events
        for partition, rows in summary.groupby("partition", sort=True):
            ax.plot(rows["events"], rows[f"rolling_{metric}"], label=f"partition {partition}: rolling {metric}")
    elif len(summary) and "champion" in summary.columns:  # several models: each one's rolling metric
        prefix = f"rolling_{metric}:"
        for column in [c for c in summary.columns if c.startswith(prefix)]:
            ax.plot(summary["events"], summary[column], label=f"{column[len(prefix):]}: rolling {metric}")
        ax.plot(summary["events"], summary[metric], linestyle=":", color="grey", label=f"champion's {metric}")
    elif len(summary):
        ax.plot(summary["events"], summary[f"rolling_{metric}"], label=f"rolling {metric}")
        ax.plot(summary["events"], summary[metric], linestyle=":", color="C0", label=metric)
    if promotions is not None and not per_partition:
        rows = promotions.to_dict("records") if isinstance(promotions, pd.DataFrame) else list(promotions)
        for row in rows:
            ax.axvline(row["events"], color="C2", linestyle="--", linewidth=1)
            ax.annotate(f"{row['model']} promoted", (row["events"], 1.0), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize="x-small", color="C2")
    if alerts is not None and not per_partition:
        rows = alerts.to_dict("records") if isinstance(alerts, pd.DataFrame) else list(alerts)
        for row in rows:
            firing = row["state"] == "firing"
            ax.axvline(row["events"], color="red" if firing else "grey", linestyle="-.", linewidth=1)
            ax.annotate(row["rule"] if firing else f"{row['rule']} resolved", (row["events"], 0.0),
                        xycoords=("data", "axes fraction"), rotation=90, va="bottom", ha="right", fontsize="x-small",
                        color="red" if firing else "grey")
    _drift_line(ax, drift_at)
    if len(summary) and not per_partition:
        restarted = summary["events"][summary["restarts"].diff().fillna(0) > 0]
        for i, events in enumerate(restarted):
            ax.axvline(events, color="C3", linestyle=":", label="restart" if i == 0 else None)
    ax.set(xlabel="events predicted" + (" (of each partition)" if per_partition else ""), ylabel=metric, title=_live_title(stats, summary) if stats is not None else "Live updater")
    ax.title.set_fontsize("small")
    if ax.get_legend_handles_labels()[0]:  # nothing to label before the first summary row
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

"""Figures of a group of live updaters: who owned which partition over time, throughput against the
number of updaters, and the accuracy of one model per partition against one global model."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from eventml.errors import ConfigError
from eventml.plots.base import axes as _axes
from eventml.scaling import ownership


def plot_ownership(assignments: pd.DataFrame, *, end: float | None = None, died: Mapping[str, float] | None = None,
                   marks: Mapping[str, float] | None = None, t0: float | None = None, ax: Axes | None = None) -> Axes:
    """Which updater owned which partition over time (one row per partition, one colour per updater),
    from a group's announcements (:func:`eventml.live.group.read_assignments`, through
    :func:`eventml.scaling.ownership`).

    An updater killed with ``kill -9`` announces nothing: its stretch ends, at the latest, where the
    next owner's begins, and the figure does not pretend to know more. Such a stretch is drawn solid
    up to the moment the updater died if ``died`` gives it (``{updater: epoch seconds}``), and hatched
    and pale after it (nobody works on the partition: the group waits for the dead updater's session
    to time out); without ``died`` all of it is hatched. Gaps between stretches are rebalances.
    ``marks`` (``{label: epoch seconds}``) are dotted vertical lines. Times are seconds since ``t0``
    (default: the first announcement); ``end`` closes the stretches still open (default: the last
    announcement).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> rows = pd.DataFrame({"time": [0.0, 0.0, 8.0], "updater": ["u1", "u2", "u2"],
    ...                      "event": ["assigned"] * 3, "partitions": [[0], [1], [0, 1]]})
    >>> ax = plot_ownership(rows, end=10.0, died={"u1": 2.0})
    >>> [(float(p.get_x()), float(p.get_width()), p.get_hatch() and str(p.get_hatch())) for p in ax.patches]
    [(0.0, 2.0, None), (2.0, 6.0, '//'), (8.0, 2.0, None), (0.0, 10.0, None)]
    """
    stretches = ownership(assignments, end=end)
    if t0 is None:
        t0 = float(assignments["time"].min()) if len(assignments) else 0.0
    died = dict(died or {})
    ax = _axes(ax, (8.0, 3.5))
    updaters = list(dict.fromkeys(assignments.sort_values("time", kind="stable")["updater"]))
    colors = {name: f"C{i % 10}" for i, name in enumerate(updaters)}
    unannounced = False
    for row in stretches.itertuples(index=False):
        start, stop = row.start - t0, row.end - t0
        color = colors[row.updater]
        solid_until = stop
        if row.ended == "taken over":
            unannounced = True
            solid_until = min(max(died[row.updater] - t0, start), stop) if row.updater in died else start
        if solid_until > start:
            ax.barh(row.partition, solid_until - start, left=start, height=0.8, color=color)
        if stop > solid_until:
            ax.barh(row.partition, stop - solid_until, left=solid_until, height=0.8, color=color, alpha=0.3,
                    hatch="//", edgecolor=color)
    for i, (label, at) in enumerate((marks or {}).items()):
        ax.axvline(at - t0, color="black", linestyle=":", linewidth=1)
        ax.annotate(label, (at - t0, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10 - 10 * (i % 2)),
                    textcoords="offset points", fontsize=8)
    handles = [Patch(facecolor=colors[name], label=name) for name in updaters]
    if unannounced:
        handles.append(Patch(facecolor="white", edgecolor="grey", hatch="//",
                             label="ended unannounced (kill -9): at the latest here"))
    partitions = sorted(stretches["partition"].unique()) if len(stretches) else []
    ax.set_yticks(partitions)
    ax.set_yticklabels([f"partition {p}" for p in partitions])
    ax.set_ylim(-0.6, (max(partitions) if partitions else 0) + 0.6)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("which updater owns which partition")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return ax


def plot_throughput(runs: pd.DataFrame, *, y: str = "events_per_s", ax: Axes | None = None) -> Axes:
    """Events per second against the number of updaters (bars, one per row of ``runs``: columns
    ``updaters`` and ``y``, e.g. :func:`eventml.scaling.group_throughput` rows), with the line of
    perfect scaling from the smallest group (dashed).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_throughput(pd.DataFrame({"updaters": [1, 2, 3], "events_per_s": [1000.0, 1500.0, 1600.0]}))
    >>> [float(bar.get_height()) for bar in ax.patches], ax.lines[0].get_ydata().tolist()
    ([1000.0, 1500.0, 1600.0], [1000.0, 2000.0, 3000.0])
    """
    if not {"updaters", y} <= set(runs.columns):
        raise ConfigError(f"plot_throughput needs the columns 'updaters' and {y!r}, got {list(runs.columns)}")
    runs = runs.dropna(subset=[y]).sort_values("updaters")
    ax = _axes(ax, (5.0, 3.5))
    n = runs["updaters"].to_numpy()
    rate = runs[y].to_numpy(dtype=float)
    ax.bar(n, rate, width=0.6, color="C0", label=y.replace("_", " "))
    if len(n):
        ax.plot(n, rate[0] * n / n[0], color="black", linestyle="--", linewidth=1, label="perfect scaling")
        for x, r in zip(n, rate):
            ax.annotate(f"{r / rate[0]:.2f}x", (x, r), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(n)
    ax.set_xlabel("updaters")
    ax.set_ylabel("events per second")
    ax.legend(fontsize=8)
    return ax


def plot_partition_sweep(sweep: pd.DataFrame, *, live: Mapping[int, float] | None = None,
                         ax: Axes | None = None) -> Axes:
    """Accuracy of one model per partition against the number of partitions (from
    :func:`eventml.scaling.partition_sweep`): all predictions (line), the worst to the best partition
    (band), one global model (dashed), and live runs (``{partitions: accuracy}``, crosses).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> sweep = pd.DataFrame({"partitions": [1, 4], "accuracy": [0.9, 0.85], "global_accuracy": [0.9, 0.9],
    ...                       "partition_accuracy_min": [0.9, 0.8], "partition_accuracy_max": [0.9, 0.88]})
    >>> ax = plot_partition_sweep(sweep, live={4: 0.85})
    >>> [line.get_label() for line in ax.lines]
    ['one model per partition', 'one global model', 'live, one model per partition']
    """
    sweep = sweep.sort_values("partitions")
    ax = _axes(ax, (6.0, 3.5))
    k = sweep["partitions"].to_numpy()
    ax.plot(k, sweep["accuracy"], marker="o", color="C0", label="one model per partition")
    ax.fill_between(k, sweep["partition_accuracy_min"].astype(float), sweep["partition_accuracy_max"].astype(float),
                    color="C0", alpha=0.2, label="worst to best partition")
    ax.axhline(float(sweep["global_accuracy"].iloc[0]), color="black", linestyle="--", linewidth=1,
               label="one global model")
    if live:
        ax.plot(list(live), list(live.values()), linestyle="none", marker="x", markersize=9, color="C3",
                label="live, one model per partition")
    ax.set_xscale("log", base=2)
    ax.set_xticks(k)
    ax.set_xticklabels([str(v) for v in k])
    ax.set_xlabel("partitions (one model each)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    return ax


__all__ = ["plot_ownership", "plot_throughput", "plot_partition_sweep"]

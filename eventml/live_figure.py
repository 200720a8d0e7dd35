"""Watch a live updater: a figure that redraws in place while the stream flows (:func:`watch`, ``em.watch``).

In JupyterLab (or any IPython kernel, papermill included) :func:`watch` shows one figure and
replaces it every ``every_s`` seconds with the updater's current metric and figures (see
:func:`eventml.plots.plot_live`; with several models, each model's rolling metric and the promotions; the alerts,
with ``alerts=`` rules); elsewhere it logs one line per interval. It returns when the
updater stops, when it has predicted ``until_events`` events, or after ``timeout_s``: a watch
always ends.

Examples
--------
>>> import eventml as em
>>> updater = em.LiveUpdater("sea", "sea-predictions", state_dir="runs/live", idle_timeout_s=5)  # doctest: +SKIP
>>> summary = em.watch(updater.start(), drift_at=5000)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from eventml.plots import plot_live
from eventml.validation import positive_number

__all__ = ["watch"]

log = logging.getLogger(__name__)


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def _summary(updater: Any, attempts: int = 5) -> pd.DataFrame:
    """The updater's summary, read while its thread may be appending a row: a read that meets one
    (pandas then sees columns of different lengths) is made again."""
    for _ in range(attempts - 1):
        try:
            return updater.summary()
        except ValueError:
            pass
    return updater.summary()


def watch(updater: Any, *, every_s: float = 1.0, until_events: int | None = None, timeout_s: float | None = None,
          drift_at: int | None = None, metric: str | None = None) -> pd.DataFrame:
    """Redraw the updater's figure in place until it stops; return its summary DataFrame.

    Parameters
    ----------
    updater
        A :class:`eventml.live.LiveUpdater` started with ``start()``.
    every_s
        Seconds between redraws.
    until_events
        Return once the updater has predicted this many events (it keeps running: ``stop()``
        it or watch again).
    timeout_s
        Return after this many seconds at most.
    drift_at
        The true drift position to draw, if known.
    metric
        The metric to draw; by default the updater's (accuracy, or MAE for a regressor).
    """
    positive_number("every_s", every_s, unit="seconds")
    metric = metric or updater.metric
    started = time.monotonic()
    handle = None
    if _in_ipython():
        from IPython.display import display

        handle = display(display_id=True)

    def show() -> None:
        stats = updater.stats
        if handle is None:
            log.info("live %s: %s", updater.events_topic, stats.to_dict())
            return
        promotions = updater.promotions() if hasattr(updater, "promotions") else None
        alerts = updater.alerts() if hasattr(updater, "alerts") else None
        ax = plot_live(_summary(updater), stats, metric=metric, drift_at=drift_at, promotions=promotions,
                       alerts=alerts)
        handle.update(ax.figure)
        plt.close(ax.figure)

    while updater.running:
        if until_events is not None and updater.stats.events >= until_events:
            break
        if timeout_s is not None and time.monotonic() - started >= timeout_s:
            break
        show()
        time.sleep(every_s)
    show()
    return updater.summary()

"""What every figure shares: a new Axes when none is given, the drift marker, the learners' order."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes


def axes(ax: Axes | None, figsize: tuple[float, float] = (7.0, 3.5)) -> Axes:
    """``ax``, or the Axes of a new figure."""
    return plt.subplots(figsize=figsize)[1] if ax is None else ax


def learners(df: pd.DataFrame) -> list[str]:
    """The learners of a result table, in their first order."""
    return list(dict.fromkeys(df["learner"]))


def drift_line(ax: Axes, drift_at: int | None) -> None:
    """A dashed vertical line at the true drift, if there is one."""
    if drift_at is not None:
        ax.axvline(drift_at, color="black", linestyle="--", linewidth=1, label=f"true drift at {drift_at}")

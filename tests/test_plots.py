"""Unit tests of eventml.plots: each function draws what it says on small DataFrames."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

import eventml as em  # noqa: E402
from eventml import plots  # noqa: E402
from eventml.preprocess import compare_pipelines, online_vs_batch_stats  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def events() -> pd.DataFrame:
    df = em.events_to_dataframe(em.synthetic("agrawal", 200, seed=1, drift_at=100))
    df = df.astype({"elevel": str})
    df.loc[::10, "salary"] = np.nan
    return df


def test_event_rate_is_one_step_line_of_events_per_second():
    df = pd.DataFrame({"ts": [10.0, 10.1, 10.2, 10.3, 11.5, 12.0]})
    ax = plots.plot_event_rate(df, bin_s=0.5)
    assert isinstance(ax, Axes) and len(ax.lines) == 1
    assert ax.lines[0].get_ydata().tolist() == [8.0, 0.0, 0.0, 2.0, 2.0]


def test_event_rate_of_a_source_is_its_event_time_rate(events):
    ax = plots.plot_event_rate(events)  # ts advances 0.01 s per event
    assert set(ax.lines[0].get_ydata()) == {100.0}


def test_label_share_has_one_line_per_label_and_a_drift_marker(events):
    ax = plots.plot_label_share(events, window=20, drift_at=100)
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["label 0", "label 1", "drift at 100"]
    assert ax.lines[2].get_xdata()[0] == 100
    shares = ax.lines[0].get_ydata() + ax.lines[1].get_ydata()
    assert np.isnan(shares[:1]).all()  # a share needs window // 10 events
    assert np.allclose(shares[1:], 1.0)


def test_label_share_without_drift_draws_only_the_labels(events):
    ax = plots.plot_label_share(events, window=20)
    assert len(ax.lines) == 2 and len(ax.lines[0].get_xdata()) == len(events)


def test_feature_distributions_draw_one_axes_per_feature_in_a_grid(events):
    axes = plots.plot_feature_distributions(events, ["salary", "elevel", "age"], bins=7, ncols=2)
    assert isinstance(axes, np.ndarray) and len(axes) == 3
    assert [ax.get_title() for ax in axes] == ["salary", "elevel", "age"]
    assert len(axes[0].patches) == 7  # histogram bins
    assert len(axes[1].patches) == events["elevel"].nunique()  # one bar per category
    hidden = [ax for ax in axes[0].figure.axes if not ax.get_visible()]
    assert len(hidden) == 1  # 2x2 grid, 3 features


def test_feature_distributions_show_at_most_max_categories_bars(events):
    events = events.astype({"car": str})
    (ax,) = plots.plot_feature_distributions(events, ["car"], max_categories=5)
    assert len(ax.patches) == 5


def test_feature_distributions_draw_on_given_axes(events):
    _, given = plt.subplots(1, 2)
    axes = plots.plot_feature_distributions(events, ["salary", "age"], axes=given)
    assert list(axes) == list(given)


def test_online_vs_batch_draws_four_lines_over_the_steps(events):
    stats = online_vs_batch_stats(events, ["salary", "age"], every=50)
    ax = plots.plot_online_vs_batch(stats, "salary")
    assert [line.get_label() for line in ax.lines] == ["online mean", "batch mean", "online std", "batch std"]
    assert ax.lines[0].get_xdata().tolist() == [50, 100, 150, 200]


def test_missing_share_has_one_bar_per_feature(events):
    ax = plots.plot_missing_share(events)
    features = [c for c in events.columns if c not in ("id", "ts", "label")]
    assert len(ax.patches) == len(features)
    heights = dict(zip([t.get_text() for t in ax.get_xticklabels()], [p.get_height() for p in ax.patches]))
    assert heights["salary"] == pytest.approx(0.1)
    assert heights["age"] == 0.0


def test_transform_gap_is_one_line_on_a_log_scale(events):
    gap = compare_pipelines(events).gap()
    ax = plots.plot_transform_gap(gap, window=10)
    assert len(ax.lines) == 1 and ax.get_yscale() == "log"
    assert len(ax.lines[0].get_xdata()) == len(events)


def test_every_plot_draws_on_the_axes_it_is_given(events):
    _, ax = plt.subplots()
    assert plots.plot_event_rate(events, ax=ax) is ax
    assert plots.plot_label_share(events, ax=ax) is ax
    assert plots.plot_missing_share(events, ax=ax) is ax

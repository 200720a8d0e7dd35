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
    df = em.events.events_to_dataframe(em.synthetic("agrawal", 200, seed=1, drift_at=100))
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


# ------------------------------------------------------------------ learning results


@pytest.fixture(scope="module")
def prequential_result() -> pd.DataFrame:
    events = list(em.synthetic("sea", 3000, seed=2, drift_at=1500))
    return em.prequential(events, ["river_gnb", "batch_logreg"], metrics=("accuracy",), every=250,
                          rolling_window=250)


def test_rolling_metric_draws_each_learners_rolling_column_against_events(prequential_result):
    df = prequential_result
    ax = plots.plot_rolling_metric(df, drift_at=1500)
    lines = {line.get_label(): line for line in ax.lines}
    for learner in ("river_gnb", "batch_logreg"):
        rows = df[df["learner"] == learner]
        assert lines[learner].get_xdata().tolist() == rows["events"].tolist()
        assert lines[learner].get_ydata().tolist() == rows["rolling_accuracy"].tolist()
    assert lines["true drift at 1500"].get_xdata()[0] == 1500


def test_rolling_metric_marks_detections_on_the_learners_line(prequential_result):
    df = prequential_result
    drifts = [{"learner": "river_gnb", "detector": "adwin", "step": 1750, "events": 1750},
              {"learner": "river_gnb", "detector": "adwin", "step": 2600, "events": 2600}]
    ax = plots.plot_rolling_metric(df, drifts=drifts)
    (markers,) = [line for line in ax.lines if line.get_label() == "river_gnb: drift detected"]
    rows = df[df["learner"] == "river_gnb"].set_index("events")["rolling_accuracy"]
    assert markers.get_xdata().tolist() == [1750, 2600]
    assert markers.get_ydata()[0] == pytest.approx(rows[1750])
    assert markers.get_ydata()[1] == pytest.approx(rows[2500] + (rows[2750] - rows[2500]) * 100 / 250)


def test_rolling_metric_marks_the_detection_rows_of_a_result_that_watched_for_drift():
    df = em.prequential(em.synthetic("sea", 3000, seed=2, drift_at=1500), ["river_gnb", "river_logreg"],
                        metrics=("accuracy",), every=250, rolling_window=250, drift="adwin")
    detected = df[df["detection"].notna()]
    assert len(detected) > 0 and detected["events"].min() > 1500
    ax = plots.plot_rolling_metric(df[df["events"] > 0].reset_index(drop=True))  # a filtered result keeps them
    for learner, hits in detected.groupby("learner"):
        (markers,) = [line for line in ax.lines if line.get_label() == f"{learner}: drift detected"]
        assert markers.get_xdata().tolist() == hits["events"].tolist()
        assert markers.get_ydata().tolist() == pytest.approx(hits["rolling_accuracy"].tolist())


def test_rolling_metric_names_the_metrics_a_result_has(prequential_result):
    with pytest.raises(em.ConfigError, match="has: accuracy"):
        plots.plot_rolling_metric(prequential_result, "mae")


def test_metric_vs_speed_places_each_learner_at_its_final_rate(prequential_result):
    df = prequential_result
    ax = plots.plot_metric_vs_speed(df)
    final = df[df["events"] == 3000].set_index("learner")
    points = ax.collections[0].get_offsets()
    for (x, y), learner in zip(points, ["river_gnb", "batch_logreg"]):
        assert x == pytest.approx(3000 / (final.loc[learner, "predict_seconds"] + final.loc[learner, "learn_seconds"]))
        assert y == final.loc[learner, "accuracy"]
    assert ax.get_xscale() == "log"


def test_time_per_event_integrates_back_to_the_total_time(prequential_result):
    df = prequential_result
    ax = plots.plot_time_per_event(df)
    for line in ax.lines:
        rows = df[df["learner"] == line.get_label()]
        per_event_s = np.asarray(line.get_ydata()) / 1e6
        spans = np.diff(np.concatenate([[0], rows["events"].to_numpy()]))
        total = (rows["predict_seconds"] + rows["learn_seconds"]).iloc[-1]
        assert (per_event_s * spans).sum() == pytest.approx(total)


def test_grid_plot_draws_the_mean_per_parameter_and_skips_failed_runs():
    runs = pd.DataFrame({
        "MODEL": ["a", "a", "b", "b", "a", "b"],
        "DRIFT": ["abrupt", "abrupt", "abrupt", "abrupt", "gradual", "gradual"],
        "accuracy": [0.8, 0.9, 0.6, 0.7, 0.5, 0.1],
        "error": [None, None, None, None, None, "kernel died"],
    })
    ax = plots.plot_grid(runs, x="MODEL", y="accuracy", hue="DRIFT")
    assert [bars.get_label() for bars in ax.containers] == ["DRIFT=abrupt", "DRIFT=gradual"]
    abrupt, gradual = (bars.lines[0] for bars in ax.containers)
    assert abrupt.get_ydata().tolist() == pytest.approx([0.85, 0.65])
    assert gradual.get_ydata().tolist() == pytest.approx([0.5])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    with pytest.raises(em.ConfigError, match="'SEED' is not a column"):
        plots.plot_grid(runs, x="SEED", y="accuracy")


def test_grid_plot_accepts_list_valued_parameters():
    runs = pd.DataFrame({"LEARNERS": [["a", "b"], ["a", "b"], ["c"]], "score": [1.0, 3.0, 5.0], "error": [None] * 3})
    ax = plots.plot_grid(runs, x="LEARNERS", y="score")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["['a', 'b']", "['c']"]
    assert ax.containers[0].lines[0].get_ydata().tolist() == [2.0, 5.0]


# ------------------------------------------------------------------ served predictions


@pytest.fixture
def served_scores() -> pd.DataFrame:
    """What em.served_scores returns, plus each request's position in the stream: right, then wrong
    after a drift at 100, then right again."""
    correct = [True] * 20 + [False] * 10 + [True] * 10
    return pd.DataFrame({
        "id": [f"e-{4 * i + 3}" for i in range(40)], "correct": correct,
        "model_version": [max(0, 4 * i - 40) for i in range(40)],
        "served_accuracy": np.cumsum(correct) / np.arange(1, 41),
        "position": [4 * i + 3 for i in range(40)],
    })


def test_served_accuracy_is_rolling_and_cumulative_along_the_stream_with_the_versions_served(served_scores):
    ax = plots.plot_served(served_scores, x="position", window=10, drift_at=100)
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines) == ["served: rolling accuracy (last 10)", "served: accuracy so far", "true drift at 100"]
    rolling = lines["served: rolling accuracy (last 10)"]
    assert rolling.get_xdata().tolist() == served_scores["position"].tolist()
    assert rolling.get_ydata()[19] == 1.0 and rolling.get_ydata()[29] == 0.0 and rolling.get_ydata()[39] == 1.0
    assert rolling.get_ydata()[24] == pytest.approx(0.5)
    assert lines["served: accuracy so far"].get_ydata()[-1] == pytest.approx(30 / 40)
    assert lines["true drift at 100"].get_xdata()[0] == 100
    right = ax.figure.axes[-1]
    assert right is not ax and right.get_shared_x_axes().joined(ax, right)
    assert right.lines[0].get_ydata().tolist() == served_scores["model_version"].tolist()
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "model version served"


def test_served_accuracy_can_show_the_updaters_own_and_defaults_to_request_numbers(served_scores):
    live = pd.DataFrame({"events": [50, 100, 150], "labelled": [20, 70, 120], "rolling_accuracy": [1.0, 0.9, 0.6]})
    ax = plots.plot_served(served_scores, window=10, live=live, versions=False)
    assert len(ax.figure.axes) == 1
    served, _, own = ax.lines
    assert served.get_xdata().tolist() == list(range(1, 41))
    assert own.get_label() == "the updater's own predictions (rolling)"
    assert own.get_xdata().tolist() == [20, 70, 120] and own.get_ydata().tolist() == [1.0, 0.9, 0.6]
    _, given = plt.subplots()
    assert plots.plot_served(served_scores, ax=given) is given


def test_served_accuracy_names_what_is_wrong(served_scores):
    with pytest.raises(em.ConfigError, match="'stream_index' is not a column of the scores; they have: id, correct"):
        plots.plot_served(served_scores, x="stream_index")
    with pytest.raises(em.ConfigError, match="window"):
        plots.plot_served(served_scores, window=0)


# ----------------------------------------------------------------------------- scale out


@pytest.fixture
def killed_and_joined() -> pd.DataFrame:
    """Two updaters share two partitions; u1 is killed (it announces nothing), u2 takes its partition at
    12 s after the session timeout, u3 joins at 20 s (a rebalance) and all stop cleanly at 30 s."""
    rows = [(100.0, "u1", "assigned", [0, 1]), (101.0, "u1", "revoked", [0, 1]), (101.5, "u1", "assigned", [0]),
            (101.5, "u2", "assigned", [1]), (112.0, "u2", "assigned", [0, 1]), (120.0, "u2", "revoked", [0, 1]),
            (120.5, "u2", "assigned", [0]), (120.5, "u3", "assigned", [1]), (130.0, "u2", "revoked", [0]),
            (130.0, "u3", "revoked", [1])]
    return pd.DataFrame(rows, columns=["time", "updater", "event", "partitions"])


def test_ownership_draws_a_killed_updaters_stretch_solid_to_its_death_and_hatched_to_the_takeover(killed_and_joined):
    ax = plots.plot_ownership(killed_and_joined, died={"u1": 105.0}, marks={"u1 killed": 105.0, "u3 started": 110.0})
    bars = [(round(float(p.get_y() + p.get_height() / 2)), float(p.get_x()), float(p.get_width()),
             p.get_hatch() is not None) for p in ax.patches]
    # partition 0: u1 until the rebalance, u1 again (solid to its death at 5 s, hatched to 12 s), then u2
    assert (0, 1.5, 3.5, False) in bars and (0, 5.0, 7.0, True) in bars
    assert (0, 12.0, 8.0, False) in bars and (0, 20.5, 9.5, False) in bars
    assert (1, 1.5, 18.5, False) in bars and (1, 20.5, 9.5, False) in bars  # u2's 1 runs on through the takeover
    assert sum(hatched for *_, hatched in bars) == 1
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["u1", "u2", "u3", "ended unannounced (kill -9): at the latest here"]
    assert [line.get_xdata()[0] for line in ax.lines] == [5.0, 10.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["partition 0", "partition 1"]


def test_ownership_without_the_time_of_death_hatches_the_whole_unannounced_stretch(killed_and_joined):
    ax = plots.plot_ownership(killed_and_joined, t0=0.0)
    hatched = [(float(p.get_x()), float(p.get_width())) for p in ax.patches if p.get_hatch() is not None]
    assert hatched == [(101.5, 10.5)]


def test_throughput_bars_with_perfect_scaling_and_ratios():
    runs = pd.DataFrame({"updaters": [3, 1, 2], "events_per_s": [2400.0, 1000.0, None],
                         "events_per_s_overall": [2000.0, 900.0, 1500.0]})
    ax = plots.plot_throughput(runs)
    assert [float(p.get_height()) for p in ax.patches] == [1000.0, 2400.0]  # the run without a figure is left out
    assert ax.lines[0].get_ydata().tolist() == [1000.0, 3000.0]
    assert [t.get_text() for t in ax.texts] == ["1.00x", "2.40x"]
    ax = plots.plot_throughput(runs, y="events_per_s_overall")
    assert [float(p.get_height()) for p in ax.patches] == [900.0, 1500.0, 2000.0]
    with pytest.raises(em.ConfigError, match="'updaters' and 'rate'"):
        plots.plot_throughput(runs, y="rate")


def test_partition_sweep_draws_accuracy_band_global_line_and_the_live_run():
    from eventml.scaling import partition_sweep

    sweep = partition_sweep(em.synthetic("sea", 600, seed=3), [1, 2, 4])
    ax = plots.plot_partition_sweep(sweep, live={2: 0.5})
    line, global_line, live = ax.lines
    assert line.get_xdata().tolist() == [1, 2, 4] and line.get_ydata().tolist() == sweep["accuracy"].tolist()
    assert global_line.get_ydata()[0] == sweep["accuracy"].iloc[0]
    assert live.get_xdata().tolist() == [2] and live.get_ydata().tolist() == [0.5]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]
    assert len(ax.collections) == 1  # the worst-to-best band

"""Unit tests of eventml.preprocess: no broker, plain DataFrames and events."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import eventml as em
from eventml.errors import ConfigError
from eventml.preprocess import (
    batch_pipeline,
    compare_pipelines,
    feature_columns,
    feature_kinds,
    inject_missing,
    missing_report,
    online_pipeline,
    online_vs_batch_stats,
)


@pytest.fixture
def messy() -> pd.DataFrame:
    """Two numeric features on very different scales, one categorical, ~15% missing each."""
    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({
        "id": [f"e-{i}" for i in range(n)],
        "ts": np.arange(n) * 0.01,
        "label": rng.integers(0, 2, n),
        "small": rng.normal(0.0, 1.0, n),
        "big": rng.normal(5e5, 1e5, n),
        "color": rng.choice(["red", "green", "blue"], n),
    })
    return inject_missing(df, 0.15, seed=4)


# ----------------------------------------------------------------------------- features


def test_feature_columns_leave_out_id_partition_offset_ts_and_label():
    df = pd.DataFrame(columns=["id", "partition", "offset", "ts", "label", "x", "color"])
    assert feature_columns(df) == ["x", "color"]


def test_numbers_are_numeric_and_strings_and_booleans_are_categorical():
    df = pd.DataFrame({"f": [1.5], "i": [2], "s": ["a"], "b": [True]})
    assert feature_kinds(df) == {"f": "numeric", "i": "numeric", "s": "categorical", "b": "categorical"}


def test_missing_report_counts_missing_values_per_feature(messy):
    report = missing_report(messy)
    assert report.index.tolist() == ["small", "big", "color"]
    assert report.loc["color", "kind"] == "categorical"
    for feature in report.index:
        assert report.loc[feature, "missing"] == messy[feature].isna().sum()
        assert report.loc[feature, "missing_share"] == pytest.approx(messy[feature].isna().mean())
    assert report.loc["color", "distinct"] == 3


def test_inject_missing_blanks_about_the_share_reproducibly_and_keeps_the_original(messy):
    clean = messy.fillna({"small": 0.0, "big": 0.0, "color": "red"})
    first = inject_missing(clean, 0.3, ["small", "color"], seed=9)
    again = inject_missing(clean, 0.3, ["small", "color"], seed=9)
    assert first["small"].isna().equals(again["small"].isna())
    assert 0.2 < first["small"].isna().mean() < 0.4
    assert first["big"].isna().sum() == 0 and first["label"].isna().sum() == 0
    assert clean.isna().sum().sum() == 0


def test_inject_missing_rejects_a_share_outside_zero_to_one(messy):
    with pytest.raises(ConfigError, match="share"):
        inject_missing(messy, 1.5)


# ----------------------------------------------------------------------------- online statistics


def test_online_mean_and_std_equal_numpy_over_every_prefix(messy):
    stats = online_vs_batch_stats(messy, ["small", "big"], every=1)
    assert len(stats) == 2 * len(messy)
    for row in stats.itertuples():
        seen = messy[row.feature].iloc[: row.step].dropna().to_numpy()
        assert row.count == seen.size
        if seen.size:
            assert row.online_mean == pytest.approx(np.mean(seen), rel=1e-9, abs=1e-9)
        if seen.size > 1:
            assert row.online_std == pytest.approx(np.std(seen, ddof=1), rel=1e-9, abs=1e-9)
    assert stats["rel_diff"].max() < 1e-9


def test_std_is_nan_on_both_sides_until_a_feature_has_two_values():
    stats = online_vs_batch_stats(pd.DataFrame({"x": [None, 2.0, 3.0]}), every=1)
    assert stats["count"].tolist() == [0, 1, 2]
    assert math.isnan(stats.loc[0, "online_mean"]) and math.isnan(stats.loc[0, "batch_mean"])
    assert math.isnan(stats.loc[1, "online_std"]) and math.isnan(stats.loc[1, "batch_std"])
    assert stats.loc[2, "online_std"] == pytest.approx(math.sqrt(0.5))
    assert stats["abs_diff"].max() < 1e-12


def test_stats_are_compared_every_n_events_and_after_the_last_one(messy):
    stats = online_vs_batch_stats(messy, every=150)
    assert sorted(stats["step"].unique()) == [150, 300, 400]
    assert set(stats["feature"]) == {"small", "big"}  # numeric features only by default


def test_online_stats_read_events_as_well_as_data_frames():
    events = list(em.synthetic("sea", 300, seed=5))
    from_events = online_vs_batch_stats(events, every=100)
    from_frame = online_vs_batch_stats(em.events.events_to_dataframe(events), every=100)
    pd.testing.assert_frame_equal(from_events, from_frame)
    assert from_events["abs_diff"].max() < 1e-9


def test_every_must_be_at_least_one(messy):
    with pytest.raises(ConfigError, match="every"):
        online_vs_batch_stats(messy, every=0)


def test_an_unknown_feature_is_an_error_naming_the_known_ones(messy):
    with pytest.raises(ConfigError, match="'nope'.*small, big, color"):
        online_vs_batch_stats(messy, ["nope"])


# ----------------------------------------------------------------------------- pipelines


def test_online_imputer_fills_a_missing_number_with_the_running_mean():
    pipe = online_pipeline(["x"])
    for x in [{"x": 1.0}, {"x": 3.0}, {"x": None}]:
        pipe.learn_one(x)
    # the scaler saw 1, 3 and the imputed 2: mean 2, population std sqrt(2/3)
    assert pipe.transform_one({"x": None}) == {"x": 0.0}
    assert pipe.transform_one({"x": 3.0})["x"] == pytest.approx(math.sqrt(1.5))


def test_online_pipeline_fills_a_missing_category_and_one_hot_encodes_it():
    pipe = online_pipeline(categorical=["color"])
    for x in [{"color": "red"}, {"color": None}, {"color": "blue"}]:
        pipe.learn_one(x)
    assert pipe.transform_one({"color": None}) == {"color_red": 0, "color_missing": 1, "color_blue": 0}


def test_batch_pipeline_imputes_scales_and_has_one_hot_columns(messy):
    pipe = batch_pipeline(["small", "big"], ["color"]).fit(messy)
    names = pipe.get_feature_names_out().tolist()
    assert names == ["small", "big", "color_blue", "color_green", "color_missing", "color_red"]
    out = pipe.transform(messy)
    assert not np.isnan(out).any()
    assert out[:, :2].mean(axis=0) == pytest.approx([0.0, 0.0], abs=1e-9)
    assert (out[:, 2:].sum(axis=1) == 1).all()


def test_a_pipeline_needs_at_least_one_feature():
    with pytest.raises(ConfigError):
        online_pipeline()
    with pytest.raises(ConfigError):
        batch_pipeline()


def test_online_and_batch_pipelines_agree_when_no_number_is_missing(messy):
    clean = messy.fillna({"small": 0.0, "big": 0.0})
    comparison = compare_pipelines(clean)
    assert comparison.same_columns
    assert comparison.max_abs_diff() < 1e-9


def test_with_missing_numbers_the_pipelines_differ_a_little_and_categories_not_at_all(messy):
    comparison = compare_pipelines(messy)
    assert comparison.same_columns
    assert comparison.one_hot_columns == ["color_blue", "color_green", "color_missing", "color_red"]
    assert comparison.max_abs_diff("one-hot") == 0.0
    assert 0.0 < comparison.max_abs_diff("numeric") < 0.05
    assert comparison.online.shape == comparison.batch.shape == (len(messy), 6)
    assert not comparison.online.isna().any().any()


def test_the_progressive_online_transform_converges_to_the_batch_one(messy):
    gap = compare_pipelines(messy).gap()
    assert len(gap) == len(messy) and gap.index[0] == 1
    assert gap.iloc[-50:].mean() < gap.iloc[:50].mean() / 5


def test_pipelines_run_on_events_from_a_source_with_categories():
    df = em.events.events_to_dataframe(em.synthetic("agrawal", 300, seed=1)).astype({"elevel": str})
    df = inject_missing(df, 0.1, ["salary", "elevel"], seed=2)
    comparison = compare_pipelines(df)
    assert comparison.same_columns
    assert "elevel_missing" in comparison.one_hot_columns
    assert comparison.columns.loc["salary", "kind"] == "numeric"

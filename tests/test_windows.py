"""Windowed features (eventml.windows) against independent pandas computations on the same events."""

from __future__ import annotations

import math
import pickle
import random

import pandas as pd
import pytest

from eventml.errors import ConfigError
from eventml.events import Event
from eventml.windows import AGGREGATES, Window, WindowedFeatures, add_windows, parse_window

NUMERIC = ["count", "sum", "mean", "min", "max", "std", "nunique", "last", "since_last"]


def stream(n=400, lateness=30.0, seed=1, strings=False):
    """Events of a few users and new ones, times mostly rising with ties (whole seconds) and some up to
    ``lateness`` seconds out of order, missing values."""
    rng = random.Random(seed)
    rows, base = [], 0.0
    for i in range(n):
        base += rng.choice([0, 0, 5, 20, 60, 200])  # 0: ties
        ts = float(round(base - rng.uniform(0, lateness))) if rng.random() < 0.3 else base
        user = rng.choice(["a", "b", "c"]) if rng.random() < 0.8 else f"new-{i}"
        value = None if rng.random() < 0.1 else (rng.choice(["x", "y", "z"]) if strings else round(rng.gauss(50, 20), 2))
        rows.append({"user": user, "ts": ts, "value": value, "pos": i})
    return pd.DataFrame(rows)


def computed(df, window):
    features = WindowedFeatures([window])
    rows = [features.features_one({"user": r.user, "value": r.value}, r.ts) for r in df.itertuples()]
    return pd.DataFrame(rows, columns=features.names).set_axis(window.aggregates, axis=1)


def pandas_aggregates(seen: pd.DataFrame, t: float) -> dict:
    """The aggregates of the events ``seen`` (already in the window) with pandas, for an event at ``t``."""
    values = seen.sort_values(["ts", "pos"])["value"]
    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce").dropna()
    return {
        "count": int(present.count()), "sum": float(numbers.sum()),
        "mean": numbers.mean() if len(numbers) else None, "min": numbers.min() if len(numbers) else None,
        "max": numbers.max() if len(numbers) else None, "std": numbers.std() if len(numbers) > 1 else None,
        "nunique": int(present.nunique()), "last": present.iloc[-1] if len(present) else None,
        "since_last": t - seen["ts"].max() if len(seen) else None,
    }


def expected_by_mask(df, start_of):
    """Per event, pandas' aggregates of the earlier events of its key whose time is in ``[start_of(t), t)``."""
    rows = []
    for i, r in enumerate(df.itertuples()):
        earlier = df.iloc[:i]
        seen = earlier[(earlier["user"] == r.user) & (earlier["ts"] < r.ts) & (earlier["ts"] >= start_of(r.ts))]
        rows.append(pandas_aggregates(seen, r.ts))
    return pd.DataFrame(rows, columns=NUMERIC)


def assert_same(ours: pd.DataFrame, theirs: pd.DataFrame):
    assert len(ours) == len(theirs)
    for column in ours:
        for i, (a, b) in enumerate(zip(ours[column], theirs[column])):
            missing_a, missing_b = a is None or (isinstance(a, float) and math.isnan(a)), pd.isna(b)
            assert missing_a == missing_b, (column, i, a, b)
            if missing_a:
                continue
            if isinstance(b, str) or isinstance(a, str):
                assert a == b, (column, i, a, b)
            else:
                assert math.isclose(a, float(b), rel_tol=1e-9, abs_tol=1e-9), (column, i, a, b)


@pytest.mark.parametrize("strings", [False, True])
def test_a_sliding_window_equals_pandas_on_out_of_order_events_with_ties_gaps_and_new_keys(strings):
    df = stream(strings=strings)
    window = Window("user", "value", NUMERIC, over="5min", lateness=30)
    ours = computed(df, window)
    assert_same(ours, expected_by_mask(df, lambda t: t - 300))
    steps = df["ts"].diff()
    assert (steps < 0).sum() > 20 and (steps == 0).sum() > 20 and df["value"].isna().sum() > 10  # what is tested
    assert ours["count"].max() >= 3 and (ours["count"] == 0).sum() > 20


def test_a_sliding_window_of_an_ordered_stream_equals_pandas_rolling_closed_left():
    df = stream(lateness=0.0).sort_values("ts", kind="stable").reset_index(drop=True)
    df["time"] = pd.to_datetime(df["ts"], unit="s")
    columns = ["count", "sum", "mean", "min", "max", "std"]
    expected = pd.DataFrame(index=df.index, columns=columns, dtype=float)
    for _, group in df.groupby("user"):
        rolling = group.rolling("10min", on="time", closed="left")["value"]
        for column in columns:
            expected.loc[group.index, column] = getattr(rolling, column)().to_numpy()
    ours = computed(df, Window("user", "value", columns, over="10min"))
    ours["sum"] = ours["sum"].where(ours["count"] > 0)  # pandas: NaN for an empty window, ours 0.0
    expected["count"] = expected["count"].fillna(0)
    assert (expected["count"] > 1).sum() > 50
    assert_same(ours, expected)


def test_a_tumbling_window_sees_the_events_of_its_aligned_span_so_far():
    df = stream(lateness=20.0, seed=2)
    window = Window("user", "value", NUMERIC, over="10min", kind="tumbling", lateness=20)
    floor = (pd.to_datetime(df["ts"], unit="s").dt.floor("10min") - pd.Timestamp(0)).dt.total_seconds()
    starts = dict(zip(df["ts"], floor))
    assert_same(computed(df, window), expected_by_mask(df, starts.__getitem__))


def test_a_hopping_window_sees_the_oldest_open_span_of_its_event():
    df = stream(lateness=20.0, seed=3)
    window = Window("user", "value", NUMERIC, over="15min", kind="hopping", hop="5min", lateness=20)

    def oldest_open(t):  # the spans [k * 300, k * 300 + 900) that contain t, the oldest
        return min(k * 300 for k in range(int(t // 300) - 5, int(t // 300) + 1) if k * 300 <= t < k * 300 + 900)

    assert_same(computed(df, window), expected_by_mask(df, oldest_open))


def test_a_count_window_equals_pandas_rolling_over_the_last_n_events_of_the_key():
    df = stream(seed=4)
    ours = computed(df, Window("user", "value", ["count", "sum", "mean", "min", "max", "std", "last"], last=5))
    grouped = df.groupby("user")["value"]
    rolling = df.groupby("user").rolling(5, min_periods=1, closed="left")["value"]
    expected = pd.DataFrame({"count": rolling.count(), "sum": rolling.sum(), "mean": rolling.mean(),
                             "min": rolling.min(), "max": rolling.max(), "std": rolling.std()})
    expected = expected.reset_index(level=0, drop=True).sort_index()
    expected["count"] = expected["count"].fillna(0)
    expected["last"] = grouped.transform(lambda s: s.ffill().shift(1))  # the last value present before
    ours["sum"] = ours["sum"].where(ours["count"] > 0)
    assert_same(ours, expected)


def test_a_target_window_uses_only_the_labels_of_earlier_events():
    events = [Event(f"e-{i}", {"user": "a"}, label=i % 2, ts=float(i)) for i in range(6)]
    out = list(add_windows(events, Window("user", None, ["sum", "count"], target=True, last=3)))
    assert [e.features["target_sum_last3_by_user"] for e in out] == [0.0, 0.0, 1.0, 1.0, 2.0, 1.0]
    assert [e.features["target_count_last3_by_user"] for e in out] == [0, 1, 2, 3, 3, 3]
    plain = list(add_windows(events, Window("user", None, "count", last=3)))
    assert all(set(e.features) == {"user", "count_last3_by_user"} for e in plain)  # no label unless asked


def test_an_event_without_its_key_gets_missing_features_and_is_not_kept():
    features = WindowedFeatures(Window("user", "x", ["count", "mean"], over=60))
    assert features.features_one({"x": 1.0}, 0.0) == {"x_count_60s_by_user": None, "x_mean_60s_by_user": None}
    assert features.state_size() == {"window_keys": 0, "window_values": 0}


def test_the_time_to_live_bounds_the_state_of_a_million_distinct_keys():
    features = WindowedFeatures(Window("card", "x", "count", over=10))
    largest = 0
    for i in range(1_000_000):  # one event per card, ten per second: about 100 cards live
        features.features_one({"card": i, "x": 1.0}, i / 10)
        if i % 1000 == 0:
            largest = max(largest, *features.state_size().values())
    assert 100 <= largest <= 101
    assert len(pickle.dumps(features)) < 20_000


def test_the_time_to_live_bounds_the_state_when_a_key_keeps_coming_back_just_after_it():
    features = WindowedFeatures(Window("card", "x", "count", over=10))
    largest = 0
    for i in range(50_000):  # new cards, ten a second, and card "r" back every 10.1 s (just past its ttl)
        card = "r" if i % 101 == 0 else i
        features.features_one({"card": card, "x": 1.0}, i / 10)
        if i % 500 == 0:
            largest = max(largest, features.state_size()["window_keys"])
    assert 100 <= largest <= 102


def test_the_time_to_live_bounds_a_count_window_and_a_key_that_comes_back_after_it_starts_afresh():
    features = WindowedFeatures(Window("card", None, "count", last=3, ttl=20, lateness=5))
    largest = 0
    for i in range(100_000):
        features.features_one({"card": i % 50_000}, i / 10)
        if i % 1000 == 0:
            largest = max(largest, features.state_size()["window_keys"])
    assert 200 <= largest <= 251  # freed 25 s (ttl + lateness) after their newest event: 250 events
    assert features.features_one({"card": 1}, 10_000.0) == {"count_last3_by_card": 0}  # it came back too late
    assert features.features_one({"card": 1}, 10_010.0) == {"count_last3_by_card": 1}


def test_the_state_pickles_and_resumes_exactly():
    df = stream(seed=5)
    window = Window("user", "value", ["count", "mean", "last"], over="5min", lateness=30)
    whole = computed(df, window)
    first = WindowedFeatures([window])
    head = [first.features_one({"user": r.user, "value": r.value}, r.ts) for r in df.iloc[:200].itertuples()]
    resumed = pickle.loads(pickle.dumps(first))
    tail = [resumed.features_one({"user": r.user, "value": r.value}, r.ts) for r in df.iloc[200:].itertuples()]
    assert [list(row.values()) for row in head + tail] == whole.astype(object).where(whole.notna(), None).values.tolist()


def test_a_peek_gives_what_the_next_event_would_get_and_changes_nothing():
    df = stream(seed=6)
    windows = [Window("user", "value", ["count", "mean", "std", "since_last"], over="5min", lateness=30),
               Window("user", "value", ["sum", "last"], over="10min", kind="hopping", hop="2min", lateness=30),
               Window("user", "value", ["max", "nunique"], over="3min", kind="tumbling", ttl="4min"),
               Window("user", None, "since_last", last=1), Window("user", "value", "min", last=5, ttl=300)]
    features = WindowedFeatures(windows)
    rng = random.Random(6)
    peeked = 0
    for r in df.itertuples():
        if rng.random() < 0.3:  # a peek at a known, new or missing user, earlier or later than the clock
            user = rng.choice(["a", "b", "c", "nobody", None])
            ts = r.ts + rng.choice([-40.0, 0.0, 1.0, 150.0, 400.0, 5000.0])
            before = pickle.dumps(features)
            peek = features.features_for({"user": user, "value": 1.0}, ts)
            assert pickle.dumps(features) == before  # nothing changed
            assert peek == pickle.loads(before).features_one({"user": user, "value": 1.0}, ts)
            peeked += 1
        features.features_one({"user": r.user, "value": r.value}, r.ts)
    assert peeked > 50
    with pytest.raises(ConfigError, match="windowed features need each event's time"):
        features.features_for({"user": "a"}, None)


def test_an_event_later_than_the_lateness_is_counted():
    window = Window("user", "x", "count", over=60, lateness=5)
    features = WindowedFeatures(window)
    for ts in [100.0, 96.0, 90.0]:
        features.features_one({"user": "a", "x": 1.0}, ts)
    assert features.windows[0].late_ == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"aggregates": ["count", "median"]}, "unknown aggregate(s) 'median'; known aggregates: count, last"),
    ({"over": None}, "give a window either over"),
    ({"last": 3}, "give a window either over"),
    ({"over": "10 parsecs"}, "over must be seconds, a datetime.timedelta or a text like '10min'"),
    ({"kind": "hopping"}, "a hopping window needs hop"),
    ({"kind": "hopping", "hop": "7min"}, "over must be a whole number of hops"),
    ({"kind": "session"}, "unknown kind 'session'; known kinds: hopping, sliding, tumbling"),
    ({"on": None, "aggregates": ["mean"]}, r"unknown aggregate\(s\) 'mean'; known aggregates: count, since_last"),
])
def test_a_wrong_window_is_refused_naming_the_parameter(kwargs, message):
    arguments = {"key": "user", "on": "x", "aggregates": ["count"], "over": "10min", **kwargs}
    with pytest.raises(ConfigError, match=message.replace("(s)", r"\(s\)") if "\\" not in message else message):
        Window(**arguments)


def test_window_texts_of_the_command_line():
    window = parse_window("user:amount:count,mean:1h:kind=hopping:hop=10min:lateness=30")
    assert (window.key, window.on, window.aggregates, window.hops, window.lateness) == \
        ("user", "amount", ["count", "mean"], 6, 30.0)
    with pytest.raises(ConfigError, match="--window must be KEY:ON:AGG"):
        parse_window("user:amount")
    with pytest.raises(ConfigError, match="unknown --window option 'size'"):
        parse_window("user:amount:count:1h:size=3")


def test_every_aggregate_is_tested():
    assert set(NUMERIC) == set(AGGREGATES)

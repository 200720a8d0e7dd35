"""Preprocessing events: missing values, online statistics and online vs batch pipelines.

An event stream is preprocessed one event at a time (river), a table all at once
(scikit-learn). This module puts the two side by side on the same events:

* :func:`missing_report` -- per feature: its kind, how many values are missing and what share.
* :func:`online_vs_batch_stats` -- running mean and standard deviation with :mod:`river.stats`
  in one pass, next to the exact numpy values over the same prefix of the stream.
* :func:`online_pipeline` and :func:`batch_pipeline` -- the same preprocessing (impute, scale
  numbers, one-hot encode categories) as a river transformer and a scikit-learn
  ``ColumnTransformer``; :func:`compare_pipelines` runs both on the same events.
* :func:`inject_missing` -- blank a share of the values, to make a clean stream realistic.

Feature kinds: a column with a numeric (not boolean) dtype is ``"numeric"``, anything else
(strings, booleans) is ``"categorical"``. Integer codes meant as categories should be turned
into strings first (``df.astype({"car": str})``).

Examples
--------
>>> import pandas as pd
>>> from eventml.preprocess import missing_report
>>> df = pd.DataFrame({"id": ["a", "b"], "label": [0, 1], "x": [1.0, None], "color": ["red", None]})
>>> report = missing_report(df)
>>> report["kind"].to_dict(), report["missing_share"].to_dict()
({'x': 'numeric', 'color': 'categorical'}, {'x': 0.5, 'color': 0.5})
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from eventml.errors import ConfigError
from eventml.events import Event, events_to_dataframe
from eventml.validation import fraction, positive_int

__all__ = [
    "META_COLUMNS",
    "feature_columns",
    "feature_kinds",
    "missing_report",
    "inject_missing",
    "online_vs_batch_stats",
    "online_pipeline",
    "batch_pipeline",
    "compare_pipelines",
    "PipelineComparison",
]

META_COLUMNS = ("id", "partition", "offset", "ts", "label")
"""Columns of :func:`eventml.read_dataframe` that are not features."""

NUMERIC, CATEGORICAL = "numeric", "categorical"


# ----------------------------------------------------------------------------- features


def _frame(events: pd.DataFrame | Iterable[Event]) -> pd.DataFrame:
    return events if isinstance(events, pd.DataFrame) else events_to_dataframe(events)


def feature_columns(df: pd.DataFrame) -> list[str]:
    """The feature columns of an events DataFrame: every column but ``id``, ``partition``,
    ``offset``, ``ts`` and ``label``.

    Examples
    --------
    >>> feature_columns(pd.DataFrame(columns=["id", "offset", "ts", "label", "x", "color"]))
    ['x', 'color']
    """
    return [str(c) for c in df.columns if c not in META_COLUMNS]


def _kind(series: pd.Series) -> str:
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    return NUMERIC if numeric else CATEGORICAL


def feature_kinds(df: pd.DataFrame, features: Sequence[str] | None = None) -> dict[str, str]:
    """``{feature: "numeric" | "categorical"}`` from the dtypes of ``df``.

    Examples
    --------
    >>> feature_kinds(pd.DataFrame({"x": [1.5], "n": [3], "color": ["red"], "flag": [True]}))
    {'x': 'numeric', 'n': 'numeric', 'color': 'categorical', 'flag': 'categorical'}
    """
    features = feature_columns(df) if features is None else list(features)
    return {f: _kind(df[f]) for f in features}


def _split(df: pd.DataFrame, numeric: Sequence[str] | None, categorical: Sequence[str] | None) -> tuple[list, list]:
    """Numeric and categorical features: as given, else inferred from the dtypes."""
    kinds = feature_kinds(df)
    if numeric is None:
        numeric = [f for f, k in kinds.items() if k == NUMERIC and f not in (categorical or ())]
    if categorical is None:
        categorical = [f for f, k in kinds.items() if k == CATEGORICAL and f not in numeric]
    missing = [f for f in [*numeric, *categorical] if f not in df.columns]
    if missing:
        raise ConfigError(f"feature(s) {', '.join(map(repr, missing))} not in the data; "
                          f"its features are: {', '.join(feature_columns(df))}")
    return list(numeric), list(categorical)


def missing_report(df: pd.DataFrame, features: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per feature: ``kind``, ``dtype``, ``missing`` (count), ``missing_share`` and
    ``distinct`` (number of distinct non-missing values).

    Parameters
    ----------
    df
        Events as a DataFrame (e.g. from :func:`eventml.read_dataframe`).
    features
        The features to report on; all of them by default.
    """
    features = feature_columns(df) if features is None else list(features)
    missing = df[features].isna().sum()
    report = pd.DataFrame({
        "kind": [_kind(df[f]) for f in features],
        "dtype": [str(df[f].dtype) for f in features],
        "missing": missing.to_numpy(),
        "missing_share": (missing / len(df) if len(df) else missing * 0.0).to_numpy(),
        "distinct": [df[f].nunique() for f in features],
    }, index=pd.Index(features, name="feature"))
    return report


def inject_missing(df: pd.DataFrame, share: float, columns: Sequence[str] | None = None, *,
                   seed: int | None = 0) -> pd.DataFrame:
    """A copy of ``df`` in which each value of ``columns`` is missing with probability ``share``.

    Parameters
    ----------
    share
        Probability, from 0 to 1, that a value is blanked (independently per value).
    columns
        The columns to blank; all feature columns by default.
    seed
        Seed of the random draws: the same seed blanks the same cells.

    Examples
    --------
    >>> df = pd.DataFrame({"x": [float(i) for i in range(1000)], "label": 0})
    >>> out = inject_missing(df, 0.2, seed=1)
    >>> round(float(out["x"].isna().mean()), 1), int(out["label"].isna().sum()), int(df["x"].isna().sum())
    (0.2, 0, 0)
    """
    fraction("share", share, what="a probability")
    columns = feature_columns(df) if columns is None else list(columns)
    rng = np.random.default_rng(seed)
    out = df.copy()
    for column in columns:
        out[column] = out[column].mask(rng.random(len(out)) < share)
    return out


# ----------------------------------------------------------------------------- online statistics


def online_vs_batch_stats(events: pd.DataFrame | Iterable[Event], features: Sequence[str] | None = None, *,
                          every: int = 100) -> pd.DataFrame:
    """Running mean and standard deviation, online (river) next to batch (numpy), as the stream goes on.

    One pass over the events updates a :class:`river.stats.Mean` and a
    :class:`river.stats.Var` per feature; every ``every`` events (and after the last one) the
    online values are put next to numpy's over the same prefix of the stream. Missing values
    are skipped by both. Standard deviations use ``ddof=1`` on both sides and are NaN until a
    feature has two values.

    Parameters
    ----------
    events
        Events, or a DataFrame of them (e.g. from :func:`eventml.read_dataframe`).
    features
        Numeric features to follow; all numeric features by default.
    every
        Compare every this many events (a positive integer).

    Returns
    -------
    pandas.DataFrame
        Tidy: ``step`` (events seen), ``feature``, ``count`` (non-missing values seen),
        ``online_mean``, ``batch_mean``, ``online_std``, ``batch_std``, and ``abs_diff`` and
        ``rel_diff``, the larger of the mean and std differences (relative to the batch
        value's magnitude, at least 1).

    Examples
    --------
    >>> df = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "y": [10.0, 10.0, 10.0, 30.0]})
    >>> out = online_vs_batch_stats(df, every=2)
    >>> out[["step", "feature", "online_mean", "batch_mean", "batch_std"]]
       step feature  online_mean  batch_mean  batch_std
    0     2       x     1.500000    1.500000   0.707107
    1     2       y    10.000000   10.000000   0.000000
    2     4       x     2.333333    2.333333   1.527525
    3     4       y    15.000000   15.000000  10.000000
    >>> bool(out["abs_diff"].max() < 1e-12)
    True
    """
    from river import stats

    every = positive_int("every", every)
    df = _frame(events)
    features = _split(df, features, ())[0]
    columns = {f: df[f].to_numpy(dtype=float) for f in features}
    means = {f: stats.Mean() for f in features}
    variances = {f: stats.Var(ddof=1) for f in features}
    n, rows = len(df), []
    for step, x in enumerate(df[features].itertuples(index=False, name=None), start=1):  # bounded: len(df)
        for f, value in zip(features, x):
            if value is not None and value == value:  # not None, not NaN
                means[f].update(value)
                variances[f].update(value)
        if step % every == 0 or step == n:
            rows.extend(_compare_prefix(f, step, columns[f][:step], means[f], variances[f]) for f in features)
    return pd.DataFrame(rows, columns=["step", "feature", "count", "online_mean", "batch_mean", "online_std",
                                       "batch_std", "abs_diff", "rel_diff"])


def _compare_prefix(feature: str, step: int, prefix: np.ndarray, mean: Any, var: Any) -> dict[str, Any]:
    seen = prefix[~np.isnan(prefix)]
    count = int(seen.size)
    batch_mean = float(seen.mean()) if count else math.nan
    batch_std = float(seen.std(ddof=1)) if count > 1 else math.nan
    online_mean = mean.get() if count else math.nan
    online_std = math.sqrt(var.get()) if count > 1 else math.nan
    abs_diff = float(np.nanmax([abs(online_mean - batch_mean), abs(online_std - batch_std), 0.0]))
    scale = max(abs(batch_mean) if count else 0.0, batch_std if count > 1 else 0.0, 1.0)
    return {"step": step, "feature": feature, "count": count, "online_mean": online_mean, "batch_mean": batch_mean,
            "online_std": online_std, "batch_std": batch_std, "abs_diff": abs_diff, "rel_diff": abs_diff / scale}


# ----------------------------------------------------------------------------- pipelines


def online_pipeline(numeric: Sequence[str] = (), categorical: Sequence[str] = (), *,
                    fill_category: str = "missing"):
    """A river transformer: numbers imputed with their running mean then standard-scaled,
    categories filled with ``fill_category`` then one-hot encoded.

    Events must carry every named feature (``None`` when missing): see :func:`compare_pipelines`.

    Examples
    --------
    >>> pipe = online_pipeline(["x"], ["color"])
    >>> for x in [{"x": 1.0, "color": "red"}, {"x": 3.0, "color": None}]:
    ...     pipe.learn_one(x)
    >>> dict(sorted(pipe.transform_one({"x": None, "color": "red"}).items()))
    {'color_missing': 0, 'color_red': 1, 'x': 0.0}
    """
    from river import compose, preprocessing, stats

    parts = []
    if numeric:
        parts.append(compose.Select(*numeric)
                     | preprocessing.StatImputer(*[(f, stats.Mean()) for f in numeric])
                     | preprocessing.StandardScaler())
    if categorical:
        parts.append(compose.Select(*categorical)
                     | preprocessing.StatImputer(*[(f, fill_category) for f in categorical])
                     | preprocessing.OneHotEncoder())
    if not parts:
        raise ConfigError("give at least one numeric or categorical feature")
    return parts[0] if len(parts) == 1 else compose.TransformerUnion(*parts)


def batch_pipeline(numeric: Sequence[str] = (), categorical: Sequence[str] = (), *,
                   fill_category: str = "missing"):
    """The scikit-learn counterpart of :func:`online_pipeline` (unfitted): a ``ColumnTransformer``
    with ``SimpleImputer(mean) + StandardScaler`` for numbers and
    ``SimpleImputer(constant) + OneHotEncoder`` for categories. Output names match river's
    (``x``, ``color_red``).

    Examples
    --------
    >>> df = pd.DataFrame({"x": [1.0, 3.0, None], "color": ["red", None, "red"]})
    >>> pipe = batch_pipeline(["x"], ["color"]).fit(df)
    >>> pipe.get_feature_names_out().tolist()
    ['x', 'color_missing', 'color_red']
    >>> pipe.transform(df)[2].tolist()
    [0.0, 0.0, 1.0]
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if numeric:
        parts.append(("numeric", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), list(numeric)))
    if categorical:
        encode = make_pipeline(SimpleImputer(strategy="constant", fill_value=fill_category),
                               OneHotEncoder(handle_unknown="ignore", sparse_output=False))
        parts.append(("categorical", encode, list(categorical)))
    if not parts:
        raise ConfigError("give at least one numeric or categorical feature")
    return ColumnTransformer(parts, sparse_threshold=0.0, verbose_feature_names_out=False)


@dataclasses.dataclass
class PipelineComparison:
    """The same events through :func:`online_pipeline` and :func:`batch_pipeline`.

    Attributes
    ----------
    online
        river's transform of every event, after it learned all of them.
    batch
        scikit-learn's transform of every event, after ``fit`` on all of them.
    progressive
        river's transform of each event as it arrived, before learning it: what a model
        updated in real time sees.
    columns
        One row per output column: ``kind`` (``numeric`` or ``one-hot``), ``in_online``,
        ``in_batch``, ``max_abs_diff`` (online vs batch) and ``progressive_max_abs_diff``.
    """

    online: pd.DataFrame
    batch: pd.DataFrame
    progressive: pd.DataFrame
    columns: pd.DataFrame

    @property
    def one_hot_columns(self) -> list[str]:
        """The one-hot output columns of the batch pipeline."""
        return self.columns.index[(self.columns["kind"] == "one-hot") & self.columns["in_batch"]].tolist()

    @property
    def same_columns(self) -> bool:
        """Whether both pipelines output the same columns."""
        return bool(self.columns["in_online"].all() and self.columns["in_batch"].all())

    def max_abs_diff(self, kind: str | None = None) -> float:
        """Largest difference between the online and the batch output (of one ``kind`` of column)."""
        rows = self.columns if kind is None else self.columns[self.columns["kind"] == kind]
        return float(rows["max_abs_diff"].max()) if len(rows) else 0.0

    def gap(self) -> pd.Series:
        """Per event, the largest difference between its progressive and its batch output."""
        diff = (self.progressive - self.batch).abs().max(axis=1)
        return pd.Series(diff.to_numpy(), index=pd.RangeIndex(1, len(diff) + 1, name="step"), name="gap")


def _records(df: pd.DataFrame, features: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per row with every feature, ``None`` where missing (what river expects)."""
    table = df[list(features)].astype(object)
    return table.where(table.notna(), None).to_dict("records")


def compare_pipelines(events: pd.DataFrame | Iterable[Event], numeric: Sequence[str] | None = None,
                      categorical: Sequence[str] | None = None, *,
                      fill_category: str = "missing") -> PipelineComparison:
    """Run :func:`online_pipeline` and :func:`batch_pipeline` on the same events and compare.

    The online pipeline sees the events once, in order (transform, then learn); the batch
    pipeline is fitted on all of them. Without missing numbers the final outputs agree up to
    float error; with them they differ a little, because river's scaler saw the values the
    imputer filled in with the mean *so far* while scikit-learn imputes with the final mean.

    Parameters
    ----------
    events
        Events, or a DataFrame of them.
    numeric, categorical
        Feature names; inferred from the dtypes when not given.

    Examples
    --------
    >>> df = pd.DataFrame({"x": [1.0, 2.0, 4.0, 5.0], "color": ["red", "blue", None, "red"]})
    >>> cmp = compare_pipelines(df)
    >>> cmp.one_hot_columns, cmp.same_columns
    (['color_blue', 'color_missing', 'color_red'], True)
    >>> print(f"{cmp.max_abs_diff():.1e}")
    0.0e+00
    """
    df = _frame(events)
    numeric, categorical = _split(df, numeric, categorical)
    features = [*numeric, *categorical]
    online = online_pipeline(numeric, categorical, fill_category=fill_category)
    progressive = []
    for x in _records(df, features):  # bounded: one pass over the rows
        progressive.append(online.transform_one(x))
        online.learn_one(x)
    final = [online.transform_one(x) for x in _records(df, features)]
    batch_model = batch_pipeline(numeric, categorical, fill_category=fill_category)
    table = df[features].copy()
    table[categorical] = table[categorical].astype(object)
    batch = pd.DataFrame(batch_model.fit_transform(table), columns=batch_model.get_feature_names_out(), index=df.index)
    names = list(dict.fromkeys([*batch.columns, *(c for row in final for c in row)]))
    online_df = pd.DataFrame(final, index=df.index).reindex(columns=names).astype(float)
    progressive_df = pd.DataFrame(progressive, index=df.index).reindex(columns=names).fillna(0.0).astype(float)
    batch = batch.reindex(columns=names)
    columns = pd.DataFrame({
        "kind": ["numeric" if c in numeric else "one-hot" for c in names],
        "in_online": [bool(online_df[c].notna().any()) for c in names],
        "in_batch": [bool(batch[c].notna().any()) for c in names],
        "max_abs_diff": (online_df - batch).abs().max().to_numpy(),
        "progressive_max_abs_diff": (progressive_df - batch).abs().max().to_numpy(),
    }, index=pd.Index(names, name="column"))
    return PipelineComparison(online_df, batch, progressive_df, columns)

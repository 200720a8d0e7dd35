"""Windowed features per key over event time: how many transactions this user made in the last 10 minutes.

A :class:`Window` declares aggregates of one feature (``on``) of the events of the same key (a feature
such as ``"user"``) over a span of event time (``over="10min"``: sliding, tumbling or hopping) or
over the last ``last`` events of the key. :class:`WindowedFeatures` computes a set of windows on a
stream, one event at a time (:meth:`WindowedFeatures.features_one`), and keeps their state: that
one piece of code serves :func:`eventml.prequential`, :func:`eventml.read_dataframe` and the live
updater, so an event's windowed features are the same wherever it is read.

Guaranteed:

- **no leakage**: an event's features come from the events of its key read *before* it in the
  stream and with an event time *before* its own (``ts`` strictly less; ties are left out), never
  from itself or later events; a label enters only a target window (``target=True``), and only
  the labels events carried themselves, so revealed before the current event;
- **exact and the same everywhere**: the aggregates are computed from the kept values (sums with
  :func:`math.fsum`), so they equal pandas' on the same events, also out of order, for every event
  at most ``lateness`` seconds older than the newest event time seen (the stream's clock), and they
  depend only on the order of the key's own events (which keying by the entity keeps in one
  partition; a reader of several partitions needs a ``lateness`` that covers how far one partition
  trails the others). Not guaranteed for an event later than that (counted in ``late_``): it is
  given features and kept, but its key's older values may have been freed already;
- **bounded**: a key whose next event comes more than ``ttl`` seconds after its newest one starts
  afresh (by default ``ttl`` is ``over + lateness`` for a time window, after which no window of the
  key can see its history anyway; never for a count window unless ``ttl`` is given), and its state
  is freed once the clock is ``ttl + lateness`` past its newest event; a time window keeps only the
  values that a window can still see;
- **picklable and small**: the state is plain lists, deques and dicts (it is committed with the
  live updater's state).

Why not river's ``feature_extraction.Agg`` with ``utils.TimeRolling``: river updates a window with
the event before it is asked (the current event would leak), keeps one window that ends at the
newest time (an out-of-order event would see a later one), reverts sums by subtraction (rounding
drifts from pandas) and keeps its keys forever. ``benchmarks/bench_windows.py`` compares the cost.

Aggregates (:data:`AGGREGATES`): ``count`` (values present), ``sum``, ``mean``, ``min``, ``max``,
``std`` (sample, as pandas), ``nunique``, ``last`` (the value of the newest event, ties broken by
stream order; in a count window, of the last in stream order) and ``since_last`` (seconds from the newest event of the window to this event). The
numeric ones use the numbers only (a string is left out); a missing value (None, NaN) is left out
of all but ``since_last``. An empty window gives ``count``, ``sum`` and ``nunique`` 0 and the others
None (missing), as does ``std`` of one value; an event without its key feature gets only None and
is not kept.

Examples
--------
>>> from eventml.events import Event
>>> window = Window("user", "amount", ["count", "mean", "since_last"], over="10min")
>>> features = WindowedFeatures([window])
>>> for ts, amount in [(0.0, 10.0), (60.0, 30.0), (500.0, 5.0), (1200.0, 7.0)]:
...     print(list(features.features_one({"user": "ann", "amount": amount}, ts).values()))
[0, None, None]
[1, 10.0, 60.0]
[2, 20.0, 440.0]
[0, None, None]

The time since the key's previous event, whenever it was: ``Window("user", None, "since_last", last=1)``.
"""

from __future__ import annotations

import bisect
import collections
import copy
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from eventml.errors import ConfigError
from eventml.events import Event
from eventml.validation import non_negative_seconds, one_of, positive_int, subset_of

__all__ = ["AGGREGATES", "KINDS", "Window", "WindowedFeatures", "add_windows", "parse_duration", "parse_window",
           "windowed"]

AGGREGATES = ("count", "sum", "mean", "min", "max", "std", "nunique", "last", "since_last")
"""The aggregates a :class:`Window` computes."""

KINDS = ("sliding", "tumbling", "hopping")
"""How a time window moves: with each event, from one aligned span to the next, or in hops."""

_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(ms|sec|s|min|m|h|d|)\s*$")
_NUMBERS = (int, float)  # a bool is an int: 0 or 1


def parse_duration(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Seconds > 0 (>= 0 with ``allow_zero``) from a number of seconds, a :class:`datetime.timedelta` or a
    text such as ``"10min"`` (units ``ms``, ``s``, ``min``, ``h``, ``d``; none: seconds).

    Examples
    --------
    >>> parse_duration("over", "10min"), parse_duration("over", "1.5h"), parse_duration("over", 30)
    (600.0, 5400.0, 30)
    """
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ConfigError(f"{name} must be seconds, a datetime.timedelta or a text like '10min' (units "
                              f"{', '.join(u for u in _UNITS if u)}), got {value!r}")
        value = float(match.group(1)) * _UNITS[match.group(2)]
    seconds = non_negative_seconds(name, value)
    if seconds == 0 and not allow_zero:
        raise ConfigError(f"{name} must be more than 0 seconds, got {value!r}")
    return seconds


def _span_name(value: Any, seconds: float) -> str:
    if isinstance(value, str):
        return value.replace(" ", "")
    return f"{seconds:g}s"


class Window:
    """Aggregates of one feature over the earlier events of the same key: a declaration and its state.

    Parameters
    ----------
    key
        The feature whose value groups the events (``"user"``).
    on
        The feature aggregated; ``None`` for the events themselves (``count`` and ``since_last``).
    aggregates
        Names from :data:`AGGREGATES`, or one name.
    over
        The span of event time: seconds, a :class:`datetime.timedelta` or a text (``"10min"``, ``"1h"``).
    last
        Instead of ``over``: the last ``last`` events of the key (in stream order).
    kind
        For ``over``: ``"sliding"`` (the span just before the event, ``[ts - over, ts)``),
        ``"tumbling"`` (the aligned span of the event so far, ``[floor(ts / over) * over, ts)``) or
        ``"hopping"`` (spans of ``over`` starting every ``hop``: the oldest still open, so far).
    hop
        The hop of a hopping window; ``over`` must be a whole number of hops.
    target
        Aggregate the label instead of a feature (``on`` must be None): the labels of the key's earlier
        events that carried one.
    lateness
        Seconds an event may be older than the newest event time seen and still get exact features.
    ttl
        Seconds: a key whose next event comes more than ``ttl`` after its newest one starts afresh, and
        its state is freed once the newest event time seen is ``ttl + lateness`` past its newest event;
        default ``over + lateness`` for a time window, never for a count window.
    name
        The prefix of the feature names; default ``<on>_`` (``target_`` for a target window).

    Each feature is named ``<name><aggregate>_<span>_by_<key>``, e.g. ``amount_mean_10min_by_user``.

    Examples
    --------
    >>> Window("user", "amount", ["sum", "max"], last=3).names
    ['amount_sum_last3_by_user', 'amount_max_last3_by_user']
    >>> Window("card", None, "count", over="1h", kind="hopping", hop="15min").names
    ['count_1h_hop15min_by_card']
    """

    def __init__(self, key: str, on: str | None, aggregates: str | Iterable[str], *, over: Any = None,
                 last: int | None = None, kind: str = "sliding", hop: Any = None, target: bool = False,
                 lateness: Any = 0, ttl: Any = None, name: str | None = None):
        if not isinstance(key, str) or not key:
            raise ConfigError(f"key must be the name of a feature (a non-empty string), got {key!r}")
        if on is not None and (not isinstance(on, str) or not on):
            raise ConfigError(f"on must be the name of a feature or None (the events themselves), got {on!r}")
        if target and on is not None:
            raise ConfigError(f"a target window aggregates the label: on must be None, got {on!r}")
        aggregates = [aggregates] if isinstance(aggregates, str) else list(aggregates)
        if not aggregates:
            raise ConfigError(f"aggregates must name at least one of {', '.join(AGGREGATES)}")
        subset_of("aggregate", aggregates, AGGREGATES)
        if on is None and not target:
            subset_of("aggregate", aggregates, ("count", "since_last"),
                      note=" (a window of the events themselves, on=None)")
        one_of("kind", kind, KINDS)
        if (over is None) == (last is None):
            raise ConfigError(f"give a window either over (a span of event time, e.g. '10min') or last (a number "
                              f"of events), got over={over!r}, last={last!r}")
        self.key, self.on, self.aggregates, self.target = key, on, aggregates, bool(target)
        self.over, self.last, self.kind, self.hop, self.ttl, self.name = over, last, kind, hop, ttl, name
        self.lateness = parse_duration("lateness", lateness, allow_zero=True)
        if last is not None:
            positive_int("last", last)
            if kind != "sliding" or hop is not None:
                raise ConfigError("a count window (last=) has no kind or hop: they move over event time (over=)")
            span, self.seconds, self.hops = f"last{last}", None, 0
        else:
            self.seconds = parse_duration("over", over)
            span = _span_name(over, self.seconds)
            if kind == "hopping":
                if hop is None:
                    raise ConfigError("a hopping window needs hop (e.g. hop='5min')")
                hop_s = parse_duration("hop", hop)
                hops = round(self.seconds / hop_s)
                if hops < 1 or abs(hops * hop_s - self.seconds) > 1e-9 * self.seconds:
                    raise ConfigError(f"over must be a whole number of hops: over={over!r}, hop={hop!r}")
                self.hop_seconds, self.hops = hop_s, hops
                span += f"_hop{_span_name(hop, hop_s)}"
            elif hop is not None:
                raise ConfigError(f"hop is for kind='hopping', not {kind!r}")
            else:
                self.hop_seconds, self.hops = self.seconds, 1
                if kind == "tumbling":
                    span += "_tumbling"
        self.ttl_seconds = (None if last is not None else self.seconds + self.lateness) if ttl is None \
            else parse_duration("ttl", ttl)
        prefix = name if name is not None else ("target_" if target else "" if on is None else f"{on}_")
        self.names = [f"{prefix}{agg}_{span}_by_{key}" for agg in aggregates]
        if name is None and on is None and not target:  # 'count_1h_by_card', not '_count...'
            self.names = [n.lstrip("_") for n in self.names]
        self._reset()

    def _reset(self) -> None:
        # key -> [times, values, newest time] (a time window: sorted by time, ties in stream order) or
        # [deque of (time, value), newest time] (a count window); least recently updated first
        self.keys_: collections.OrderedDict = collections.OrderedDict()
        self.clock_ = -math.inf  # the newest event time seen
        self.late_ = 0  # events more than lateness older than the clock

    def clone(self) -> "Window":
        """The same window with an empty state."""
        fresh = copy.copy(self)
        fresh._reset()
        return fresh

    def __repr__(self) -> str:
        span = f"last={self.last}" if self.last is not None else f"over={self.over!r}, kind={self.kind!r}"
        return f"Window({self.key!r}, {self.on!r}, {self.aggregates!r}, {span})"

    def start(self, ts: float) -> float:
        """The oldest event time a time window of an event at ``ts`` sees (it ends before ``ts``)."""
        if self.kind == "sliding":
            return ts - self.seconds
        return (math.floor(ts / self.hop_seconds) - self.hops + 1) * self.hop_seconds

    def features_one(self, x: dict, ts: float, label: Any = None) -> list:
        """The aggregates of the event (``x`` at event time ``ts``) from the events before it, in the
        order of :attr:`names`; then the event is kept for the events after it."""
        key = x.get(self.key)
        if key is None:
            return [None] * len(self.aggregates)
        value = label if self.target else 1 if self.on is None else x.get(self.on)
        if value is not None and type(value) is float and value != value:  # NaN: missing
            value = None
        keys, clock = self.keys_, self.clock_
        if ts < clock - self.lateness:
            self.late_ += 1
        elif ts > clock:
            self.clock_ = clock = ts
        state, out = self._peek(key, ts)
        if state is None:  # a new key, or one back after its time to live (its history is forgotten)
            state = keys[key] = [collections.deque(maxlen=self.last), ts] if self.last is not None else [[], [], ts]
        keys.move_to_end(key)  # the least recently updated first, for _expire (a key reset in place moves too)
        if self.last is not None:
            state[0].append((ts, value))
        else:
            times, values = state[0], state[1]
            at = bisect.bisect_right(times, ts)
            times.insert(at, ts)
            values.insert(at, value)
            cut = bisect.bisect_left(times, max(ts, state[-1]) - self.lateness - self.seconds)
            if cut:  # what no window of an event within the lateness of the key's newest can see
                del times[:cut], values[:cut]
        if ts > state[-1]:
            state[-1] = ts
        self._expire(clock)
        return out

    def features_for(self, x: dict, ts: float) -> list:
        """The aggregates :meth:`features_one` would give the event (``x`` at event time ``ts``) now,
        without keeping it or changing anything (a peek at the state)."""
        key = x.get(self.key)
        if key is None:
            return [None] * len(self.aggregates)
        return self._peek(key, ts)[1]

    def _peek(self, key: Any, ts: float) -> tuple[list | None, list]:
        """The kept state of ``key`` that an event at ``ts`` sees (None for a new key, or one whose newest
        event is more than ``ttl`` before ``ts``), and the aggregates it gives that event."""
        state = self.keys_.get(key)
        if state is None or (self.ttl_seconds is not None and ts - state[-1] > self.ttl_seconds):
            return None, self._aggregate([], [], ts)
        if self.last is not None:
            kept = state[0]
            return state, self._aggregate([t for t, _ in kept], [v for _, v in kept], ts)
        times, values = state[0], state[1]
        lo, hi = bisect.bisect_left(times, self.start(ts)), bisect.bisect_left(times, ts)
        return state, self._aggregate(times[lo:hi], values[lo:hi], ts)

    def _expire(self, clock: float) -> None:
        """Free the keys whose newest event is more than ``ttl + lateness`` older than the clock: an event
        within the lateness that comes for one of them would forget its history anyway."""
        if self.ttl_seconds is None:
            return
        keys, horizon = self.keys_, clock - self.ttl_seconds - self.lateness
        while keys:
            oldest = next(iter(keys))
            if keys[oldest][-1] >= horizon:
                return
            del keys[oldest]

    def _aggregate(self, times: list, values: list, ts: float) -> list:
        present = [v for v in values if v is not None]
        numbers = [v for v in present if isinstance(v, _NUMBERS)]
        out = []
        for agg in self.aggregates:
            if agg == "count":
                out.append(len(present))
            elif agg == "sum":
                out.append(math.fsum(numbers))
            elif agg == "nunique":
                out.append(len(set(present)))
            elif agg == "since_last":
                out.append(ts - (max(times) if self.last is not None else times[-1]) if times else None)
            elif agg == "last":
                out.append(present[-1] if present else None)
            elif not numbers:
                out.append(None)
            elif agg == "mean":
                out.append(math.fsum(numbers) / len(numbers))
            elif agg == "min":
                out.append(min(numbers))
            elif agg == "max":
                out.append(max(numbers))
            else:  # std, the sample's (ddof=1), as pandas
                n = len(numbers)
                if n < 2:
                    out.append(None)
                else:
                    mean = math.fsum(numbers) / n
                    out.append(math.sqrt(math.fsum((v - mean) ** 2 for v in numbers) / (n - 1)))
        return out

    def state_size(self) -> tuple[int, int]:
        """``(keys, values)`` kept."""
        return len(self.keys_), sum(len(state[0]) for state in self.keys_.values())


def _windows(windows: Any) -> list[Window]:
    if isinstance(windows, Window):
        return [windows]
    windows = list(windows)
    wrong = [w for w in windows if not isinstance(w, Window)]
    if wrong:
        raise ConfigError(f"windows must be eventml.windows.Window objects, got {wrong[0]!r}")
    return windows


def _need_time(ts: float | None) -> None:
    if ts is None:
        raise ConfigError("windowed features need each event's time (ts); this event has none")


class WindowedFeatures:
    """A set of :class:`Window` computed together on one stream, and their state.

    Parameters
    ----------
    windows
        Windows (or one): each is cloned, so the same declarations start afresh in each run.

    Examples
    --------
    >>> features = WindowedFeatures([Window("user", None, "count", last=2), Window("user", "x", "max", over=60)])
    >>> [features.features_one({"user": "a", "x": x}, ts) for ts, x in [(0, 1), (10, 3), (20, 2)]][-1]
    {'count_last2_by_user': 2, 'x_max_60s_by_user': 3}
    >>> features.state_size()
    {'window_keys': 2, 'window_values': 5}
    """

    def __init__(self, windows: Any):
        self.windows = [w.clone() for w in _windows(windows)]
        self.names = [name for w in self.windows for name in w.names]
        repeated = sorted({n for n in self.names if self.names.count(n) > 1})
        if repeated:
            raise ConfigError(f"two windows make the same features: {', '.join(repeated)} (give one a name=)")
        self.target = any(w.target for w in self.windows)

    def __repr__(self) -> str:
        return f"WindowedFeatures({self.windows!r})"

    def features_one(self, x: dict, ts: float | None, label: Any = None) -> dict:
        """The windowed features of one event from the events before it (name -> value), then keep the
        event (and its ``label`` for target windows).

        Raises
        ------
        ConfigError
            If ``ts`` is None: windows need each event's time.
        """
        _need_time(ts)
        out: dict = {}
        for window in self.windows:
            out.update(zip(window.names, window.features_one(x, ts, label)))
        return out

    def features_for(self, x: dict, ts: float | None) -> dict:
        """The windowed features :meth:`features_one` would give the event (features ``x`` at event time
        ``ts``) now, without keeping it: a read-only peek, so the state stays exactly as it was (what the
        prediction service answers a request with, from the committed state).

        Raises
        ------
        ConfigError
            If ``ts`` is None: windows need each event's time.

        Examples
        --------
        >>> features = WindowedFeatures([Window("user", "x", ["count", "sum"], over=60)])
        >>> features.features_one({"user": "a", "x": 2.0}, 0.0)
        {'x_count_60s_by_user': 0, 'x_sum_60s_by_user': 0.0}
        >>> features.features_for({"user": "a", "x": 5.0}, 30.0), features.features_for({"user": "a"}, 30.0)
        ({'x_count_60s_by_user': 1, 'x_sum_60s_by_user': 2.0}, {'x_count_60s_by_user': 1, 'x_sum_60s_by_user': 2.0})
        """
        _need_time(ts)
        out: dict = {}
        for window in self.windows:
            out.update(zip(window.names, window.features_for(x, ts)))
        return out

    def state_size(self) -> dict[str, int]:
        """The keys and values kept, summed over the windows: ``{"window_keys": ..., "window_values": ...}``."""
        sizes = [w.state_size() for w in self.windows]
        return {"window_keys": sum(k for k, _ in sizes), "window_values": sum(v for _, v in sizes)}


def windowed(windows: Any) -> WindowedFeatures | None:
    """A fresh :class:`WindowedFeatures` of ``windows`` (a list, a window, a set), or None for None or []."""
    if windows is None:
        return None
    if isinstance(windows, WindowedFeatures):
        windows = windows.windows
    windows = _windows(windows)
    return WindowedFeatures(windows) if windows else None


def add_windows(events: Iterable[Event], windows: Any) -> Iterator[Event]:
    """The events, in order, each with its windowed features added to its features (a new event).

    A window feature replaces a feature of the same name.

    Examples
    --------
    >>> events = [Event(f"e-{i}", {"user": "a", "x": float(i)}, ts=float(i)) for i in range(3)]
    >>> [e.features["x_sum_last2_by_user"] for e in add_windows(events, Window("user", "x", "sum", last=2))]
    [0.0, 0.0, 1.0]
    """
    features = windowed(windows)
    if features is None:
        yield from events
        return
    for event in events:
        added = features.features_one(event.features, event.ts, event.label)
        yield Event(event.id, {**event.features, **added}, event.label, event.ts)


def parse_window(text: str) -> Window:
    """A :class:`Window` from the command line's ``--window`` text:
    ``KEY:ON:AGG[,AGG...]:SPAN[:option=value...]``, where ``ON`` is a feature, ``-`` (the events
    themselves) or ``label`` with ``target=1``, ``SPAN`` is a duration (``10min``) or ``lastN``,
    and the options are ``kind``, ``hop``, ``lateness``, ``ttl``, ``target`` (1).

    Examples
    --------
    >>> parse_window("user:amount:count,mean:10min")
    Window('user', 'amount', ['count', 'mean'], over='10min', kind='sliding')
    >>> parse_window("user:-:count:1h:kind=hopping:hop=10min").names
    ['count_1h_hop10min_by_user']
    >>> parse_window("user:label:mean:last20:target=1").names
    ['target_mean_last20_by_user']
    """
    parts = text.split(":")
    if len(parts) < 4 or not all(parts[:4]):
        raise ConfigError(f"--window must be KEY:ON:AGG[,AGG...]:SPAN[:option=value...] (e.g. "
                          f"user:amount:count,mean:10min), got {text!r}")
    key, on, aggs, span, *options = parts
    kwargs: dict[str, Any] = {}
    for option in options:
        name, _, value = option.partition("=")
        one_of("--window option", name, ("kind", "hop", "lateness", "ttl", "target"))
        kwargs[name] = value
    target = kwargs.pop("target", "0") not in ("0", "", "false", "False")
    if span.startswith("last") and span[4:].isdigit():
        kwargs["last"] = int(span[4:])
    else:
        kwargs["over"] = span
    on_feature = None if on == "-" or (target and on == "label") else on
    return Window(key, on_feature, aggs.split(","), target=target, **kwargs)

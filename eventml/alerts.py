"""Alerts as data: rules over a model's stream, each crossing one record on ``<predictions>.alerts``.

A rule (:class:`Alert`) *holds* or not after each step of the stream; an alert *fires* when it starts to
hold, and fires again only after it stopped holding and holds again: exactly once per crossing. When a
rule stops holding a ``resolved`` record follows (a drift rule holds at its detection only, so it has
none). The rules:

- ``Alert.metric_below("accuracy", 0.8, labels=200)``: the model's rolling figure of the metric (over its
  last ``window`` scored predictions, ``labels`` by default) was below the threshold at each of the last
  ``labels`` scored labels (``metric_above`` for a loss); counted once the window is full;
- ``Alert.drift("adwin")``: a drift detector of :mod:`eventml.drift` fed the model's errors (0/1 mistake or
  absolute error) detected a rise of the error;
- ``Alert.lag_above(10_000)``: records of the events topic not read yet, at a commit, above the bound;
- ``Alert.dead_letters_above(5, per=1000)``: more than 5 dead letters over the last 1,000 events.

``model`` names the model a metric or drift rule watches; by default the champion (whichever model answers
at that label). :class:`AlertWatch` applies the rules of one task and is the one piece of code that decides,
live (:class:`eventml.live.LiveUpdater` with ``alerts=``; its state is part of each task's committed state,
so after a ``kill -9`` the restart fires the same alerts at the same events) and offline
(:func:`eventml.prequential` with ``alerts=``, metric and drift rules: the same stream gives the same alerts
at the same events). Guaranteed: metric and drift rules are functions of the labels and the predictions in
the order they are scored, and the dead-letter rule of the events and dead letters in merge order; the lag
rule depends on how fast the updater reads (checked at each commit), so it is not repeatable.

Examples
--------
>>> rule = Alert.metric_below("accuracy", 0.5, labels=3)
>>> rule.name
'accuracy<0.5:3'
>>> watch = AlertWatch([rule], ["m"])
>>> for n, (y, predicted) in enumerate([(1, 1), (1, 1), (1, 0), (1, 0), (1, 0), (1, 0), (1, 1), (1, 1)], 1):
...     for alert in watch.scored(y, [(predicted, None)], champion=0, events=n):
...         print(alert["events"], alert["state"], round(alert["value"], 2))
6 firing 0.0
8 resolved 0.67
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from eventml.errors import ConfigError
from eventml.exact_metrics import METRIC_TASKS, NO_PREDICTION, metric_pair
from eventml.validation import is_number, one_of, positive_int

__all__ = ["Alert", "AlertWatch", "ALERT_COLUMNS", "KEEP_ALERTS", "alerts_topic", "check_alerts", "parse_alert", "alert_table",
           "read_alerts"]

KINDS = ("metric_below", "metric_above", "drift", "lag_above", "dead_letters_above")
LIVE_ONLY = ("lag_above", "dead_letters_above")

ALERT_FORMS = ("METRIC<THRESHOLD:LABELS[:WINDOW][@MODEL] (e.g. accuracy<0.8:200)",
               "METRIC>THRESHOLD:LABELS[:WINDOW][@MODEL] (e.g. log_loss>0.6:200)",
               "drift:DETECTOR[@MODEL] (e.g. drift:adwin)", "lag>RECORDS (e.g. lag>10000)",
               "dead_letters>COUNT/EVENTS (e.g. dead_letters>5/1000)")
"""The forms :func:`parse_alert` accepts (the ``rule`` of an alert record is its rule in this form)."""

KEEP_ALERTS = 1000
"""The most alert records a task keeps in its state (:attr:`AlertWatch.alerts`); the counts go on."""

ALERT_COLUMNS = ["events", "labels", "rule", "state", "model", "value", "threshold"]
"""The columns of :func:`alert_table`, the same for a live updater's alerts and an offline run's."""


def alerts_topic(predictions_topic: str) -> str:
    """Where a live updater writes its alerts, one record each.

    >>> alerts_topic("sea-predictions")
    'sea-predictions.alerts'
    """
    return f"{predictions_topic}.alerts"


def _text(number: float) -> str:
    """A threshold as written: ``10000``, ``0.8``."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def _number(text: str, what: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--alert {spec!r}: {what} {text!r} is not a number; accepted forms: "
                          + "; ".join(ALERT_FORMS)) from None


@dataclasses.dataclass(frozen=True)
class Alert:
    """One alert rule; make it with :meth:`metric_below`, :meth:`metric_above`, :meth:`drift`,
    :meth:`lag_above` or :meth:`dead_letters_above` (see the module docstring).

    Examples
    --------
    >>> Alert.dead_letters_above(5, per=1000).name, Alert.drift("adwin", model="river_gnb").name
    ('dead_letters>5/1000', 'drift:adwin@river_gnb')
    >>> Alert.metric_below("precision", 0.8)
    Traceback (most recent call last):
    ...
    eventml.errors.ConfigError: unknown alert metric 'precision'; known alert metrics: accuracy, f1, log_loss, mae, r2, rmse, roc_auc
    """

    kind: str
    threshold: float | None = None
    metric: str | None = None
    labels: int | None = None
    window: int | None = None
    detector: str | None = None
    per: int | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        one_of("alert kind", self.kind, KINDS)
        if self.kind.startswith("metric"):
            one_of("alert metric", self.metric, sorted(METRIC_TASKS))
            positive_int("labels", self.labels)
            positive_int("window", self.window)
        if self.kind == "drift":
            from eventml.drift import DETECTORS

            one_of("alert drift detector", self.detector, DETECTORS, plural="drift detectors")
        elif not is_number(self.threshold) or self.threshold != self.threshold:
            raise ConfigError(f"the threshold of a {self.kind} alert must be a number, got {self.threshold!r}")
        if self.kind in LIVE_ONLY and not self.threshold >= 0:
            raise ConfigError(f"the bound of a {self.kind} alert must be >= 0, got {self.threshold!r}")
        if self.kind == "dead_letters_above":
            positive_int("per", self.per)
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise ConfigError(f"the model of an alert must be a model's name or None (the champion), got {self.model!r}")

    @classmethod
    def metric_below(cls, metric: str, threshold: float, *, labels: int = 200, window: int | None = None,
                     model: str | None = None) -> "Alert":
        """The model's rolling ``metric`` over ``window`` (default ``labels``) scored predictions was below
        ``threshold`` at each of the last ``labels`` labels."""
        return cls("metric_below", threshold, metric, labels, labels if window is None else window, model=model)

    @classmethod
    def metric_above(cls, metric: str, threshold: float, *, labels: int = 200, window: int | None = None,
                     model: str | None = None) -> "Alert":
        """As :meth:`metric_below`, for a figure above ``threshold`` (a loss or an error: log loss, MAE, RMSE)."""
        return cls("metric_above", threshold, metric, labels, labels if window is None else window, model=model)

    @classmethod
    def drift(cls, detector: str = "adwin", *, model: str | None = None) -> "Alert":
        """A detector of :data:`eventml.drift.DETECTORS` fed the model's errors found a rise of the error."""
        return cls("drift", detector=detector, model=model)

    @classmethod
    def lag_above(cls, records: int) -> "Alert":
        """More than ``records`` records of the events topic not read yet, at a commit (live only)."""
        return cls("lag_above", records)

    @classmethod
    def dead_letters_above(cls, count: int, *, per: int = 1000) -> "Alert":
        """More than ``count`` dead letters (of events and labels) over the last ``per`` events (live only)."""
        return cls("dead_letters_above", count, per=per)

    @property
    def name(self) -> str:
        """The rule in the form :func:`parse_alert` reads: the ``rule`` of its records and metrics."""
        at = f"@{self.model}" if self.model else ""
        threshold = _text(self.threshold) if self.threshold is not None else ""
        if self.kind.startswith("metric"):
            window = f":{self.window}" if self.window != self.labels else ""
            sign = "<" if self.kind == "metric_below" else ">"
            return f"{self.metric}{sign}{threshold}:{self.labels}{window}{at}"
        if self.kind == "drift":
            return f"drift:{self.detector}{at}"
        if self.kind == "lag_above":
            return f"lag>{threshold}"
        return f"dead_letters>{threshold}/{self.per}"


def parse_alert(spec: str) -> Alert:
    """An :class:`Alert` from its short form (``eventml live --alert``; see :data:`ALERT_FORMS`).

    Examples
    --------
    >>> parse_alert("accuracy<0.8:200") == Alert.metric_below("accuracy", 0.8, labels=200)
    True
    >>> parse_alert("dead_letters>5/1000").name, parse_alert("lag>1e4").threshold
    ('dead_letters>5/1000', 10000.0)
    >>> parse_alert("accuracy=0.8")
    Traceback (most recent call last):
    ...
    eventml.errors.ConfigError: --alert 'accuracy=0.8' is not an alert rule; accepted forms: ...
    """
    text = spec.strip() if isinstance(spec, str) else ""
    head, _, model = text.partition("@")
    model = model or None
    try:
        if head.startswith("drift:"):
            return Alert.drift(head[len("drift:"):], model=model)
        if head.startswith("lag>") and model is None:
            return Alert.lag_above(_number(head[len("lag>"):], "the bound", spec))
        if head.startswith("dead_letters>") and model is None:
            count, slash, per = head[len("dead_letters>"):].partition("/")
            if slash:
                return Alert.dead_letters_above(_number(count, "the count", spec), per=int(_number(per, "per", spec)))
        for sign, make in (("<", Alert.metric_below), (">", Alert.metric_above)):
            metric, found, rest = head.partition(sign)
            parts = rest.split(":")
            if found and len(parts) in (2, 3):
                numbers = [_number(part, "LABELS/WINDOW", spec) for part in parts[1:]]
                if any(n != int(n) for n in numbers):
                    break
                return make(metric, _number(parts[0], "the threshold", spec), labels=int(numbers[0]),
                            window=int(numbers[1]) if len(numbers) > 1 else None, model=model)
    except ConfigError as error:
        if str(error).startswith("--alert"):
            raise
        raise ConfigError(f"--alert {spec!r}: {error}; accepted forms: " + "; ".join(ALERT_FORMS)) from None
    raise ConfigError(f"--alert {spec!r} is not an alert rule; accepted forms: " + "; ".join(ALERT_FORMS))


def check_alerts(alerts: Any, names: list[str], task: str, *, live: bool = True) -> list[Alert]:
    """The rules as a list (empty for None), checked against the models' ``names`` and ``task``; a
    :class:`~eventml.errors.ConfigError` naming the rule otherwise."""
    from eventml.scoring import check_metrics

    rules = [] if alerts is None else [alerts] if isinstance(alerts, (Alert, str)) else list(alerts)
    for rule in rules:
        if not isinstance(rule, Alert):
            raise ConfigError(f"alerts must be eventml.alerts.Alert rules (e.g. Alert.metric_below('accuracy', 0.8); "
                              f"parse_alert reads the short form), got {rule!r}")
        if rule.model is not None and rule.model not in names:
            raise ConfigError(f"alert {rule.name}: no model {rule.model!r}; models: {', '.join(names)}")
        if rule.metric is not None:
            try:
                check_metrics([rule.metric], task)
            except ConfigError as error:
                raise ConfigError(f"alert {rule.name}: {error}") from None
        if not live and rule.kind in LIVE_ONLY:
            raise ConfigError(f"alert {rule.name} watches a live updater (its lag, its dead letters): offline only "
                              "metric and drift rules")
    if len({rule.name for rule in rules}) != len(rules):
        raise ConfigError(f"alerts must be different rules, got {[rule.name for rule in rules]}")
    return rules


class _Check:
    """One rule's own state: whether it holds, and what it needs to decide."""

    def __init__(self, rule: Alert, names: list[str], classifier: bool):
        self.rule = rule
        self.names = list(names)
        self.fixed = None if rule.model is None else self.names.index(rule.model)
        self.holding = False

    def crossing(self, holds: bool) -> str | None:
        """``firing`` when the rule starts to hold, ``resolved`` when it stops, else None."""
        if holds == self.holding:
            return None
        self.holding = holds
        return "firing" if holds else "resolved"


class _MetricCheck(_Check):
    def __init__(self, rule: Alert, names: list[str], classifier: bool):
        super().__init__(rule, names, classifier)
        self.pairs = [metric_pair(rule.metric, rule.window, None, classifier) for _ in names]
        self.scored = [0] * len(names)
        self.crossed = 0  # consecutive labels with the figure across the threshold

    def label(self, y: Any, predictions: list, champion: int) -> tuple[str, Any, str] | None:
        for i, (pair, predicted) in enumerate(zip(self.pairs, predictions)):
            if predicted is not None:
                y_pred = predicted[1] if pair.wants_proba else predicted[0]
                if y_pred is not None and y_pred != NO_PREDICTION:
                    pair.update(y, y_pred)
                    self.scored[i] += 1
        i = champion if self.fixed is None else self.fixed
        rule = self.rule
        figure = self.pairs[i].get_rolling() if self.scored[i] >= rule.window else None
        across = figure is not None and (figure < rule.threshold if rule.kind == "metric_below"
                                         else figure > rule.threshold)
        self.crossed = self.crossed + 1 if across else 0
        state = self.crossing(self.crossed >= rule.labels)
        return (state, figure, self.names[i]) if state else None


class _DriftCheck(_Check):
    def __init__(self, rule: Alert, names: list[str], classifier: bool):
        from eventml.drift import DriftWatch, make_detector

        super().__init__(rule, names, classifier)
        self.classifier = classifier
        self.watches = [DriftWatch(make_detector(rule.detector), rule.detector) for _ in names]

    def label(self, y: Any, predictions: list, champion: int) -> tuple[str, Any, str] | None:
        from eventml.drift import error_of

        i = champion if self.fixed is None else self.fixed
        fired = None
        for m, (watch, predicted) in enumerate(zip(self.watches, predictions)):
            error = error_of(self.classifier, y, *predicted) if predicted is not None else None
            if error is not None and watch.update(error) and m == i:
                fired = ("firing", getattr(watch.detector, "estimation", None), self.names[i])
        return fired  # it holds at the detection only: never resolved


class _LagCheck(_Check):
    def lag(self, lag: int) -> tuple[str, Any, None] | None:
        state = self.crossing(lag > self.rule.threshold)
        return (state, lag, None) if state else None


class _DeadLetterCheck(_Check):
    def __init__(self, rule: Alert, names: list[str], classifier: bool):
        super().__init__(rule, names, classifier)
        self.recent: collections.deque = collections.deque()  # the events clock of each recent dead letter

    def seen(self, events: int, dead_letter: bool) -> list[tuple[str, Any, None, int]]:
        """The clock is at ``events``; with ``dead_letter`` one more came then. Crossings with the events they
        happened at (the dead letters that left the window left at ``events - per`` exactly)."""
        rule, recent, out = self.rule, self.recent, []
        while recent and recent[0] <= events - rule.per:
            left = recent.popleft()
            if self.holding and len(recent) <= rule.threshold:
                out.append((self.crossing(False), len(recent), None, left + rule.per))
        if dead_letter:
            recent.append(events)
            if len(recent) > rule.threshold and not self.holding:
                out.append((self.crossing(True), len(recent), None, events))
        return out


CHECKS = {"metric_below": _MetricCheck, "metric_above": _MetricCheck, "drift": _DriftCheck, "lag_above": _LagCheck,
          "dead_letters_above": _DeadLetterCheck}


class AlertWatch:
    """The rules of one task and their state (see the module docstring).

    Parameters
    ----------
    rules
        :class:`Alert` rules, checked with :func:`check_alerts`.
    names
        The models' names, in their order.
    classifier
        Whether the models are classifiers.

    Attributes
    ----------
    labels
        Labels scored so far.
    alerts
        The last :data:`KEEP_ALERTS` alert records, as the methods returned them.
    fired
        Each rule's name and the alerts it fired so far (records with ``state`` ``firing``).
    """

    def __init__(self, rules: list[Alert], names: list[str], classifier: bool = True):
        self.rules = list(rules)
        self.labels = 0
        self.alerts: collections.deque = collections.deque(maxlen=KEEP_ALERTS)
        self.fired: collections.Counter = collections.Counter()
        self._checks = [CHECKS[rule.kind](rule, names, classifier) for rule in self.rules]
        self._sort()

    @classmethod
    def resume(cls, committed: "AlertWatch | None", rules: list[Alert], names: list[str],
               classifier: bool) -> "AlertWatch | None":
        """The watch of ``rules`` for a task: the committed one's state for the rules it had, a fresh state for
        new rules (rules no longer given are dropped); None without rules."""
        if not rules:
            return None
        watch = cls(rules, names, classifier)
        if committed is not None:
            kept = {check.rule: check for check in committed._checks}
            watch._checks = [kept.get(check.rule, check) for check in watch._checks]
            watch._sort()
            watch.labels, watch.alerts, watch.fired = committed.labels, committed.alerts, committed.fired
        return watch

    def _sort(self) -> None:
        """Which checks are told of labels, lags and dead letters."""
        self._scoring = [c for c in self._checks if hasattr(c, "label")]
        self._lags = [c for c in self._checks if isinstance(c, _LagCheck)]
        self._dead = [c for c in self._checks if isinstance(c, _DeadLetterCheck)]

    @property
    def watches_lag(self) -> bool:
        """Whether a rule watches the lag (checked at each commit)."""
        return bool(self._lags)

    @property
    def watches_dead_letters(self) -> bool:
        """Whether a rule watches the dead letters."""
        return bool(self._dead)

    def holding(self) -> dict[str, bool]:
        """Each rule's name and whether it holds now (a drift rule holds at its detection only)."""
        return {check.rule.name: check.holding for check in self._checks}

    def counts(self) -> dict[str, int]:
        """Each rule's name and the alerts it fired so far."""
        fired = dict(self.fired)
        return {rule.name: fired.get(rule.name, 0) for rule in self.rules}

    def _record(self, check: _Check, outcome: tuple, events: int) -> dict[str, Any]:
        state, value, model = outcome[:3]
        rule = check.rule
        alert = {"events": outcome[3] if len(outcome) > 3 else events, "labels": self.labels, "rule": rule.name,
                 "state": state, "model": model, "value": value, "threshold": rule.threshold, "kind": rule.kind}
        self.alerts.append(alert)
        if state == "firing":
            self.fired[rule.name] += 1
        return alert

    def scored(self, y: Any, predictions: list, champion: int, events: int) -> list[dict[str, Any]]:
        """One label: each model's prediction ``(label, proba)`` (None for a model that has none), the champion's
        index and the events seen so far; returns the alerts it fires or resolves."""
        self.labels += 1
        out = []
        for check in self._scoring:
            outcome = check.label(y, predictions, champion)
            if outcome is not None:
                out.append(self._record(check, outcome, events))
        return out

    def lag(self, lag: int | None, events: int) -> list[dict[str, Any]]:
        """The lag at a commit (None: not known yet, nothing decided)."""
        if lag is None:
            return []
        return [self._record(check, outcome, events) for check in self._lags
                for outcome in [check.lag(lag)] if outcome is not None]

    def dead_letters(self, events: int, dead_letter: bool = False) -> list[dict[str, Any]]:
        """``events`` seen so far, and with ``dead_letter`` one dead letter at that point."""
        return [self._record(check, outcome, events) for check in self._dead
                for outcome in check.seen(events, dead_letter)]


def alert_table(alerts: Any) -> Any:
    """The alerts as a DataFrame, one row each: ``events`` (events seen when it was decided), ``labels``
    (labels scored by then), ``rule`` (its short form), ``state`` (``firing`` or ``resolved``), ``model`` (the
    model a metric or drift rule watched), ``value`` (the figure that decided: the rolling metric, the
    detector's mean error, the lag, the dead letters in the window) and ``threshold``, then whatever else the
    records carry (a live alert's ``kind``, ``id``, ``topic``, ``partition``, ``offset`` and ``ts``).

    ``alerts`` is a list of alert records (:attr:`AlertWatch.alerts`, :meth:`eventml.live.LiveUpdater.alerts`,
    what :func:`read_alerts` reads) or a result table of :func:`eventml.prequential` run with ``alerts=``
    (its rows with ``alert``).

    Examples
    --------
    >>> print(alert_table([{"events": 40, "labels": 30, "rule": "accuracy<0.8:20", "state": "firing",
    ...                     "model": "a", "value": 0.75, "threshold": 0.8}]).to_string(index=False))
     events  labels            rule  state model  value  threshold
         40      30 accuracy<0.8:20 firing     a   0.75        0.8
    """
    import pandas as pd

    if isinstance(alerts, pd.DataFrame):
        if "alert" not in alerts:
            raise ConfigError("alert_table needs a prequential result run with alerts= (an alert column) or a list "
                              "of alert records")
        rows = alerts[alerts["alert"].notna()]
        return pd.DataFrame({"events": rows["alert_events"].astype(int), "labels": rows["step"].astype(int),
                             "rule": rows["alert"], "state": rows["alert_state"], "model": rows["alert_model"],
                             "value": rows["alert_value"], "threshold": rows["alert_threshold"]},
                            columns=ALERT_COLUMNS).reset_index(drop=True)
    rows = list(alerts)
    extra = list(dict.fromkeys(k for row in rows for k in row if k not in ALERT_COLUMNS))  # a lag alert has no offset
    return pd.DataFrame(rows, columns=ALERT_COLUMNS + extra)


def read_alerts(predictions_topic: str, *, bootstrap_servers: str | None = None, kafka: Any = None,
                idle_timeout_s: float = 2.0, **config: Any) -> Any:
    """A live updater's committed alerts (``<predictions_topic>.alerts``), one row each, as :func:`alert_table`
    gives them, with the position of the record that decided (``id``, ``topic``, ``partition``, ``offset``;
    none for a lag alert) and when (``ts``). Takes the connection settings as :func:`eventml.consume` does."""
    import orjson

    from eventml.consumer import replay

    with replay(alerts_topic(predictions_topic), bootstrap_servers=bootstrap_servers, kafka=kafka,
                idle_timeout_s=idle_timeout_s, decode=lambda raw, ts: orjson.loads(raw), dead_letters=False,
                isolation_level="read_committed", **config) as consumer:
        return alert_table([record for record, _ in consumer.records()])

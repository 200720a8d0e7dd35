"""What a live updater keeps: its state (in every snapshot) and its identity (``updater.json``).

The state holds only public, stable eventml types, so a snapshot outlives a refactoring: per model
(:class:`ModelState`) a :class:`~eventml.scoring.Scorer` (the learner and its metrics), its
:class:`~eventml.labels.PendingLabels` join and its counters; for the task, the
:class:`~eventml.promotion.Champion` (which model answers, and the figures of its rule), counters, the
summary rows, the next offset of every input partition and, beside the models, the state of the
windowed features (:class:`~eventml.windows.WindowedFeatures`, or None) and of the alert rules
(:class:`~eventml.alerts.AlertWatch`, or None). One model is the case of a list of one.

Examples
--------
>>> from eventml.learners import make_learner
>>> state = UpdaterState.fresh([make_learner("river_gnb")], ["accuracy"], rolling_window=100)
>>> state.counts["events"], len(state.pending), state.scorer.learner.name, state.champion.name
(0, 0, 'river_gnb', 'river_gnb')
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import uuid
from pathlib import Path
from typing import Any

from eventml.errors import ConfigError, SnapshotError
from eventml.labels import PendingLabels
from eventml.learners.base import CLASSIFICATION
from eventml.promotion import Champion, Promotion
from eventml.scoring import Scorer
from eventml.windows import windowed

__all__ = ["ModelState", "UpdaterState", "check_resumable", "check_topics", "live_metrics", "read_identity"]

IDENTITY_FILE = "updater.json"


@dataclasses.dataclass
class ModelState:
    """One model of a task: its learner and metrics, its label join and its counters.

    ``counts`` has ``events`` (its predictions published), ``learned`` (its version) and ``model_errors``;
    what happened to its late labels is in ``pending.counts``.
    """

    scorer: Scorer
    pending: PendingLabels
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    newest_ts: float = float("-inf")  # the newest event time it kept, the clock of label expiry

    @property
    def name(self) -> str:
        """The model's name (its learner's), unique in its task."""
        return self.scorer.learner.name


@dataclasses.dataclass
class UpdaterState:
    """Everything needed to resume exactly where the last commit left off.

    ``models`` holds each model's :class:`ModelState`, in the order given; ``champion`` says which one
    answers. ``counts`` has the task's ``events`` (the champion's predictions published), ``dead_letters``,
    ``model_errors`` (of every model) and ``restarts``. :attr:`scorer`, :attr:`pending` and
    :attr:`learned` are the champion's.
    """

    models: list[ModelState]
    champion: Champion
    offsets: dict[str, int]
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    dlq_reasons: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    rows: list = dataclasses.field(default_factory=list)
    sequence: int = 0  # the number of the last committed transaction
    seen: int = 0  # events decoded, the clock of the promotions
    windows: Any = None  # the windowed features' WindowedFeatures (None without windows)
    alerts: Any = None  # the alert rules' eventml.alerts.AlertWatch (None without rules)

    @classmethod
    def fresh(cls, learners: list[Any], metrics: list[str], rolling_window: int, max_wait: float | None = None,
              max_pending: int | None = None, offsets: dict[str, int] | None = None,
              promotion: Promotion | None = None, windows: Any = None) -> "UpdaterState":
        """A new state: a fresh clone of each learner (or of the one learner given), nothing read, nothing
        pending, the first the champion, empty ``windows``."""
        if not isinstance(learners, (list, tuple)):
            learners = [learners]
        models = [ModelState(Scorer(learner.clone(), metrics, rolling_window), PendingLabels(max_wait, max_pending))
                  for learner in learners]
        champion = Champion([model.name for model in models], promotion,
                            classifier=learners[0].task == CLASSIFICATION)
        return cls(models, champion, dict(offsets or {}), windows=windowed(windows))

    @property
    def model(self) -> ModelState:
        """The champion's :class:`ModelState`."""
        return self.models[self.champion.index]

    @property
    def scorer(self) -> Scorer:
        """The champion's learner and metrics."""
        return self.models[self.champion.index].scorer

    @property
    def pending(self) -> PendingLabels:
        """The champion's label join."""
        return self.models[self.champion.index].pending

    @property
    def learned(self) -> int:
        """The labels the champion learned from (its ``model_version``)."""
        return self.models[self.champion.index].counts["learned"]


def check_topics(events_topic: str, predictions_topic: str, labels_topic: str | None) -> None:
    """Refuse, with a :class:`~eventml.errors.ConfigError`, an updater whose topics are not distinct."""
    if labels_topic is not None and labels_topic == events_topic:
        raise ConfigError("labels_topic must differ from events_topic (labels inside events need no topic)")
    if predictions_topic in (events_topic, labels_topic):
        raise ConfigError("predictions_topic must differ from the input topics")


def check_resumable(state: "UpdaterState", names: list[str], promotion: Any, windows: Any, task: str,
                    advice: str) -> None:
    """Refuse, with a :class:`~eventml.errors.ConfigError`, a committed state made for other models (``names``), another
    promotion rule or other windowed features (a :class:`~eventml.windows.WindowedFeatures` or None) than the updater
    was given; ``advice`` says what to do instead."""
    features = (lambda windows: [] if windows is None else windows.names)
    committed = [model.name for model in state.models]
    if committed != names:
        refusal = f"learns {', '.join(committed)}, not {', '.join(names)}"
    elif state.champion.rule != promotion:
        refusal = f"promotes by {state.champion.rule}, not {promotion}"
    elif features(state.windows) != features(windows):
        refusal = f"computes the windowed features {features(state.windows)}, not {features(windows)}"
    else:
        return
    raise ConfigError(f"the committed state of {task} {refusal}; {advice}")


def live_metrics(learner: Any) -> list[str]:
    """The metrics a live updater keeps: accuracy and log loss for a classifier, MAE for a regressor
    (the first is the one its :class:`~eventml.live.LiveStats` report)."""
    return ["accuracy", "log_loss"] if learner.task == CLASSIFICATION else ["mae"]


def read_identity(state_dir: Path, wanted: dict[str, Any], name: str | None) -> str:
    """Read or create ``updater.json``: the name behind the updater's consumer group and transactional id.

    ``wanted`` (topics and model) must match what the folder was made for, so a state directory
    is never resumed by a different updater.
    """
    path = state_dir / IDENTITY_FILE
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SnapshotError(f"{path} is unreadable ({exc}); it names this updater's Kafka ids") from None
        different = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
        if different:
            text = "; ".join(f"{k} was {old!r}, now {new!r}" for k, (old, new) in different.items())
            raise ConfigError(f"state_dir {state_dir} belongs to another live updater ({text}); "
                              "use a new state_dir to start over")
        if name is not None and name != saved["name"]:
            raise ConfigError(f"state_dir {state_dir} belongs to updater {saved['name']!r}, not {name!r}")
        return saved["name"]
    name = name or f"{state_dir.resolve().name}-{uuid.uuid4().hex[:8]}"
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"name": name, **wanted}, indent=1))
    os.replace(tmp, path)
    return name

"""What a live updater keeps: its state (in every snapshot) and its identity (``updater.json``).

The state holds only public, stable eventml types, so a snapshot outlives a refactoring: a
:class:`~eventml.scoring.Scorer` (the learner and its metrics), the
:class:`~eventml.labels.PendingLabels` join, counters, the summary rows, the next offset of
every input partition and, beside the model, the state of the windowed features
(:class:`~eventml.windows.WindowedFeatures`, or None).

Examples
--------
>>> from eventml.learners import make_learner
>>> state = UpdaterState.fresh(make_learner("river_gnb"), ["accuracy"], rolling_window=100)
>>> state.counts["events"], len(state.pending), state.scorer.learner.name
(0, 0, 'river_gnb')
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
from eventml.scoring import Scorer
from eventml.windows import windowed

__all__ = ["UpdaterState", "check_topics", "check_windows", "live_metrics", "read_identity"]

IDENTITY_FILE = "updater.json"


@dataclasses.dataclass
class UpdaterState:
    """Everything needed to resume exactly where the last commit left off.

    ``counts`` has ``events`` (predicted), ``learned``, ``dead_letters``, ``model_errors`` and
    ``restarts``; what happened to late labels is in ``pending.counts``.
    """

    scorer: Scorer
    offsets: dict[str, int]
    pending: PendingLabels
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    dlq_reasons: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    rows: list = dataclasses.field(default_factory=list)
    sequence: int = 0  # the number of the last committed transaction
    newest_ts: float = float("-inf")  # the newest event time seen, the clock of label expiry
    windows: Any = None  # the windowed features' WindowedFeatures (None without windows; also in older snapshots)

    @classmethod
    def fresh(cls, learner: Any, metrics: list[str], rolling_window: int, max_wait: float | None = None,
              max_pending: int | None = None, offsets: dict[str, int] | None = None,
              windows: Any = None) -> "UpdaterState":
        """A new state: a fresh clone of ``learner``, nothing read, nothing pending, empty ``windows``."""
        return cls(Scorer(learner.clone(), metrics, rolling_window), dict(offsets or {}),
                   PendingLabels(max_wait, max_pending), windows=windowed(windows))


def check_topics(events_topic: str, predictions_topic: str, labels_topic: str | None) -> None:
    """Refuse, with a :class:`~eventml.errors.ConfigError`, an updater whose topics are not distinct."""
    if labels_topic is not None and labels_topic == events_topic:
        raise ConfigError("labels_topic must differ from events_topic (labels inside events need no topic)")
    if predictions_topic in (events_topic, labels_topic):
        raise ConfigError("predictions_topic must differ from the input topics")


def check_windows(committed: Any, wanted: Any, task: str, advice: str) -> None:
    """Refuse, with a :class:`~eventml.errors.ConfigError`, a committed state whose windowed features
    (a :class:`~eventml.windows.WindowedFeatures` or None) are not the ones the updater was given."""
    names = (lambda features: [] if features is None else features.names)
    if names(committed) != names(wanted):
        raise ConfigError(f"the committed state of {task} computes the windowed features {names(committed)}, not "
                          f"{names(wanted)}; {advice}")


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

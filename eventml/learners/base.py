"""What every eventml learner is: a name, a task, and river's online methods."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["CLASSIFICATION", "REGRESSION", "Learner"]

CLASSIFICATION = "classification"
REGRESSION = "regression"


@runtime_checkable
class Learner(Protocol):
    """What every eventml learner offers (river's online protocol plus a name and a task)."""

    name: str
    task: str

    def predict_proba_one(self, x: dict) -> dict: ...

    def predict_one(self, x: dict) -> Any: ...

    def learn_one(self, x: dict, y: Any) -> None: ...

    def clone(self) -> "Learner": ...

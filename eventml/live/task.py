"""A task of the live engine: an events partition (or all of them) with its labels, their merge, its
processor and its state (see :mod:`eventml.live.engine`)."""

from __future__ import annotations

from typing import Any

from eventml.live.merge import InputPartition

__all__ = ["Task"]


class Task:
    """One task: its input partitions and their merge, its processor and its state.

    ``number`` is its events partition (0 for a task over every partition), which is also its
    partition of a state topic; ``key`` names it in the state (``"<events topic>:<partition>"``,
    or ``"global"``).
    """

    __slots__ = ("number", "key", "inputs", "merge", "state", "processor", "taken")

    def __init__(self, number: int, key: str, inputs: list[InputPartition]):
        self.number, self.key, self.inputs = number, key, inputs
        self.merge: Any = None  # a PartitionMerge, an UpdaterState and a RecordProcessor once restored
        self.state: Any = None
        self.processor: Any = None
        self.taken: list = []  # (input partition, records) runs taken since its last commit, in order

    @property
    def dirty(self) -> bool:
        """It processed records in the open transaction."""
        return bool(self.taken)

    def give_back(self) -> None:
        """Put the records taken since the last commit back in front of their partitions' buffers, in their
        order, as if they had not been taken (see :meth:`eventml.live.assignment.GroupAssignment.rewind`)."""
        for where, records in reversed(self.taken):
            where.buf.extendleft(reversed(records))
        self.taken = []

    def __repr__(self) -> str:
        return f"Task({self.key!r}, {self.inputs})"

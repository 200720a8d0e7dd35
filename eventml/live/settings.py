"""The settings every live updater takes, in every mode, validated once.

Examples
--------
>>> LiveSettings(records_per_transaction=500).transaction_interval_s
0.5
>>> LiveSettings(max_pending=0)
Traceback (most recent call last):
...
eventml.errors.ConfigError: max_pending must be a positive integer, got 0
"""

from __future__ import annotations

import dataclasses

from eventml.validation import int_in_range, positive_int, positive_number

__all__ = ["LiveSettings"]


@dataclasses.dataclass(frozen=True)
class LiveSettings:
    """How a live updater runs (see :class:`~eventml.live.LiveUpdater` for each one's meaning).

    ``transaction_timeout_s`` None leaves librdkafka's (60 s); a group member defaults to 10 s, so a
    killed member's transaction, which holds its partitions' offsets, is aborted sooner.
    ``session_timeout_s`` only matters in a group.
    """

    max_events: int | None = None
    idle_timeout_s: float | None = None
    records_per_transaction: int = 10_000
    transaction_interval_s: float = 0.5
    label_ttl_s: float | None = None
    max_pending: int = 100_000
    rolling_window: int = 500
    reconnect_timeout_s: float = 60.0
    session_timeout_s: float = 10.0
    transaction_timeout_s: float | None = None
    summary_every: int = 1000

    def __post_init__(self) -> None:
        checked = {
            "max_events": int_in_range("max_events", self.max_events, 0, allow_none=True),
            "idle_timeout_s": positive_number("idle_timeout_s", self.idle_timeout_s, allow_none=True),
            "records_per_transaction": positive_int("records_per_transaction", self.records_per_transaction),
            "transaction_interval_s": positive_number("transaction_interval_s", self.transaction_interval_s),
            "label_ttl_s": positive_number("label_ttl_s", self.label_ttl_s, allow_none=True),
            "max_pending": positive_int("max_pending", self.max_pending),
            "rolling_window": positive_int("rolling_window", self.rolling_window),
            "reconnect_timeout_s": positive_number("reconnect_timeout_s", self.reconnect_timeout_s),
            "session_timeout_s": positive_number("session_timeout_s", self.session_timeout_s),
            "transaction_timeout_s": positive_number("transaction_timeout_s", self.transaction_timeout_s,
                                                     allow_none=True),
            "summary_every": positive_int("summary_every", self.summary_every),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

"""Running an updater in a background thread: :meth:`start`, :meth:`stop`, :meth:`join`.

Shared by :class:`~eventml.live.LiveUpdater` and :class:`~eventml.live.group.GroupUpdater`: the
updater's ``run()`` goes on in a daemon thread, checks :attr:`stopping` between records, and an
error it raised is raised again by :meth:`join`.
"""

from __future__ import annotations

import threading
from typing import Any

from eventml.errors import EventmlError

__all__ = ["BackgroundRun"]


class BackgroundRun:
    """A mixin for a class with ``run()``, ``name`` and ``_result()`` (what :meth:`join` returns).

    Examples
    --------
    >>> class Counter(BackgroundRun):
    ...     name = "counter"
    ...     def run(self):
    ...         self.n = 0
    ...         while not self.stopping.is_set():
    ...             self.n += 1
    ...     def _result(self):
    ...         return self.n > 0
    >>> counter = Counter().start()
    >>> counter.stop()
    >>> counter.join(5)
    True
    """

    _thread: threading.Thread | None = None
    _error: BaseException | None = None

    @property
    def stopping(self) -> threading.Event:
        """Set by :meth:`stop`; the run ends once it sees it."""
        if "_stopping" not in self.__dict__:
            self._stopping = threading.Event()
        return self._stopping

    def start(self) -> Any:
        """Run in a background thread; see :meth:`stop` and :meth:`join`."""
        if self.running:
            raise EventmlError(f"{type(self).__name__} {self.name!r} is already running")
        self.stopping.clear()
        self._error = None

        def target() -> None:
            try:
                self.run()
            except BaseException as exc:  # handed to join()
                self._error = exc

        self._thread = threading.Thread(target=target, name=f"eventml-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the run to end after the current record; the open transaction is committed."""
        self.stopping.set()

    def join(self, timeout_s: float | None = None) -> Any:
        """Wait for a background run to end; re-raise its error, if any."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._result()

    @property
    def running(self) -> bool:
        """True while a background run goes on."""
        return self._thread is not None and self._thread.is_alive()

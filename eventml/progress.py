"""A tqdm progress bar that costs next to nothing per event.

tqdm's own ``update`` per event would cost more than encoding the event, so :class:`progress_bar`
counts locally and updates the bar every ``every`` events. ``tqdm.auto`` draws a widget in
JupyterLab and text in a terminal. A finished bar stays, showing its final count, rate and time, as
a record of what ran; give ``total`` whenever it is known, so the bar shows how far along it is.

Examples
--------
>>> with progress_bar(total=3, enabled=False) as bar:
...     for _ in range(3):
...         bar.tick()
>>> bar.count
3
"""

from __future__ import annotations


class progress_bar:
    """Count events and show them on a tqdm bar (or count silently if not ``enabled``)."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "ev",
                 enabled: bool = True, every: int = 1000):
        self.count = 0
        self._every = every
        self._shown = 0
        self._bar = None
        if enabled:  # tqdm only then (``eventml live --quiet`` need not import it)
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=True)

    def tick(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None and self.count - self._shown >= self._every:
            self._bar.update(self.count - self._shown)
            self._shown = self.count

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self.count - self._shown)
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "progress_bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Parameter checks shared by every module: one sentence that names the parameter and what it accepts.

Each check returns the value it accepted (converted where it says so), so a constructor reads
``self.window = positive_int("window", window, allow_none=True)``, and raises ``error``
(:class:`~eventml.errors.ConfigError` unless told otherwise, e.g. ``error=SourceError``)
with a message of the form ``"<name> must be <what it accepts>, got <value>"`` or
``"unknown <name> <value>; known <names>: a, b, c"``.

Booleans are never numbers here (``True`` is not a count of 1), numpy integers and floats are.

Examples
--------
>>> positive_int("every", 1000)
1000
>>> try:
...     positive_int("every", 0)
... except ValueError as error:
...     print(error)
every must be a positive integer, got 0
"""

from __future__ import annotations

import datetime as dt
import numbers
from collections.abc import Collection, Iterable
from typing import Any

from eventml.errors import ConfigError

__all__ = [
    "is_int",
    "is_number",
    "positive_int",
    "int_in_range",
    "positive_number",
    "non_negative_seconds",
    "fraction",
    "one_of",
    "subset_of",
]

Error = type[Exception]


def is_int(value: Any) -> bool:
    """True for an integer (numpy's too), False for a boolean or anything else.

    Examples
    --------
    >>> import numpy as np
    >>> print(is_int(3), is_int(np.int64(3)), is_int(True), is_int(3.0))
    True True False False
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """True for a real number (int, float, numpy's), False for a boolean or anything else.

    Examples
    --------
    >>> print(is_number(0.5), is_number(2), is_number(False), is_number("1"))
    True True False False
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _or_none(allow_none: bool) -> str:
    return " or None" if allow_none else ""


def positive_int(name: str, value: Any, *, allow_none: bool = False, error: Error = ConfigError) -> Any:
    """``value`` as an ``int`` if it is an integer >= 1 (or None, when allowed).

    Parameters
    ----------
    name
        The parameter's name, as the user wrote it.
    value
        What the user gave.
    allow_none
        Accept ``None`` (returned as it is), e.g. for "no limit".
    error
        The exception class to raise.

    Raises
    ------
    ConfigError
        (or ``error``) ``"<name> must be a positive integer[ or None], got <value>"``.

    Examples
    --------
    >>> print(positive_int("window", None, allow_none=True))
    None
    >>> try:
    ...     positive_int("window", 2.5, allow_none=True)
    ... except ValueError as error:
    ...     print(error)
    window must be a positive integer or None, got 2.5
    """
    if value is None and allow_none:
        return None
    if is_int(value) and value >= 1:
        return int(value)
    raise error(f"{name} must be a positive integer{_or_none(allow_none)}, got {value!r}")


def int_in_range(name: str, value: Any, low: int, high: int | None = None, *, allow_none: bool = False,
                 why: str = "", error: Error = ConfigError) -> Any:
    """``value`` as an ``int`` if it is an integer from ``low`` to ``high`` (both included; no upper
    bound when ``high`` is None), or None when allowed.

    Parameters
    ----------
    name, value, allow_none, error
        As in :func:`positive_int`.
    low, high
        The accepted integers.
    why
        Words that say where the bounds come from, put after them in the message.

    Raises
    ------
    ConfigError
        (or ``error``) ``"<name> must be an integer >= <low>, got <value>"`` or
        ``"<name> must be an integer from <low> to <high> <why>[ or None], got <value>"``.

    Examples
    --------
    >>> try:
    ...     int_in_range("n_events", 151, 1, 150, why="(the size of 'iris')")
    ... except ValueError as error:
    ...     print(error)
    n_events must be an integer from 1 to 150 (the size of 'iris'), got 151
    """
    if value is None and allow_none:
        return None
    if is_int(value) and value >= low and (high is None or value <= high):
        return int(value)
    accepted = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
    accepted += f" {why}" if why else ""
    raise error(f"{name} must be {accepted}{_or_none(allow_none)}, got {value!r}")


def positive_number(name: str, value: Any, *, allow_none: bool = False, unit: str = "",
                    error: Error = ConfigError) -> Any:
    """``value`` if it is a number > 0 (not NaN), or None when allowed; returned as it is.

    Parameters
    ----------
    name, value, allow_none, error
        As in :func:`positive_int`.
    unit
        What the number counts, for the message (``"seconds"``, ``"events per second"``).

    Raises
    ------
    ConfigError
        (or ``error``) ``"<name> must be a positive number[ of <unit>][ or None], got <value>"``.

    Examples
    --------
    >>> try:
    ...     positive_number("rate", float("nan"), allow_none=True, unit="events per second")
    ... except ValueError as error:
    ...     print(error)
    rate must be a positive number of events per second or None, got nan
    """
    if value is None and allow_none:
        return None
    if is_number(value) and value > 0:
        return value
    of = f" of {unit}" if unit else ""
    raise error(f"{name} must be a positive number{of}{_or_none(allow_none)}, got {value!r}")


def non_negative_seconds(name: str, value: Any, *, allow_none: bool = False, error: Error = ConfigError) -> Any:
    """A duration in seconds >= 0 from a number (returned as it is: an ``int`` stays an ``int``) or a
    :class:`datetime.timedelta` (returned as ``float`` seconds); None when allowed.

    Raises
    ------
    ConfigError
        (or ``error``) ``"<name> must be a number >= 0 or a datetime.timedelta[ or None], got <value>"``.

    Examples
    --------
    >>> import datetime as dt
    >>> print(non_negative_seconds("max_wait", dt.timedelta(minutes=2)), non_negative_seconds("max_wait", 5))
    120.0 5
    >>> try:
    ...     non_negative_seconds("delay", -dt.timedelta(seconds=90))
    ... except ValueError as error:
    ...     print(error)
    delay must be a number >= 0 or a datetime.timedelta, got datetime.timedelta(days=-1, seconds=86310) (-90 s)
    """
    if value is None and allow_none:
        return None
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else value
    if is_number(seconds) and seconds >= 0:
        return seconds
    shown = f"{value!r} ({seconds:g} s)" if isinstance(value, dt.timedelta) else repr(value)
    raise error(f"{name} must be a number >= 0 or a datetime.timedelta{_or_none(allow_none)}, got {shown}")


def fraction(name: str, value: Any, *, what: str = "a share", error: Error = ConfigError) -> Any:
    """``value`` if it is a number from 0 to 1 (both included), returned as it is.

    Parameters
    ----------
    name, value, error
        As in :func:`positive_int`.
    what
        What the number is, for the message (``"a share"``, ``"a probability"``).

    Raises
    ------
    ConfigError
        (or ``error``) ``"<name> must be <what> from 0 to 1, got <value>"``.

    Examples
    --------
    >>> try:
    ...     fraction("loss", 1.5)
    ... except ValueError as error:
    ...     print(error)
    loss must be a share from 0 to 1, got 1.5
    """
    if is_number(value) and 0 <= value <= 1:
        return value
    raise error(f"{name} must be {what} from 0 to 1, got {value!r}")


def _accepts(value: Any, accepted: Any) -> bool:
    try:
        return bool(value in accepted)
    except (TypeError, ValueError):  # unhashable (asked of a dict), or an array compared elementwise
        return False


def _listing(accepted: Collection[Any], known: str) -> str:
    """``"known <known>: a, b"`` (names, sorted) or ``"accepted: None, 'a'"`` (other values, in order)."""
    values = list(accepted)
    if all(isinstance(v, str) for v in values):
        return f"known {known}: {', '.join(sorted(values))}"
    return f"accepted: {', '.join(map(repr, values))}"


def one_of(name: str, value: Any, accepted: Collection[Any], *, plural: str | None = None, note: str = "",
           error: Error = ConfigError) -> Any:
    """``value`` if it is one of ``accepted`` (a registry's names, or a tuple of values).

    Parameters
    ----------
    name
        What the value names, as a noun: ``"learner"``, ``"on_drift policy"``.
    value
        What the user gave.
    accepted
        The accepted values. Names (strings only) are listed sorted, after ``"known <plural>:"``;
        other values (``None``, ...) are listed as written, in order, after ``"accepted:"``.
    plural
        The plural of ``name`` in the message; ``name + "s"`` by default.
    note
        Words added at the end of the message (start them with a space).
    error
        The exception class to raise.

    Raises
    ------
    ConfigError
        (or ``error``) ``"unknown <name> <value>; known <plural>: a, b, c<note>"``, or
        ``"unknown <name> <value>; accepted: None, 'a'<note>"``.

    Examples
    --------
    >>> try:
    ...     one_of("learner", "river_svm", {"river_gnb": ..., "river_arf": ...})
    ... except ValueError as error:
    ...     print(error)
    unknown learner 'river_svm'; known learners: river_arf, river_gnb
    >>> try:
    ...     one_of("on_drift policy", "retrain", (None, "reset", "refit"))
    ... except ValueError as error:
    ...     print(error)
    unknown on_drift policy 'retrain'; accepted: None, 'reset', 'refit'
    """
    if _accepts(value, accepted):
        return value
    raise error(f"unknown {name} {value!r}; {_listing(accepted, plural or name + 's')}{note}")


def subset_of(name: str, values: Iterable[Any], accepted: Collection[Any], *, plural: str | None = None,
              note: str = "", error: Error = ConfigError) -> list[Any]:
    """``values`` as a list if each of them is one of ``accepted``; else one error naming all the
    unknown ones.

    Parameters
    ----------
    name, accepted, plural, note, error
        As in :func:`one_of`.
    values
        What the user gave: several values.

    Raises
    ------
    ConfigError
        (or ``error``) ``"unknown <name>(s) 'x', 'y'; known <plural>: a, b, c<note>"``.

    Examples
    --------
    >>> try:
    ...     subset_of("metric", ["accuracy", "auc", "rsme"], ["accuracy", "f1", "rmse"])
    ... except ValueError as error:
    ...     print(error)
    unknown metric(s) 'auc', 'rsme'; known metrics: accuracy, f1, rmse
    """
    values = list(values)
    unknown = [v for v in values if not _accepts(v, accepted)]
    if unknown:
        raise error(f"unknown {name}(s) {', '.join(map(repr, unknown))}; "
                    f"{_listing(accepted, plural or name + 's')}{note}")
    return values

"""Names of a package imported on first use: the one loader eventml's packages share.

A package lists where each of its names lives; the module behind a name is imported the first time
the name is used, so that a command needing one part (``eventml live``) does not pay for the others
(river's datasets, scikit-learn, matplotlib, pandas). After that first use the name is a plain
attribute of the package.

Examples
--------
>>> import sys, types
>>> package = sys.modules["demo"] = types.ModuleType("demo")
>>> package.__getattr__, package.__dir__ = attach("demo", {"dumps": "json"}, moved={"loads": "json"})
>>> package.dumps([1])
'[1]'
>>> package.loads
Traceback (most recent call last):
...
AttributeError: demo.loads moved: use json.loads
>>> del sys.modules["demo"]
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["attach"]


def attach(package: str, names: Mapping[str, str], *, moved: Mapping[str, str] | None = None,
           submodules: bool = False) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` whose ``names`` (name -> module) load lazily.

    Parameters
    ----------
    package
        The package's ``__name__``.
    names
        Each lazy name and the module it is imported from.
    moved
        Names that used to be here, and the module to use instead: asking for one raises an
        ``AttributeError`` that names the new place.
    submodules
        Whether any other name is tried as a module of the package (``em.events`` imports
        :mod:`eventml.events`).
    """
    moved = dict(moved or {})

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            if name in moved:
                raise AttributeError(f"{package}.{name} moved: use {moved[name]}.{name}")
            if submodules:
                try:
                    return importlib.import_module(f"{package}.{name}")
                except ModuleNotFoundError as exc:
                    if exc.name != f"{package}.{name}":
                        raise
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next use is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return __getattr__, __dir__

"""Names of a package imported on first use: the one loader eventml's packages share.

A package lists where each of its names lives; the module behind a name is imported the first time
the name is used, so that a command needing one part (``eventml live``) does not pay for the others
(river's datasets, scikit-learn, matplotlib, pandas). After that first use the name is a plain
attribute of the package. :func:`defer_package_inits` does the same for another library's
subpackages (river's, in ``eventml live``).

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
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["attach", "defer_package_inits"]


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


class _InitOnFirstName(importlib.abc.Loader):
    """Loads a package without running its ``__init__``; the first name asked of it that is not one of its
    modules runs it (see :func:`defer_package_inits`)."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec: Any) -> None:
        return None  # the default module

    def exec_module(self, module: Any) -> None:
        loader, lock = self.loader, threading.RLock()

        def __getattr__(name: str) -> Any:
            with lock:
                if module.__dict__.get("__getattr__") is not __getattr__:  # run meanwhile by another thread
                    return getattr(module, name)
                if name.startswith("__") and name != "__all__":
                    raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
                submodule = f"{module.__name__}.{name}"
                if importlib.machinery.PathFinder.find_spec(submodule, module.__path__) is not None:
                    return importlib.import_module(submodule)  # what the package's __init__ would import
                del module.__getattr__
                module.__loader__ = module.__spec__.loader = loader
                loader.exec_module(module)
                return getattr(module, name)

        module.__getattr__ = __getattr__


class _DeferredInits(importlib.abc.MetaPathFinder):
    def __init__(self, top: str):
        self.prefix = top + "."

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if not name.startswith(self.prefix):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.submodule_search_locations is not None and spec.loader is not None:
            spec.loader = _InitOnFirstName(spec.loader)
        return spec


def defer_package_inits(top: str) -> None:
    """From now on, a subpackage of ``top`` imported for one of its modules runs its ``__init__`` only when
    a name that is not one of its modules is first asked of it.

    For a process that needs a few modules of a library whose subpackages import everything they hold:
    unpickling a river pipeline imports ``river.preprocessing.scale``, and ``river.preprocessing``'s
    ``__init__`` imports river's datasets, scikit-learn and pandas (half a second on a 2-core machine)
    for it. ``eventml live`` calls it for river before it loads a model. Modules imported before the
    call are left as they are; a second call for the same ``top`` does nothing.

    Examples
    --------
    In a new process:

    >>> import subprocess, sys
    >>> code = '''
    ... import sys
    ... from eventml.lazy import defer_package_inits
    ... defer_package_inits("river")
    ... from river.preprocessing.scale import StandardScaler
    ... print("river.preprocessing.gap_encoder" in sys.modules)  # river.preprocessing's __init__ has not run
    ... import river.preprocessing
    ... print(river.preprocessing.OneHotEncoder.__name__)  # a name of its own: now it has
    ... print("river.preprocessing.gap_encoder" in sys.modules)
    ... '''
    >>> print(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    False
    OneHotEncoder
    True
    <BLANKLINE>
    """
    if not any(isinstance(finder, _DeferredInits) and finder.prefix == top + "." for finder in sys.meta_path):
        sys.meta_path.insert(0, _DeferredInits(top))

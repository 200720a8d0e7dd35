"""The two tiers of public names: ``em.*`` and one level down (no broker needed)."""

from __future__ import annotations

import importlib
import types
from importlib.machinery import PathFinder

import pytest

import eventml as em

#: top-level functions that share their name with a package of eventml: none
SHARED_WITH_A_PACKAGE: set[str] = set()


@pytest.mark.parametrize("name", sorted(em.__all__))
def test_every_top_level_name_resolves_and_none_but_serve_is_also_a_module(name):
    value = getattr(em, name)
    assert value is not None and not isinstance(value, types.ModuleType)
    is_module = PathFinder.find_spec(f"eventml.{name}", em.__path__) is not None  # in this tree
    assert is_module == (name in SHARED_WITH_A_PACKAGE)


@pytest.mark.parametrize("name", sorted(em._MOVED))
def test_a_name_that_moved_down_says_where_it_is_now(name):
    module = em._MOVED[name]
    with pytest.raises(AttributeError, match=rf"^eventml\.{name} moved: use {module}\.{name}$"):
        getattr(em, name)
    assert hasattr(importlib.import_module(module), name)
    assert getattr(em, module.split(".")[1]) is importlib.import_module(module)  # em.events, em.dlq, ...


def test_serve_and_watch_stay_functions_once_their_modules_are_imported():
    import eventml.live_figure  # noqa: F401
    import eventml.service.app  # noqa: F401

    assert isinstance(em.serve, types.FunctionType) and isinstance(em.watch, types.FunctionType)


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="module 'eventml' has no attribute 'no_such_name'"):
        em.no_such_name  # noqa: B018
    with pytest.raises(AttributeError, match="module 'eventml.kafka' has no attribute 'no_such_name'"):
        em.kafka.no_such_name  # noqa: B018

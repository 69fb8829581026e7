"""The public surface: every package's __all__ is sorted and complete."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import minga


def _packages() -> list[str]:
    names = ["minga"]
    for info in pkgutil.walk_packages(minga.__path__, "minga."):
        leaf = info.name.rsplit(".", 1)[-1]
        if info.ispkg and not leaf.startswith("_"):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _packages())
def test_all_is_sorted_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert list(exported) == sorted(exported), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    for member in exported:
        assert hasattr(module, member), f"{name}.__all__ names {member!r}, which does not exist"


@pytest.mark.parametrize("name", _packages())
def test_all_is_complete(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType) and n != "annotations"
    }
    missing = public - set(module.__all__)
    assert not missing, f"{name} exposes {sorted(missing)} without listing them in __all__"

"""Every runnable example in onnxforge's docstrings runs and prints what it says (the style rule: public API
documented with a runnable example). Each module starts from a cleared session, as a reader's would."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import onnxforge
from onnxforge.keras import backend


def _modules() -> list[str]:
    names = [onnxforge.__name__]
    for info in pkgutil.walk_packages(onnxforge.__path__, prefix="onnxforge."):
        names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_the_walk_finds_the_package():
    assert len(MODULES) > 150 and "onnxforge.ops.numpy_shapes" in MODULES and "onnxforge.losses.values" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    backend.clear_session()
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (printed above)"

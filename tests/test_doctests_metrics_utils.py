"""The runnable examples in the docstrings of the metrics, losses, utils and preprocessing modules run."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "onnxforge.losses", "onnxforge.losses.values", "onnxforge.losses.functions", "onnxforge.losses.loss",
    "onnxforge.losses.classes", "onnxforge.losses.lookup",
    "onnxforge.metrics", "onnxforge.metrics.base", "onnxforge.metrics.accuracy_metrics",
    "onnxforge.metrics.regression", "onnxforge.metrics.hinge_metrics", "onnxforge.metrics.probabilistic",
    "onnxforge.metrics.correlation", "onnxforge.metrics.confusion", "onnxforge.metrics.curves",
    "onnxforge.metrics.f_score", "onnxforge.metrics.iou", "onnxforge.metrics.lookup", "onnxforge.utils",
    "onnxforge.utils.numerical", "onnxforge.utils.sequence", "onnxforge.utils.image", "onnxforge.utils.py_dataset",
    "onnxforge.utils.dataset", "onnxforge.utils.dataset_loaders", "onnxforge.utils.plot", "onnxforge.utils.file",
    "onnxforge.preprocessing", "onnxforge.models.functional_graph",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"

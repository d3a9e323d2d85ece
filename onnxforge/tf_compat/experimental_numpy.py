"""``tf.experimental.numpy`` (``tnp``) as keras.io's TensorFlow-NumPy recipe uses it: the NumPy-named
functions of ``keras.ops`` (``tnp.matmul``, ``tnp.maximum``, ``tnp.mean``, ``tnp.square``, ...), so they run
on arrays, inside traced layers and on functional tensors alike.

They keep Keras's dtypes, not NumPy's: a Python float or ``tnp.ones`` is float32 here, float64 in TensorFlow's
``tnp`` (which follows NumPy). A name ``keras.ops`` lacks (``tnp.random``, ``tnp.ndarray``) raises an
``AttributeError`` that says so. ``import onnxforge.experimental.numpy as tnp`` works as
``import tensorflow.experimental.numpy as tnp`` does.

Example:
    >>> import numpy as np
    >>> import onnxforge as tf
    >>> tnp = tf.experimental.numpy
    >>> tnp.experimental_enable_numpy_behavior()
    >>> tnp.maximum(tnp.matmul(np.ones((1, 2), "float32"), np.ones((2, 1), "float32")), 3.0).tolist()
    [[3.0]]
"""
from __future__ import annotations

import sys
import types
from typing import Any

from .. import ops as _ops

__all__ = ["experimental_enable_numpy_behavior", "numpy", "experimental"]

# keras.ops names that are not NumPy functions: not offered under tnp.
_NOT_NUMPY = frozenset({"nn", "image", "linalg", "core", "math", "random", "fft", "stft", "istft", "rfft", "irfft",
                        "segment_sum", "segment_max", "top_k", "in_top_k", "logsumexp", "softmax", "log_softmax",
                        "relu", "sigmoid", "conv", "depthwise_conv", "separable_conv", "conv_transpose",
                        "one_hot", "multi_hot", "cond", "while_loop", "scan", "fori_loop", "switch",
                        "stop_gradient", "custom_gradient", "convert_to_tensor", "convert_to_numpy"})


def experimental_enable_numpy_behavior(prefer_float32: bool = False, dtype_conversion_mode: str = "legacy") -> None:
    """Accepted: these functions already take NumPy-style arguments and operators (Keras's dtype rules)."""


def _lookup(name: str) -> Any:
    if name.startswith("_") or name in _NOT_NUMPY or not hasattr(_ops, name):
        raise AttributeError(f"onnxforge's tf.experimental.numpy has the NumPy-named functions of keras.ops; "
                             f"tnp.{name} is not one of them. Use numpy on host arrays, or onnxforge.ops.")
    return getattr(_ops, name)


class _TNP(types.ModuleType):
    """The ``tnp`` module: attributes resolved against ``keras.ops`` when asked."""

    def __getattr__(self, name: str) -> Any:
        return _lookup(name)


_PACKAGE = __name__.split(".")[0] + ".experimental"   # the module names ``import`` looks up
numpy = _TNP(_PACKAGE + ".numpy", __doc__)
numpy.experimental_enable_numpy_behavior = experimental_enable_numpy_behavior  # type: ignore[attr-defined]
experimental = types.ModuleType(_PACKAGE, "tf.experimental: only its numpy module.")
experimental.numpy = numpy  # type: ignore[attr-defined]
# ``import onnxforge.experimental.numpy as tnp`` finds these, as ``import tensorflow.experimental.numpy`` does.
sys.modules.setdefault(_PACKAGE, experimental)
sys.modules.setdefault(_PACKAGE + ".numpy", numpy)

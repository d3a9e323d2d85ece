"""The TensorFlow names that Keras programs written for the TF backend use around their models.

Keras 3 examples whose ``train_step`` takes gradients with ``tf.GradientTape`` (a DCGAN, a VAE, WGAN-GP)
and the tf.keras guides' custom training loops also call TensorFlow itself: tensor functions
(``tf.shape``, ``tf.reduce_mean``, ``tf.sequence_mask``, ... in ``tensors``), ``tf.nest``,
``tf.TensorShape`` / ``tf.Tensor`` (``tensor_types``), ``tf.print``, ``tf.data.Dataset`` (``data``: the
in-memory ``keras.utils.Dataset``) and ``tf.config.run_functions_eagerly``. With ``import onnxforge as tf``
these resolve to onnxforge's own, with TensorFlow's argument names, defaults and results, so such a program
runs after changing its imports. ``tf.strings`` has the standardization functions text tutorials pass to
``TextVectorization`` (``lower``, ``upper``, ``regex_replace`` of literals and character classes,
``regex_full_match``, ``join``: ``onnxforge.ops.strings``); ``tf.image`` has the resizing, cropping, flipping,
colour and random-augmentation functions of TensorFlow's image tutorials (``image_fns``); ``tf.io``,
``tf.sparse``, ``tf.distribute`` and the file-reading parts of ``tf.data`` are not here.

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

import types

from . import config, data, nest, train
from .printing import print  # noqa: A004 (TensorFlow's name)
from .tensor_types import Tensor, TensorShape
from .tensors import *  # noqa: F401,F403
from .tensors import __all__ as _tensor_names
from .elementwise import *  # noqa: F401,F403
from .elementwise import __all__ as _elementwise_names
from .array_fns import *  # noqa: F401,F403
from .array_fns import __all__ as _array_names
from .math_fns import argsort, clip_by_global_norm, clip_by_norm, cumsum, norm, reduce_logsumexp, reduce_std, \
    reduce_variance, sort
from .namespaces import linalg, math
from .image_fns import image
from .nn_fns import nn
from .random_fns import random
from .variable import Variable
from ..utils.tensor_spec import TensorSpec
from ..ops import strings as _string_ops

#: TensorFlow's text dtype (NumPy object arrays of bytes here): for ``tf.TensorSpec(dtype=tf.string)``.
string = "string"
strings = types.SimpleNamespace(**{name: getattr(_string_ops, name) for name in
                                   ("lower", "upper", "regex_replace", "regex_full_match", "join")})

# Only in tf.math: TensorFlow 2 has no top-level alias of these (tf.log is tf.math.log), so neither do we.
_MATH_ONLY = {"floordiv", "log_sigmoid", "softplus", "rsqrt", "reciprocal", "squared_difference", "is_nan",
              "is_finite", "is_inf", "divide_no_nan", "logical_xor", "ceil", "log1p", "log"}
_TOP_LEVEL = [n for n in _elementwise_names if n not in _MATH_ONLY]
__all__ = [*_tensor_names, *_TOP_LEVEL, *_array_names, "argsort", "clip_by_global_norm", "clip_by_norm",
           "cumsum", "norm", "reduce_logsumexp", "sort", "math", "linalg", "nn", "random", "Variable", "data",
           "nest", "config", "print", "Tensor", "TensorShape", "TensorSpec", "string", "strings", "train", "image"]

"""``onnxforge.ops``: a symbolic op namespace with ``keras.ops`` names, for custom training steps and layers.

Inside a traced ``train_step`` (or a layer's ``call``), every op emits standard ``ai.onnx`` nodes on graph
values and returns a graph value; gradients come from ``onnxforge.autodiff`` through ``GradientTape``.
On plain numpy arrays, outside any trace, an op runs once with onnxruntime and returns numpy arrays.

Shapes can hold the dynamic batch: ``ops.shape(x)`` gives ints for static dims and int64 scalar tensors for
dynamic ones, which ``ops.zeros((ops.shape(x)[0], 1))`` or ``ops.random.normal((batch, 128))`` accept.

What cannot be traced, and what to write instead:

* Python branching on tensor values (``if loss > 1:``): use ``ops.where(cond, a, b)``.
* numpy on symbolic values (``np.mean(x)``, ``float(x)``): use ``ops.mean``; return values you want on
  the host from ``train_step``.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.concatenate([ops.ones((1, 2)), ops.zeros((1, 2))], axis=0).tolist()
    [[1.0, 1.0], [0.0, 0.0]]
"""
from __future__ import annotations

from . import image, random
from .arrays import *  # noqa: F401,F403  (the keras.ops.numpy array functions)
from .arrays import __all__ as _arrays_all
from .numpy_math import *  # noqa: F401,F403
from .numpy_math import __all__ as _numpy_math_all
from .products import *  # noqa: F401,F403
from .products import __all__ as _products_all
from .sorting import *  # noqa: F401,F403
from .sorting import __all__ as _sorting_all
from .control import *  # noqa: F401,F403
from .control import __all__ as _control_all
from .nn_conv import *  # noqa: F401,F403
from .nn_conv import __all__ as _nn_conv_all
from .nn_functional import *  # noqa: F401,F403
from .nn_functional import __all__ as _nn_functional_all
from .nn_ctc import ctc_decode, ctc_loss
from .nan_reductions import *  # noqa: F401,F403
from .nan_reductions import __all__ as _nan_reductions_all
from .bitwise import *  # noqa: F401,F403
from .bitwise import __all__ as _bitwise_all
from .numpy_special import *  # noqa: F401,F403
from .numpy_special import __all__ as _numpy_special_all
from .numpy_signal import *  # noqa: F401,F403
from .numpy_signal import __all__ as _numpy_signal_all
from .nn_patches import *  # noqa: F401,F403
from .nn_patches import __all__ as _nn_patches_all
from .linalg_extra import *  # noqa: F401,F403
from .linalg_extra import __all__ as _linalg_extra_all
from .einops import rearrange
from .linalg_factor import cholesky, cholesky_inverse, lu_factor, qr, solve_triangular
from .linalg_spectral import eig, eigh, lstsq, matrix_rank, pinv, svd
from .unique import unique
from .vectorize import vectorize
from .math import (extract_sequences, fft, fft2, ifft, ifft2, in_top_k, irfft, logdet, rfft, segment_max,
                   segment_min, segment_prod, segment_sum, top_k)
from .linalg import det, inv, norm, solve
from .forward_mode import jvp
from .spectral import istft, stft
from .complex_arrays import view_as_complex, view_as_real
from . import linalg, math  # noqa: E402  (keras.ops.linalg / keras.ops.math namespaces)
from .core import cast, cond, convert_to_numpy, convert_to_tensor, custom_gradient, is_tensor, shape, stop_gradient
from .nn import (binary_crossentropy, categorical_crossentropy, elu, gelu, hard_sigmoid, leaky_relu, log_sigmoid,
                 log_softmax, relu, relu6, selu, sigmoid, silu, softmax, softplus, softsign,
                 sparse_categorical_crossentropy, swish)
from .numpy import (abs, absolute, add, arange, argmax, argmin, broadcast_to, ceil, clip, concatenate, cos, divide,
                    equal, exp, expand_dims, expm1, floor, full, full_like, greater, greater_equal, less,
                    less_equal, log, log1p, logical_and, logical_not, logical_or, logsumexp, matmul, max, maximum,
                    mean, min, minimum, multiply, negative, not_equal, one_hot, ones, ones_like, power, prod,
                    reciprocal, reshape, round, sign, sin, size, slice, sqrt, square, squeeze, stack, std, subtract,
                    sum, take, tanh, tile, transpose, true_divide, var, where, zeros, zeros_like)

_DECOMPOSITIONS = ["cholesky", "cholesky_inverse", "solve_triangular", "lu_factor", "qr", "eigh", "eig", "svd",
                   "lstsq", "pinv", "matrix_rank", "jvp"]
__all__ = [
    "random", "image", "cast", "cond", "convert_to_numpy", "convert_to_tensor", "is_tensor", "shape", "stop_gradient",
    "custom_gradient", "view_as_complex", "view_as_real",
    "binary_crossentropy", "categorical_crossentropy", "elu", "gelu", "hard_sigmoid", "leaky_relu", "log_sigmoid",
    "log_softmax", "relu", "relu6", "selu", "sigmoid", "silu", "softmax", "softplus", "softsign",
    "sparse_categorical_crossentropy", "swish",
    "abs", "absolute", "add", "arange", "argmax", "argmin", "broadcast_to", "ceil", "clip", "concatenate", "cos",
    "divide", "equal", "exp", "expand_dims", "expm1", "floor", "full", "full_like", "greater", "greater_equal",
    "less", "less_equal", "log", "log1p", "logical_and", "logical_not", "logical_or", "logsumexp", "matmul", "max",
    "maximum", "mean", "min", "minimum", "multiply", "negative", "not_equal", "one_hot", "ones", "ones_like",
    "power", "prod", "reciprocal", "reshape", "round", "sign", "sin", "size", "slice", "take", "sqrt", "square", "squeeze", "stack",
    "std", "subtract", "sum", "tanh", "tile", "transpose", "true_divide", "var", "where", "zeros", "zeros_like",
]
__all__ += [*_arrays_all, *_numpy_math_all, *_products_all, *_sorting_all, *_control_all, *_nn_conv_all,
            *_nn_functional_all, *_nan_reductions_all, *_bitwise_all, *_numpy_special_all, *_numpy_signal_all,
            *_nn_patches_all, *_linalg_extra_all, "rearrange", "unique", "vectorize", "ctc_loss", "ctc_decode", "extract_sequences", "fft", "fft2", "ifft", "ifft2", "in_top_k", "irfft", "logdet",
            "rfft", "stft", "istft", *_DECOMPOSITIONS, "segment_max", "segment_min", "segment_prod", "segment_sum", "top_k", "det", "inv", "norm",
            "solve", "linalg", "math", "jvp"]

# stft / istft live in spectral.py; Keras lists them under keras.ops.math too.
math.stft, math.istft = stft, istft

# Keras also exposes every NumPy-like op as ``keras.ops.numpy.<name>`` and every nn op as ``keras.ops.nn.<name>``.
from . import nn as _nn_namespace  # noqa: E402
from . import numpy as _numpy_namespace  # noqa: E402

# Keras 3.15 keeps erfc and cdist in its math module and slogdet among the NumPy ops; one_hot is an nn op too.
_MATH_ONLY = {"erfc"}
for _namespace, _names in ((_numpy_namespace, [*_arrays_all, *_numpy_math_all, *_products_all, *_sorting_all,
                                               *_nan_reductions_all, *_bitwise_all, *_numpy_signal_all, "slogdet", "unique", "vectorize",
                                               *(n for n in _numpy_special_all if n not in _MATH_ONLY)]),
                           (_nn_namespace, [*_nn_conv_all, *_nn_functional_all, *_nn_patches_all, "one_hot", "ctc_loss", "ctc_decode"]),
                           (math, ["erfc", "cdist"]), (linalg, _DECOMPOSITIONS)):
    for _name in _names:
        if not hasattr(_namespace, _name):
            setattr(_namespace, _name, globals()[_name])

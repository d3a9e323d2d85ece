"""``tf.math`` and ``tf.linalg``: the namespaces gathering the functions of ``elementwise``, ``math_fns``,
``array_fns`` and ``tensors`` under TensorFlow's dotted names (``tf.math.rsqrt``, ``tf.linalg.norm``).

Example:
    >>> import numpy as np
    >>> math.cumsum(np.array([1.0, 2.0]), reverse=True).tolist(), float(linalg.norm(np.array([3.0, 4.0])))
    ([3.0, 2.0], 5.0)
"""
from __future__ import annotations

__all__ = ["math", "linalg"]

import types

from . import elementwise as _ew
from . import linalg_fns as _lf
from . import math_fns as _mf
from . import math_more as _mm
from .array_fns import eye
from .array_more import tensordot
from .tensors import (argmax, argmin, einsum, matmul, reduce_all, reduce_any, reduce_max, reduce_mean, reduce_min,
                      reduce_prod, reduce_sum, transpose)

math = types.SimpleNamespace(
    **{name: getattr(_ew, name) for name in _ew.__all__},
    reduce_mean=reduce_mean, reduce_sum=reduce_sum, reduce_max=reduce_max, reduce_min=reduce_min,
    reduce_prod=reduce_prod, reduce_any=reduce_any, reduce_all=reduce_all, reduce_std=_mf.reduce_std,
    reduce_variance=_mf.reduce_variance, reduce_logsumexp=_mf.reduce_logsumexp, argmax=argmax, argmin=argmin,
    l2_normalize=_mf.l2_normalize, cumsum=_mf.cumsum, top_k=_mf.top_k,
    **{name: getattr(_mm, name) for name in _mm.__all__},
)

linalg = types.SimpleNamespace(
    norm=_mf.norm, global_norm=_mf.global_norm, l2_normalize=_mf.l2_normalize, matmul=matmul, eye=eye,
    **{name: getattr(_lf, name) for name in _lf.__all__}, einsum=einsum, tensordot=tensordot,
    matrix_transpose=lambda a, name=None, conjugate=False: transpose(
        a, list(range(len(a.shape) - 2)) + [len(a.shape) - 1, len(a.shape) - 2]),
)

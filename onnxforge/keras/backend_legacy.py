"""tf.keras 2's ``keras.backend`` tensor functions (``K.mean``, ``K.square``, ``K.clip``, ``K.int_shape``,
``K.binary_crossentropy`` ...), which old custom losses and metrics are written with. Keras 3 still ships them
under ``tf.keras.backend``; here each is a thin composition of ``keras.ops``, so it works on arrays (eagerly)
and on symbolic tensors inside a traced loss, metric or ``Lambda`` layer alike. ``keras.backend`` re-exports
them; names Keras 3 dropped (``K.function``, ``K.learning_phase``...) raise an AttributeError saying what
replaces them.

Example:
    >>> import numpy as np
    >>> from onnxforge.keras import backend as K
    >>> y_true, y_pred = np.array([[1.0, 0.0]], np.float32), np.array([[0.5, 0.0]], np.float32)
    >>> float(K.mean(K.square(y_pred - y_true), axis=-1)[0])
    0.125
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import ops
from ..backend_config import epsilon, floatx

# One-to-one renames of keras.ops, with tf.keras 2's argument names and defaults where they differ.
__all__ = ["abs", "all", "any", "arange", "argmax", "argmin", "batch_flatten", "batch_get_value", "batch_set_value",
           "bias_add", "binary_crossentropy", "cast", "cast_to_floatx", "categorical_crossentropy", "clip",
           "concatenate", "constant", "cos", "count_params", "cumprod", "cumsum", "dot", "dtype", "elu", "equal",
           "eval", "exp", "expand_dims", "eye", "flatten", "gather", "greater", "greater_equal", "hard_sigmoid",
           "int_shape", "l2_normalize", "less", "less_equal", "log", "max", "maximum", "mean", "min", "minimum",
           "ndim", "not_equal", "one_hot", "ones", "ones_like", "permute_dimensions", "pow", "prod",
           "random_bernoulli", "random_normal", "random_uniform", "relu", "repeat_elements", "reshape", "reverse",
           "round", "shape", "sigmoid", "sign", "sin", "softmax", "softplus", "softsign",
           "sparse_categorical_crossentropy", "sqrt", "square", "squeeze", "stack", "std", "stop_gradient", "sum",
           "switch", "tanh", "tile", "transpose", "truncated_normal", "update", "update_add", "update_sub", "var",
           "variable", "zeros", "zeros_like"]

_builtin_abs, _builtin_all, _builtin_any, _builtin_max, _builtin_min, _builtin_round, _builtin_pow = (
    abs, all, any, max, min, round, pow)

abs = ops.abs
cos, sin, exp, log, sqrt, square, sign = ops.cos, ops.sin, ops.exp, ops.log, ops.sqrt, ops.square, ops.sign
round = ops.round
equal, not_equal, greater, greater_equal, less, less_equal = (ops.equal, ops.not_equal, ops.greater,
                                                             ops.greater_equal, ops.less, ops.less_equal)
maximum, minimum = ops.maximum, ops.minimum
sigmoid, softplus, softsign, tanh = ops.sigmoid, ops.softplus, ops.softsign, ops.tanh
ones_like, zeros_like, stop_gradient = ops.ones_like, ops.zeros_like, ops.stop_gradient
reshape, tile, cast = ops.reshape, ops.tile, ops.cast


def _reduce(fn: Any) -> Any:
    def reduce(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return fn(x, axis=axis, keepdims=keepdims)

    reduce.__name__ = reduce.__qualname__ = fn.__name__
    reduce.__doc__ = f"tf.keras 2's ``K.{fn.__name__}(x, axis=None, keepdims=False)``."
    return reduce


mean, sum, max, min, prod, std, var = (_reduce(f) for f in (ops.mean, ops.sum, ops.max, ops.min, ops.prod,
                                                            ops.std, ops.var))


def any(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``K.any``: a logical OR reduction (non-zero counts as true)."""
    return ops.any(ops.cast(x, "bool"), axis=axis, keepdims=keepdims)


def all(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``K.all``: a logical AND reduction (non-zero counts as true)."""
    return ops.all(ops.cast(x, "bool"), axis=axis, keepdims=keepdims)


def argmax(x: Any, axis: int = -1) -> Any:
    return ops.argmax(x, axis=axis)


def argmin(x: Any, axis: int = -1) -> Any:
    return ops.argmin(x, axis=axis)


def clip(x: Any, min_value: Any, max_value: Any) -> Any:
    """``K.clip``; a ``max_value`` below ``min_value`` is raised to it, as tf.keras did."""
    if isinstance(min_value, (int, float)) and isinstance(max_value, (int, float)) and max_value < min_value:
        max_value = min_value
    return ops.clip(x, min_value if min_value is not None else -np.inf, max_value if max_value is not None else np.inf)


def concatenate(tensors: Sequence[Any], axis: int = -1) -> Any:
    return ops.concatenate(list(tensors), axis=axis)


def stack(x: Sequence[Any], axis: int = 0) -> Any:
    return ops.stack(list(x), axis=axis)


def expand_dims(x: Any, axis: int = -1) -> Any:
    return ops.expand_dims(x, axis)


def squeeze(x: Any, axis: int) -> Any:
    return ops.squeeze(x, axis)


def transpose(x: Any) -> Any:
    return ops.transpose(x)


def permute_dimensions(x: Any, pattern: Sequence[int]) -> Any:
    return ops.transpose(x, tuple(pattern))


def flatten(x: Any) -> Any:
    return ops.reshape(x, (-1,))


def batch_flatten(x: Any) -> Any:
    """``(batch, ...)`` to ``(batch, prod(...))``."""
    return ops.reshape(x, (-1, int(np.prod(ops.shape(x)[1:]))))


def reverse(x: Any, axes: Any) -> Any:
    return ops.flip(x, axis=axes)


def repeat_elements(x: Any, rep: int, axis: int) -> Any:
    return ops.repeat(x, rep, axis=axis)


def gather(reference: Any, indices: Any) -> Any:
    """Rows of ``reference`` (its first axis) at ``indices``."""
    return ops.take(reference, indices, axis=0)


def one_hot(indices: Any, num_classes: int) -> Any:
    return ops.one_hot(indices, num_classes)


def cumsum(x: Any, axis: int = 0) -> Any:
    return ops.cumsum(x, axis=axis)


def cumprod(x: Any, axis: int = 0) -> Any:
    return ops.cumprod(x, axis=axis)


def pow(x: Any, a: Any) -> Any:
    return ops.power(x, a)


def dot(x: Any, y: Any) -> Any:
    """``K.dot``: a matrix product; for ranks above 2, x's last axis against y's second-to-last (as tf.keras)."""
    if len(ops.shape(y)) > 2:
        return ops.tensordot(x, y, axes=[[len(ops.shape(x)) - 1], [len(ops.shape(y)) - 2]])
    return ops.matmul(x, y)


def bias_add(x: Any, bias: Any, data_format: str | None = None) -> Any:
    if data_format == "channels_first" and len(ops.shape(x)) > 2:
        bias = ops.reshape(bias, (-1,) + (1,) * (len(ops.shape(x)) - 2))
    return ops.add(x, bias)


def switch(condition: Any, then_expression: Any, else_expression: Any) -> Any:
    """``K.switch``: ``then_expression`` where ``condition`` holds, else ``else_expression`` (elementwise)."""
    then_value = then_expression() if callable(then_expression) else then_expression
    else_value = else_expression() if callable(else_expression) else else_expression
    return ops.where(ops.cast(condition, "bool"), then_value, else_value)


def l2_normalize(x: Any, axis: Any = None) -> Any:
    """``x / sqrt(max(sum(x**2, axis), 1e-12))``, tf.math.l2_normalize's formula."""
    squares = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return ops.multiply(x, ops.rsqrt(ops.maximum(squares, 1e-12)))


def softmax(x: Any, axis: int = -1) -> Any:
    return ops.softmax(x, axis=axis)


def elu(x: Any, alpha: float = 1.0) -> Any:
    return ops.elu(x, alpha=alpha)


def hard_sigmoid(x: Any) -> Any:
    """tf.keras 2's ``clip(0.2 * x + 0.5, 0, 1)`` (Keras 3's ``ops.hard_sigmoid`` uses ``x / 6``)."""
    return ops.clip(ops.add(ops.multiply(x, 0.2), 0.5), 0.0, 1.0)


def relu(x: Any, alpha: float = 0.0, max_value: float | None = None, threshold: float = 0.0) -> Any:
    """``K.relu``: ``x`` above ``threshold`` (capped at ``max_value``), ``alpha * (x - threshold)`` below."""
    out = ops.where(ops.greater(x, threshold), x, ops.zeros_like(x))
    if max_value is not None:
        out = ops.minimum(out, max_value)
    if alpha != 0.0:
        out = ops.subtract(out, ops.multiply(alpha, ops.relu(ops.subtract(threshold, x))))
    return out


def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Any:
    """Elementwise binary cross-entropy (no mean), probabilities clipped to ``[eps, 1 - eps]`` as tf.keras."""
    if from_logits:
        return ops.binary_crossentropy(target, output, from_logits=True)
    eps = epsilon()
    output = ops.clip(output, eps, 1.0 - eps)
    positive = ops.multiply(target, ops.log(ops.add(output, eps)))
    negative = ops.multiply(ops.subtract(1.0, target), ops.log(ops.add(ops.subtract(1.0, output), eps)))
    return ops.negative(ops.add(positive, negative))


def categorical_crossentropy(target: Any, output: Any, from_logits: bool = False, axis: int = -1) -> Any:
    """Cross-entropy over ``axis``; probabilities are renormalised to sum to 1, then clipped, as tf.keras."""
    return ops.categorical_crossentropy(target, output, from_logits=from_logits, axis=axis)


def sparse_categorical_crossentropy(target: Any, output: Any, from_logits: bool = False, axis: int = -1) -> Any:
    """Cross-entropy against integer class ids ``target``."""
    return ops.sparse_categorical_crossentropy(target, output, from_logits=from_logits, axis=axis)


def int_shape(x: Any) -> tuple[int | None, ...] | None:
    """The static shape as a tuple (``None`` for unknown dimensions)."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return np.shape(x)
    return tuple(None if d is None else int(d) for d in shape)


def shape(x: Any) -> Any:
    """The shape; indexing it (``K.shape(x)[0]``) gives the batch size inside traced code too."""
    return ops.shape(x)


def ndim(x: Any) -> int:
    return len(ops.shape(x))


def dtype(x: Any) -> str:
    """The dtype's Keras name, e.g. ``"float32"``."""
    from .backend import standardize_dtype

    return standardize_dtype(getattr(x, "dtype", None) or np.asarray(x).dtype)


def count_params(x: Any) -> int:
    return int(np.prod(int_shape(x)))


def cast_to_floatx(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=floatx())


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str | None = None) -> Any:
    array = np.asarray(value, dtype=dtype or floatx())
    if shape is not None:
        array = np.broadcast_to(array, tuple(shape)).copy()
    return ops.convert_to_tensor(array)


def variable(value: Any, dtype: Any = None, name: str | None = None, constraint: Any = None) -> Any:
    """A Keras ``Variable`` holding ``value`` (``floatx()`` unless ``dtype`` says otherwise)."""
    from .variable import Variable

    if constraint is not None:
        raise ValueError("K.variable(constraint=...) is not supported: Keras 3 variables hold no constraint; apply "
                         f"it in the layer (`kernel_constraint=`) instead. Received: constraint={constraint!r}")
    return Variable(np.asarray(value, dtype=dtype or floatx()), dtype=dtype or floatx(), name=name)


def eval(x: Any) -> np.ndarray:
    from .backend import get_value

    return get_value(x)


def batch_get_value(tensors: Sequence[Any]) -> list[np.ndarray]:
    return [eval(t) for t in tensors]


def batch_set_value(tuples: Sequence[tuple[Any, Any]]) -> None:
    for x, value in tuples:
        x.assign(value)


def update(x: Any, new_x: Any) -> Any:
    x.assign(new_x)
    return x


def update_add(x: Any, increment: Any) -> Any:
    x.assign_add(increment)
    return x


def update_sub(x: Any, decrement: Any) -> Any:
    x.assign_sub(decrement)
    return x


def zeros(shape: Any, dtype: Any = None, name: str | None = None) -> Any:
    return ops.zeros(shape, dtype=dtype or floatx())


def ones(shape: Any, dtype: Any = None, name: str | None = None) -> Any:
    return ops.ones(shape, dtype=dtype or floatx())


def eye(size: int, dtype: Any = None, name: str | None = None) -> Any:
    return ops.eye(size, dtype=dtype or floatx())


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: str = "int32") -> Any:
    return ops.arange(start, stop, step, dtype=dtype)


def random_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None, seed: Any = None) -> Any:
    return ops.random.normal(shape, mean=mean, stddev=stddev, dtype=dtype or floatx(), seed=seed)


def random_uniform(shape: Any, minval: float = 0.0, maxval: float = 1.0, dtype: Any = None, seed: Any = None) -> Any:
    return ops.random.uniform(shape, minval=minval, maxval=maxval, dtype=dtype or floatx(), seed=seed)


def truncated_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None, seed: Any = None) -> Any:
    return ops.random.truncated_normal(shape, mean=mean, stddev=stddev, dtype=dtype or floatx(), seed=seed)


def random_bernoulli(shape: Any, p: float = 0.0, dtype: Any = None, seed: Any = None) -> Any:
    """Ones with probability ``p``, zeros otherwise."""
    draws = ops.random.uniform(shape, dtype=dtype or floatx(), seed=seed)
    return ops.cast(ops.less_equal(draws, p), dtype or floatx())


_REMOVED = {
    "function": "call the model (or a functional `keras.Model(inputs, outputs)` built on the tensors) instead",
    "learning_phase": "pass `training=True/False` to the layer or model call instead",
    "set_learning_phase": "pass `training=True/False` to the layer or model call instead",
    "in_train_phase": "pass `training=` to the call and branch on it (e.g. with `keras.ops.where`) instead",
    "in_test_phase": "pass `training=` to the call and branch on it (e.g. with `keras.ops.where`) instead",
    "placeholder": "use `keras.Input(shape=...)` instead",
    "get_session": "there are no sessions in Keras 3; remove the call",
    "set_session": "there are no sessions in Keras 3; remove the call",
    "logsumexp": "use `keras.ops.logsumexp` instead",
    "gradients": "use `tf.GradientTape` instead",
}


def removed_name_error(name: str) -> AttributeError | None:
    """The AttributeError for a tf.keras 2 backend name Keras 3 dropped, with its replacement; else None."""
    if name in _REMOVED:
        return AttributeError(f"`keras.backend.{name}` was removed in Keras 3 (it was a TF1 graph-mode helper in "
                              f"tf.keras 2): {_REMOVED[name]}.")
    return None

"""Keras losses, emitted as ONNX graph ops.

Every loss function takes ``y_true`` and ``y_pred`` and returns the per-sample loss (the last axis
reduced), exactly as ``keras.losses.<name>`` does. With symbolic ``Value`` arguments it emits graph ops
(that is how compiled programs use it); with arrays it runs the same ops once through onnxruntime, so
losses can be called eagerly like in Keras.

``Loss`` objects add Keras's reduction (default ``"sum_over_batch_size"``) and sample weights.

Example:
    >>> import numpy as np
    >>> float(SparseCategoricalCrossentropy()(np.array([1, 2]),
    ...       np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], np.float32)))  # doctest: +ELLIPSIS
    1.176...
    >>> mean_squared_error(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]], np.float32)).tolist()
    [0.5]
"""
from __future__ import annotations

__all__ = [
    "Loss", "LossFunctionWrapper", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
    "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError", "Huber",
    "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
    "mean_squared_error", "mean_absolute_error", "huber", "mse", "mae", "get", "serialize",
    "EPSILON", "Hinge", "SquaredHinge", "CategoricalHinge", "LogCosh", "Poisson", "KLDivergence",
    "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "CosineSimilarity", "BinaryFocalCrossentropy",
    "CategoricalFocalCrossentropy", "hinge", "squared_hinge", "categorical_hinge", "log_cosh", "poisson",
    "kl_divergence", "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "cosine_similarity",
    "binary_focal_crossentropy", "categorical_focal_crossentropy", "mape", "msle", "kld", "logcosh",
]

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from . import backend_config, dtype_policies
from .graph import GraphBuilder, Value, broadcast_shapes, np_dtype, onnx_dtype

#: Keras's fuzz factor (``keras.backend.epsilon()``): probabilities are clipped to [EPSILON, 1 - EPSILON].
EPSILON = 1e-7

_FLOAT = onnx.TensorProto.FLOAT
_INT64 = onnx.TensorProto.INT64
_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


# ------------------------------------------------------------------------------------------ graph math
# Small helpers shared by losses and metrics. They keep static shapes on the values they make, because
# Keras's rank rules (squeeze or expand a trailing 1) are decided while tracing.
def _rank(v: Value) -> int | None:
    return None if v.shape is None else len(v.shape)


def _drop(shape: tuple | None, axis: int) -> tuple | None:
    if shape is None:
        return None
    axis = axis % len(shape)
    return shape[:axis] + shape[axis + 1:]


def _axes(b: GraphBuilder, axes: list[int]) -> Value:
    return b.const(np.asarray(axes, np.int64))


def reduce(op: str, x: Value, axis: int | list[int] | None, keepdims: bool = False) -> Value:
    """``op`` (ReduceSum, ReduceMean, ...) over ``axis`` (``None``: all axes)."""
    b = x.builder
    if axis is None:
        shape = None if x.shape is None else (tuple(1 for _ in x.shape) if keepdims else ())
        return b.op(op, [x], keepdims=int(keepdims), dtype=x.dtype, shape=shape)
    axes = [axis] if isinstance(axis, int) else list(axis)
    shape = x.shape
    if shape is not None:
        norm = {a % len(shape) for a in axes}
        shape = tuple((1 if i in norm else d) for i, d in enumerate(shape) if keepdims or i not in norm)
    return b.op(op, [x, _axes(b, axes)], keepdims=int(keepdims), dtype=x.dtype, shape=shape)


def squeeze(x: Value, axis: int) -> Value:
    return x.builder.op("Squeeze", [x, _axes(x.builder, [axis])], dtype=x.dtype, shape=_drop(x.shape, axis))


def expand_dims(x: Value, axis: int) -> Value:
    shape = None
    if x.shape is not None:
        pos = axis if axis >= 0 else len(x.shape) + 1 + axis
        shape = x.shape[:pos] + (1,) + x.shape[pos:]
    return x.builder.op("Unsqueeze", [x, _axes(x.builder, [axis])], dtype=x.dtype, shape=shape)


def _elem_type(dtype: str) -> int:
    return onnx.TensorProto.BFLOAT16 if dtype == "bfloat16" else onnx_dtype(dtype)


def cast(x: Value, elem_type: int) -> Value:
    if x.dtype == elem_type:
        return x
    return x.builder.op("Cast", [x], to=elem_type, shape=x.shape)


def _like(x: Value, shape: tuple | None) -> Value:
    """Set a static shape on a freshly made elementwise value (the builder records dtypes only)."""
    if x.shape is None:
        x.shape = shape
    return x


def elementwise(op: str, *inputs: Any, shape: tuple | None = None, **attrs: Any) -> Value:
    """One elementwise op, its output shaped like the first Value input unless ``shape`` is given."""
    first = next(i for i in inputs if isinstance(i, Value))
    out = first.builder.op(op, list(inputs), **attrs)
    if shape is None:  # the broadcast of the operands: gradients undo broadcasting from these shapes
        shapes = [i.shape if isinstance(i, Value) else np.shape(i) for i in inputs]
        shape = broadcast_shapes(*shapes) if all(s is not None for s in shapes) else first.shape
    return _like(out, shape)


def batch_size(x: Value, elem_type: int = _FLOAT) -> Value:
    """The leading dimension of ``x`` as a scalar of ``elem_type``."""
    b = x.builder
    n = b.op("Gather", [b.op("Shape", [x]), b.const(np.asarray(0, np.int64))], axis=0, shape=())
    return cast(n, elem_type)


def squeeze_or_expand_to_same_rank(x1: Value, x2: Value, expand_rank_1: bool = True) -> tuple[Value, Value]:
    """Keras's rule: if ranks differ by one and the longer ends in 1, squeeze it (or expand a rank-1 one)."""
    r1, r2 = _rank(x1), _rank(x2)
    if r1 is None or r2 is None or r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = expand_dims(x2, -1)
        else:
            x1 = squeeze(x1, -1)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = expand_dims(x1, -1)
        else:
            x2 = squeeze(x2, -1)
    return x1, x2


def _probabilities(y_pred: Value, axis: int) -> Value:
    """Keras's treatment of ``from_logits=False`` categorical outputs: renormalize by the sum over
    ``axis`` (so scores that do not sum to 1 still form a distribution), then clip to [eps, 1 - eps]."""
    total = reduce("ReduceSum", y_pred, axis, keepdims=True)
    p = elementwise("Div", y_pred, total)
    eps = backend_config.epsilon()
    return elementwise("Clip", p, np.asarray(eps, np_dtype(y_pred.dtype)),
                       np.asarray(1.0 - eps, np_dtype(y_pred.dtype)))


def _num_classes(b: GraphBuilder, y: Value, axis: int) -> Value:
    """The size of ``axis`` of ``y`` as an int64 tensor of shape (1,) (static when known)."""
    if y.shape is not None and isinstance(y.shape[axis], int):
        return b.const(np.asarray([y.shape[axis]], np.int64))
    return b.op("Gather", [b.op("Shape", [y]), b.const(np.asarray([axis], np.int64))], axis=0)


# ------------------------------------------------------------------------------------------ eager calls
def _is_symbolic(*xs: Any) -> bool:
    return any(isinstance(x, Value) for x in xs)


def run_eagerly(fn: Callable[..., Any], *arrays: Any, **kwargs: Any) -> Any:
    """Trace ``fn`` on graph inputs shaped like ``arrays`` and run it once on the CPU with onnxruntime.

    Integer arrays enter as int64, everything else as float32 (Keras's floatx). ``fn`` returns a Value or
    a list of Values; the result has the same structure as numpy arrays.
    """
    import onnxruntime as ort

    b = GraphBuilder(float32_fallback=True)
    feeds, values = {}, []
    for i, a in enumerate(arrays):
        if a is None:
            values.append(None)
            continue
        arr = np.asarray(a)
        arr = arr.astype(np.int64) if arr.dtype.kind in "iub" else arr.astype(np.float32)
        v = b.input(f"arg{i}", onnx_dtype(arr.dtype), arr.shape)
        feeds[v.name] = arr
        values.append(v)
    out = fn(*values, **kwargs)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    names = []
    for k, o in enumerate(outs):
        b.output(o, f"out{k}")
        names.append(f"out{k}")
    sess = ort.InferenceSession(b.to_model().SerializeToString(), providers=["CPUExecutionProvider"])
    results = sess.run(names, feeds)
    return results if isinstance(out, (list, tuple)) else results[0]


# ------------------------------------------------------------------------------------------ functions
def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                                    ignore_class: int | None = None, axis: int = -1) -> Any:
    """Per-sample crossentropy between integer labels and class scores (Keras semantics).

    With ``from_logits=False`` the scores are renormalized by their sum and clipped to
    [1e-7, 1 - 1e-7] before the log, as Keras does; pass logits with ``from_logits=True``.
    """
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(sparse_categorical_crossentropy, y_true, y_pred, from_logits=from_logits,
                           ignore_class=ignore_class, axis=axis)
    return _sparse_cce(y_true, y_pred, from_logits, ignore_class, axis)[0]


def _sparse_cce(y_true: Value, y_pred: Value, from_logits: bool, ignore_class: int | None,
                axis: int) -> tuple[Value, Value | None]:
    """The per-sample loss and, with ``ignore_class``, the float mask of the entries that count."""
    b = y_pred.builder
    if _rank(y_true) is not None and _rank(y_true) == _rank(y_pred) and y_true.shape[-1] == 1:
        y_true = squeeze(y_true, -1)
    labels = cast(y_true, _INT64)
    mask = None
    if ignore_class is not None:
        valid = b.op("Not", [b.op("Equal", [labels, b.const(np.asarray(ignore_class, np.int64))])])
        labels = elementwise("Mul", labels, cast(valid, _INT64))
        mask = _like(cast(valid, y_pred.dtype), labels.shape)
    if from_logits:
        log_prob = elementwise("LogSoftmax", y_pred, axis=axis)
    else:
        log_prob = elementwise("Log", _probabilities(y_pred, axis))
    onoff = b.const(np.asarray([0.0, 1.0], np_dtype(y_pred.dtype)))
    one_hot = b.op("OneHot", [labels, _num_classes(b, y_pred, axis), onoff], axis=axis, dtype=y_pred.dtype,
                   shape=y_pred.shape)
    loss = elementwise("Neg", reduce("ReduceSum", elementwise("Mul", one_hot, log_prob), axis))
    if mask is not None:
        loss = elementwise("Mul", loss, mask)
    return loss, mask


def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0,
                             axis: int = -1) -> Any:
    """Per-sample crossentropy between one-hot (or soft) labels and class scores (Keras semantics)."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(categorical_crossentropy, y_true, y_pred, from_logits=from_logits,
                           label_smoothing=label_smoothing, axis=axis)
    if y_pred.shape is not None and y_pred.shape[-1] == 1:
        warnings.warn("In loss categorical_crossentropy, expected y_pred.shape to be (batch_size, num_classes) "
                      f"with num_classes > 1. Received: y_pred.shape={y_pred.shape}. Consider using "
                      "'binary_crossentropy' if you only have 2 classes.", SyntaxWarning, stacklevel=2)
    y_true = cast(y_true, y_pred.dtype)
    if label_smoothing:
        b = y_pred.builder
        k = cast(_num_classes(b, y_pred, -1), y_pred.dtype)
        smooth = elementwise("Div", b.const(np.asarray(label_smoothing, np_dtype(y_pred.dtype))), k, shape=(1,))
        y_true = elementwise("Add", elementwise("Mul", y_true, 1.0 - label_smoothing), smooth, shape=y_true.shape)
    if from_logits:
        log_prob = elementwise("LogSoftmax", y_pred, axis=axis)
    else:
        log_prob = elementwise("Log", _probabilities(y_pred, axis))
    return elementwise("Neg", reduce("ReduceSum", elementwise("Mul", y_true, log_prob), axis))


def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0,
                        axis: int = -1) -> Any:
    """Per-sample binary crossentropy, averaged over ``axis`` (Keras semantics).

    Probabilities are clipped to [1e-7, 1 - 1e-7]; logits use the exact stable form
    ``max(x, 0) - x * z + log(1 + exp(-|x|))``.
    """
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(binary_crossentropy, y_true, y_pred, from_logits=from_logits,
                           label_smoothing=label_smoothing, axis=axis)
    y_true = cast(y_true, y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    if label_smoothing:
        y_true = elementwise("Add", elementwise("Mul", y_true, 1.0 - label_smoothing), 0.5 * label_smoothing)
    if from_logits:
        x, z = y_pred, y_true
        softplus = elementwise("Softplus", elementwise("Neg", elementwise("Abs", x)))
        per = elementwise("Add", elementwise("Sub", elementwise("Relu", x), elementwise("Mul", x, z)), softplus)
    else:
        dt, eps = np_dtype(y_pred.dtype), backend_config.epsilon()
        p = elementwise("Clip", y_pred, np.asarray(eps, dt), np.asarray(1.0 - eps, dt))
        pos = elementwise("Mul", y_true, elementwise("Log", p))
        neg = elementwise("Mul", elementwise("Sub", 1.0, y_true, shape=y_true.shape),
                          elementwise("Log", elementwise("Sub", 1.0, p, shape=p.shape)))
        per = elementwise("Neg", elementwise("Add", pos, neg))
    return reduce("ReduceMean", per, axis)


def mean_squared_error(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(square(y_true - y_pred), axis=-1)``."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(mean_squared_error, y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    d = elementwise("Sub", y_true, y_pred)
    return reduce("ReduceMean", elementwise("Mul", d, d), -1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(abs(y_true - y_pred), axis=-1)``."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(mean_absolute_error, y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    return reduce("ReduceMean", elementwise("Abs", elementwise("Sub", y_true, y_pred)), -1)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Any:
    """Per-sample Huber loss: ``0.5 e^2`` where ``|e| <= delta``, else ``delta |e| - 0.5 delta^2``; mean
    over the last axis."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(huber, y_true, y_pred, delta=delta)
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    abs_err = elementwise("Abs", elementwise("Sub", y_pred, y_true))
    # q = min(|e|, delta); q * (|e| - q / 2) is both branches of Keras's where() at once.
    q = elementwise("Min", abs_err, np.asarray(delta, np_dtype(y_pred.dtype)))
    per = elementwise("Mul", q, elementwise("Sub", abs_err, elementwise("Mul", q, 0.5)))
    return reduce("ReduceMean", per, -1)


def _f(x: Value, value: float) -> np.ndarray:
    """A scalar constant of ``x``'s float type."""
    return np.asarray(value, np_dtype(x.dtype))


def _hinge_labels(y_true: Value) -> Value:
    """Keras's rule: labels that are all 0 or 1 become -1 / 1; any other labels are used as they are."""
    b = y_true.builder
    is_binary = b.op("Or", [b.op("Equal", [y_true, _f(y_true, 0.0)]), b.op("Equal", [y_true, _f(y_true, 1.0)])])
    all_binary = reduce("ReduceMin", cast(is_binary, y_true.dtype), None)
    # y + all * (y - 1): 2y - 1 when every label is binary, y otherwise (no branch in the graph).
    return elementwise("Add", y_true, elementwise("Mul", elementwise("Sub", y_true, _f(y_true, 1.0)), all_binary),
                       shape=y_true.shape)


def _margin(y_true: Any, y_pred: Value) -> Value:
    y_true = _hinge_labels(cast(y_true, y_pred.dtype))
    return elementwise("Relu", elementwise("Sub", _f(y_pred, 1.0), elementwise("Mul", y_true, y_pred)))


def hinge(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(maximum(1 - y_true * y_pred, 0), axis=-1)``; 0/1 labels count as -1/1."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(hinge, y_true, y_pred)
    return reduce("ReduceMean", _margin(y_true, y_pred), -1)


def squared_hinge(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(square(maximum(1 - y_true * y_pred, 0)), axis=-1)``; 0/1 labels count as -1/1."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(squared_hinge, y_true, y_pred)
    m = _margin(y_true, y_pred)
    return reduce("ReduceMean", elementwise("Mul", m, m), -1)


def categorical_hinge(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``maximum(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` (one-hot labels)."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(categorical_hinge, y_true, y_pred)
    y_true = cast(y_true, y_pred.dtype)
    pos = reduce("ReduceSum", elementwise("Mul", y_true, y_pred), -1)
    neg = reduce("ReduceMax", elementwise("Mul", elementwise("Sub", _f(y_pred, 1.0), y_true, shape=y_true.shape),
                                          y_pred), -1)
    return elementwise("Relu", elementwise("Add", elementwise("Sub", neg, pos), _f(y_pred, 1.0)))


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``100 * mean(abs((y_true - y_pred) / maximum(abs(y_true), 1e-7)), axis=-1)``."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(mean_absolute_percentage_error, y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    scale = elementwise("Max", elementwise("Abs", y_true), _f(y_true, EPSILON))
    diff = elementwise("Abs", elementwise("Div", elementwise("Sub", y_true, y_pred), scale))
    return elementwise("Mul", reduce("ReduceMean", diff, -1), _f(y_pred, 100.0))


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), axis=-1)``."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(mean_squared_logarithmic_error, y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)

    def log1p(x: Value) -> Value:
        return elementwise("Log", elementwise("Add", elementwise("Max", x, _f(x, EPSILON)), _f(x, 1.0)))

    d = elementwise("Sub", log1p(y_pred), log1p(y_true))
    return reduce("ReduceMean", elementwise("Mul", d, d), -1)


def l2_normalize(x: Value, axis: int = -1) -> Value:
    """Keras's ``normalize(x, axis, order=2)``: ``x * min(1 / sqrt(sum(x^2)), 1 / 1e-7)``."""
    inv = elementwise("Reciprocal", elementwise("Sqrt", reduce("ReduceSum", elementwise("Mul", x, x), axis,
                                                                keepdims=True)))
    return elementwise("Mul", x, elementwise("Min", inv, _f(x, 1.0 / EPSILON)))


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Any:
    """Per-sample negative cosine similarity ``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)``
    (the loss form: -1 is perfect agreement)."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(cosine_similarity, y_true, y_pred, axis=axis)
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    product = elementwise("Mul", l2_normalize(y_true, axis), l2_normalize(y_pred, axis))
    return elementwise("Neg", reduce("ReduceSum", product, axis))


def log_cosh(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(log(cosh(y_pred - y_true)), axis=-1)``, in the overflow-free form
    ``x + softplus(-2x) - log(2)``."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(log_cosh, y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    x = elementwise("Sub", y_pred, y_true)
    per = elementwise("Sub", elementwise("Add", x, elementwise("Softplus", elementwise("Mul", x, _f(x, -2.0)))),
                      _f(x, float(np.log(2.0))))
    return reduce("ReduceMean", per, -1)


def kl_divergence(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``sum(y_true * log(y_true / y_pred), axis=-1)``, both clipped to [1e-7, 1]."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(kl_divergence, y_true, y_pred)
    y_true = cast(y_true, y_pred.dtype)
    t = elementwise("Clip", y_true, _f(y_true, EPSILON), _f(y_true, 1.0))
    p = elementwise("Clip", y_pred, _f(y_pred, EPSILON), _f(y_pred, 1.0))
    return reduce("ReduceSum", elementwise("Mul", t, elementwise("Log", elementwise("Div", t, p))), -1)


def poisson(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)``."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(poisson, y_true, y_pred)
    y_true = cast(y_true, y_pred.dtype)
    log_p = elementwise("Log", elementwise("Add", y_pred, _f(y_pred, EPSILON)))
    return reduce("ReduceMean", elementwise("Sub", y_pred, elementwise("Mul", y_true, log_p)), -1)


def binary_focal_crossentropy(y_true: Any, y_pred: Any, apply_class_balancing: bool = False, alpha: float = 0.25,
                              gamma: float = 2.0, from_logits: bool = False, label_smoothing: float = 0.0,
                              axis: int = -1) -> Any:
    """Per-sample focal binary crossentropy (Lin et al., 2017): ``(1 - p_t) ** gamma * bce``, optionally
    weighted ``alpha`` / ``1 - alpha`` by class, averaged over ``axis`` (Keras semantics)."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(binary_focal_crossentropy, y_true, y_pred, apply_class_balancing=apply_class_balancing,
                           alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=label_smoothing,
                           axis=axis)
    y_true = cast(y_true, y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    if label_smoothing:
        y_true = elementwise("Add", elementwise("Mul", y_true, 1.0 - label_smoothing), 0.5 * label_smoothing)
    if from_logits:
        y_pred = elementwise("Sigmoid", y_pred)
    p = elementwise("Clip", y_pred, _f(y_pred, EPSILON), _f(y_pred, 1.0 - EPSILON))
    one_minus_t = elementwise("Sub", _f(y_true, 1.0), y_true, shape=y_true.shape)
    bce = elementwise("Neg", elementwise("Add", elementwise("Mul", y_true, elementwise("Log", p)), elementwise(
        "Mul", one_minus_t, elementwise("Log", elementwise("Sub", _f(p, 1.0), p, shape=p.shape)))))
    one_minus_p = elementwise("Sub", _f(y_pred, 1.0), y_pred, shape=y_pred.shape)
    p_t = elementwise("Add", elementwise("Mul", y_true, y_pred), elementwise("Mul", one_minus_t, one_minus_p))
    focal = elementwise("Pow", elementwise("Sub", _f(p_t, 1.0), p_t, shape=p_t.shape), _f(p_t, gamma))
    per = elementwise("Mul", focal, bce)
    if apply_class_balancing:
        weight = elementwise("Add", elementwise("Mul", y_true, _f(y_true, alpha)),
                             elementwise("Mul", one_minus_t, _f(y_true, 1.0 - alpha)))
        per = elementwise("Mul", weight, per)
    return reduce("ReduceMean", per, axis)


def categorical_focal_crossentropy(y_true: Any, y_pred: Any, alpha: float = 0.25, gamma: float = 2.0,
                                   from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1) -> Any:
    """Per-sample focal categorical crossentropy: ``sum(alpha * (1 - p) ** gamma * -y * log(p), axis)`` with
    ``p`` renormalized and clipped as in ``categorical_crossentropy`` (Keras semantics)."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(categorical_focal_crossentropy, y_true, y_pred, alpha=alpha, gamma=gamma,
                           from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
    y_true = cast(y_true, y_pred.dtype)
    if label_smoothing:
        b = y_pred.builder
        k = cast(_num_classes(b, y_true, -1), y_pred.dtype)
        smooth = elementwise("Div", b.const(_f(y_pred, label_smoothing)), k, shape=(1,))
        y_true = elementwise("Add", elementwise("Mul", y_true, 1.0 - label_smoothing), smooth, shape=y_true.shape)
    if from_logits:
        y_pred = elementwise("Softmax", y_pred, axis=axis)
    p = _probabilities(y_pred, axis)
    cce = elementwise("Neg", elementwise("Mul", y_true, elementwise("Log", p)))
    factor = elementwise("Mul", elementwise("Pow", elementwise("Sub", _f(p, 1.0), p, shape=p.shape), _f(p, gamma)),
                         _f(p, alpha))
    return reduce("ReduceSum", elementwise("Mul", factor, cce), axis)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence
logcosh = log_cosh


# ------------------------------------------------------------------------------------------ reduction
def _standardize_reduction(reduction: str | None) -> str | None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"Invalid value for argument `reduction`. Expected one of {list(_REDUCTIONS)}. "
                         f"Received: reduction={reduction!r}")
    return reduction


def reduce_weighted_values(values: Value, sample_weight: Value | None = None, mask: Value | None = None,
                           reduction: str | None = "sum_over_batch_size") -> Value:
    """Keras's loss reduction: weight the per-sample losses, then sum (and divide) as ``reduction`` says.

    ``sum_over_batch_size`` divides the weighted sum by the number of loss entries (not by the sum of the
    weights); a ``mask`` makes it divide by the number of valid entries instead.
    """
    b = values.builder
    if mask is not None:
        if reduction in ("mean", "sum_over_batch_size"):
            total = cast(b.op("Size", [mask]), values.dtype)
            valid = reduce("ReduceSum", mask, None)
            mask = elementwise("Mul", mask, _divide_no_nan(total, valid))
        if sample_weight is not None:
            m, w = squeeze_or_expand_to_same_rank(mask, cast(sample_weight, values.dtype))
            sample_weight = elementwise("Mul", w, m, shape=_broadcast_shape(w.shape, m.shape))
        else:
            sample_weight = mask
    if sample_weight is not None:
        if _rank(values) is None:
            # A user function's result of unknown rank: rows of its leading dim, so per-sample weights
            # broadcast per row. A scalar becomes one row of one (weighted by every sample weight, as
            # Keras's broadcasting does): the row count is Shape(values) ++ [1], first entry, at run time.
            lead = b.op("Slice", [b.op("Concat", [b.op("Shape", [values]), _axes(b, [1])], axis=0),
                                  _axes(b, [0]), _axes(b, [1])], shape=(1,))
            target = b.op("Concat", [lead, _axes(b, [-1])], axis=0, shape=(2,))
            values = b.op("Reshape", [values, target], dtype=values.dtype, shape=(None, None))
        sample_weight = cast(sample_weight, values.dtype)
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        # Broadcast a per-sample weight over the remaining loss axes (e.g. per time step).
        while _rank(sample_weight) is not None and _rank(values) is not None and _rank(sample_weight) < _rank(values):
            sample_weight = expand_dims(sample_weight, -1)
        values = elementwise("Mul", values, sample_weight)
    if reduction in (None, "none") or values.shape == ():
        return values
    loss = reduce("ReduceSum", values, None)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return _divide_no_nan(loss, reduce("ReduceSum", sample_weight, None))
    count = cast(b.op("Size", [values], shape=()), values.dtype)
    # x * (1 / n) rather than x / n: only Mul lies on the gradient path.
    return elementwise("Mul", loss, elementwise("Reciprocal", count), shape=())


def _broadcast_shape(a: tuple | None, b: tuple | None) -> tuple | None:
    return broadcast_shapes(a, b)


def _divide_no_nan(x: Value, y: Value) -> Value:
    """``x / y`` where ``y != 0``, else 0 (Keras's ``divide_no_nan``)."""
    b = x.builder
    zero = b.const(np.asarray(0, np_dtype(y.dtype)))
    nz = b.op("Not", [b.op("Equal", [y, zero])])
    safe = b.op("Where", [nz, y, b.const(np.asarray(1, np_dtype(y.dtype)))])
    return b.op("Where", [nz, elementwise("Div", x, safe), b.const(np.asarray(0, np_dtype(x.dtype)))],
                dtype=x.dtype, shape=_broadcast_shape(x.shape, y.shape))


# ------------------------------------------------------------------------------------------ classes
class Loss:
    """Base class of losses: ``call(y_true, y_pred)`` gives per-sample values; ``__call__`` reduces them.

    Subclasses implement ``call``. ``call`` may also return ``(values, mask)`` where some entries must
    not count (``ignore_class``). Called with arrays, a loss runs eagerly and returns a numpy scalar.

    Args:
        name: name of the loss (used in logs).
        reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
            ``"mean_with_sample_weight"`` or ``None``/``"none"``.
        dtype: the dtype the loss computes in (a dtype or policy name); default ``keras.config.floatx()``.

    Example:
        >>> import numpy as np
        >>> float(MeanSquaredError()(np.array([[0.0], [1.0]]), np.array([[1.0], [1.0]], np.float32)))
        0.5
    """

    #: The target is an integer class index rather than a tensor shaped like the prediction.
    sparse_labels = False

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size", dtype: Any = None):
        self.name = name or _snake(type(self).__name__)
        self.reduction = _standardize_reduction(reduction)
        try:
            policy = dtype_policies.get(dtype or backend_config.floatx())
        except (TypeError, ValueError) as e:
            raise ValueError(f"Loss {self.name!r}: {e} Received: dtype={dtype!r}") from None
        self._dtype = policy.compute_dtype

    @property
    def dtype(self) -> str:
        """The dtype the loss computes in (``floatx()`` by default, whatever the model's policy)."""
        return self._dtype

    def call(self, y_true: Value, y_pred: Value) -> Value | tuple[Value, Value | None]:
        raise NotImplementedError

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if not _is_symbolic(y_true, y_pred, sample_weight):
            return run_eagerly(self.__call__, y_true, y_pred, sample_weight)
        y_true = y_true if isinstance(y_true, Value) else y_pred.builder.const(np.asarray(y_true))
        # Keras converts both to the loss's dtype: float16 predictions of a mixed-precision model are
        # reduced in float32. Integer labels stay integers (a float round trip would give the same ids).
        to = _elem_type(self._dtype)
        y_pred = cast(y_pred, to) if y_pred.is_float else y_pred
        y_true = cast(y_true, to) if y_true.is_float else y_true
        out = self.call(y_true, y_pred)
        values, mask = out if isinstance(out, tuple) else (out, None)
        return reduce_weighted_values(values, sample_weight, mask, self.reduction)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


class LossFunctionWrapper(Loss):
    """A loss made of a per-sample function ``fn(y_true, y_pred, **kwargs)`` (user functions too).

    Example:
        >>> w = LossFunctionWrapper(mean_absolute_error, name="mae")
        >>> w.name
        'mae'
    """

    def __init__(self, fn: Callable[..., Any], reduction: str | None = "sum_over_batch_size",
                 name: str | None = None, dtype: Any = None, **kwargs: Any):
        super().__init__(name=name or getattr(fn, "__name__", None), reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true: Value, y_pred: Value) -> Value:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._fn_kwargs}


class MeanSquaredError(LossFunctionWrapper):
    """``mean(square(y_true - y_pred))`` (Keras ``MeanSquaredError``)."""

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = "mean_squared_error",
                 dtype: Any = None):
        super().__init__(mean_squared_error, name=name, reduction=reduction, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return Loss.get_config(self)


class MeanAbsoluteError(LossFunctionWrapper):
    """``mean(abs(y_true - y_pred))`` (Keras ``MeanAbsoluteError``)."""

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = "mean_absolute_error",
                 dtype: Any = None):
        super().__init__(mean_absolute_error, name=name, reduction=reduction, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return Loss.get_config(self)


class Huber(LossFunctionWrapper):
    """Huber loss with threshold ``delta`` (Keras ``Huber``, default name ``"huber_loss"``)."""

    def __init__(self, delta: float = 1.0, reduction: str | None = "sum_over_batch_size",
                 name: str = "huber_loss", dtype: Any = None):
        super().__init__(huber, name=name, reduction=reduction, dtype=dtype, delta=delta)
        self.delta = delta


class _ProbabilisticLoss(LossFunctionWrapper):
    """A crossentropy: knows whether it expects logits (used for the linear-output warning)."""

    from_logits: bool


class SparseCategoricalCrossentropy(_ProbabilisticLoss):
    """Crossentropy between integer labels and class scores.

    Args:
        from_logits: whether ``y_pred`` are logits. With ``False`` (the Keras default) they must be
            probabilities: they are renormalized by their sum and clipped to [1e-7, 1 - 1e-7].
        ignore_class: a label value whose entries do not count (their loss is 0 and they are left out of
            the ``sum_over_batch_size`` divisor).
        reduction, name, dtype: as in ``Loss``.

    Example:
        >>> import numpy as np
        >>> loss = SparseCategoricalCrossentropy(from_logits=True)
        >>> round(float(loss(np.array([0]), np.array([[0.0, 0.0]], np.float32))), 4)
        0.6931
    """

    sparse_labels = True

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: str | None = "sum_over_batch_size", name: str = "sparse_categorical_crossentropy",
                 dtype: Any = None):
        super().__init__(sparse_categorical_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, ignore_class=ignore_class)
        self.from_logits = from_logits
        self.ignore_class = ignore_class

    def call(self, y_true: Value, y_pred: Value) -> tuple[Value, Value | None]:
        return _sparse_cce(y_true, y_pred, self.from_logits, self.ignore_class, -1)


class CategoricalCrossentropy(_ProbabilisticLoss):
    """Crossentropy between one-hot labels and class scores.

    Args:
        from_logits: whether ``y_pred`` are logits (see ``SparseCategoricalCrossentropy``).
        label_smoothing: in [0, 1]; labels become ``y * (1 - s) + s / num_classes``.
        axis: the class axis (default -1).
        reduction, name, dtype: as in ``Loss``.
    """

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str = "categorical_crossentropy",
                 dtype: Any = None):
        super().__init__(categorical_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


class BinaryCrossentropy(_ProbabilisticLoss):
    """Binary crossentropy, averaged over the last axis.

    Args:
        from_logits: whether ``y_pred`` are logits (exact stable form) or probabilities (clipped to
            [1e-7, 1 - 1e-7]).
        label_smoothing: in [0, 1]; labels are squeezed towards 0.5: ``y * (1 - s) + s / 2``.
        axis: the axis averaged over (default -1).
        reduction, name, dtype: as in ``Loss``.
    """

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str = "binary_crossentropy",
                 dtype: Any = None):
        super().__init__(binary_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


def _simple_loss(fn: Callable[..., Any], class_name: str, default_name: str, doc: str) -> type[LossFunctionWrapper]:
    """A ``LossFunctionWrapper`` subclass for a per-sample function without options (Keras's config keeps
    only ``name`` and ``reduction``)."""

    def __init__(self: Any, reduction: str | None = "sum_over_batch_size", name: str = default_name,
                 dtype: Any = None) -> None:
        LossFunctionWrapper.__init__(self, fn, name=name, reduction=reduction, dtype=dtype)

    def get_config(self: Any) -> dict[str, Any]:
        return Loss.get_config(self)

    return type(class_name, (LossFunctionWrapper,), {"__init__": __init__, "get_config": get_config, "__doc__": doc,
                                                      "__module__": __name__, "__qualname__": class_name})


Hinge = _simple_loss(hinge, "Hinge", "hinge", "``mean(maximum(1 - y_true * y_pred, 0))``; 0/1 labels count as -1/1.")
SquaredHinge = _simple_loss(squared_hinge, "SquaredHinge", "squared_hinge",
                            "``mean(square(maximum(1 - y_true * y_pred, 0)))``; 0/1 labels count as -1/1.")
CategoricalHinge = _simple_loss(categorical_hinge, "CategoricalHinge", "categorical_hinge",
                                "``maximum(neg - pos + 1, 0)`` with one-hot labels (Keras ``CategoricalHinge``).")
LogCosh = _simple_loss(log_cosh, "LogCosh", "log_cosh", "``mean(log(cosh(y_pred - y_true)))``.")
Poisson = _simple_loss(poisson, "Poisson", "poisson", "``mean(y_pred - y_true * log(y_pred + 1e-7))``.")
KLDivergence = _simple_loss(kl_divergence, "KLDivergence", "kl_divergence",
                            "``sum(y_true * log(y_true / y_pred))`` of distributions clipped to [1e-7, 1].")
MeanAbsolutePercentageError = _simple_loss(
    mean_absolute_percentage_error, "MeanAbsolutePercentageError", "mean_absolute_percentage_error",
    "``100 * mean(abs((y_true - y_pred) / y_true))`` (the divisor at least 1e-7).")
MeanSquaredLogarithmicError = _simple_loss(
    mean_squared_logarithmic_error, "MeanSquaredLogarithmicError", "mean_squared_logarithmic_error",
    "``mean(square(log(y_pred + 1) - log(y_true + 1)))`` (both at least 1e-7).")


class CosineSimilarity(LossFunctionWrapper):
    """Negative cosine similarity along ``axis`` (-1 for identical directions; Keras ``CosineSimilarity``)."""

    def __init__(self, axis: int = -1, reduction: str | None = "sum_over_batch_size", name: str = "cosine_similarity",
                 dtype: Any = None):
        super().__init__(cosine_similarity, name=name, reduction=reduction, dtype=dtype, axis=axis)
        self.axis = axis

    def get_config(self) -> dict[str, Any]:
        return Loss.get_config(self)   # Keras leaves ``axis`` out of the config


class BinaryFocalCrossentropy(_ProbabilisticLoss):
    """Focal binary crossentropy: down-weights easy examples by ``(1 - p_t) ** gamma``.

    Args:
        apply_class_balancing: weight positives by ``alpha`` and negatives by ``1 - alpha``.
        alpha, gamma: the balancing weight and the focusing exponent.
        from_logits, label_smoothing, axis, reduction, name, dtype: as in ``BinaryCrossentropy``.
    """

    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25, gamma: float = 2.0,
                 from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str = "binary_focal_crossentropy",
                 dtype: Any = None):
        super().__init__(binary_focal_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         apply_class_balancing=apply_class_balancing, alpha=alpha, gamma=gamma,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits


class CategoricalFocalCrossentropy(_ProbabilisticLoss):
    """Focal categorical crossentropy: ``alpha * (1 - p) ** gamma`` times the crossentropy of each class.

    Args:
        alpha, gamma: the weighting factor and the focusing exponent.
        from_logits, label_smoothing, axis, reduction, name, dtype: as in ``CategoricalCrossentropy``.
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, from_logits: bool = False,
                 label_smoothing: float = 0.0, axis: int = -1, reduction: str | None = "sum_over_batch_size",
                 name: str = "categorical_focal_crossentropy", dtype: Any = None):
        super().__init__(categorical_focal_crossentropy, name=name, reduction=reduction, dtype=dtype, alpha=alpha,
                         gamma=gamma, from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits


# ------------------------------------------------------------------------------------------ lookup
def _snake(name: str) -> str:
    """Keras's class-name rule: ``MeanSquaredError`` -> ``mean_squared_error``, ``AUC`` -> ``auc``."""
    import re

    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_CLASSES: dict[str, type[Loss]] = {
    c.__name__: c for c in (SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy,
                            MeanSquaredError, MeanAbsoluteError, Huber, Hinge, SquaredHinge, CategoricalHinge,
                            LogCosh, Poisson, KLDivergence, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
                            CosineSimilarity, BinaryFocalCrossentropy, CategoricalFocalCrossentropy)
}
#: String identifiers accepted by ``get`` (and ``compile(loss=...)``), as in Keras.
ALIASES: dict[str, Callable[[], Loss]] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError, "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
    "log_cosh": LogCosh, "logcosh": LogCosh, "poisson": Poisson,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "KLD": KLDivergence,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError, "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError, "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError,
    "cosine_similarity": CosineSimilarity,
    "binary_focal_crossentropy": BinaryFocalCrossentropy,
    "categorical_focal_crossentropy": CategoricalFocalCrossentropy,
    **_CLASSES,
}
_FUNCTIONS: dict[Callable[..., Any], Callable[[], Loss]] = {
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    binary_crossentropy: BinaryCrossentropy,
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    huber: Huber,
    hinge: Hinge, squared_hinge: SquaredHinge, categorical_hinge: CategoricalHinge, log_cosh: LogCosh,
    poisson: Poisson, kl_divergence: KLDivergence, mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError, cosine_similarity: CosineSimilarity,
    binary_focal_crossentropy: BinaryFocalCrossentropy, categorical_focal_crossentropy: CategoricalFocalCrossentropy,
}


def get(identifier: Any, argument: str = "loss") -> Loss | None:
    """A ``Loss`` from a name, a config dict, a loss function or a ``Loss`` (returned as is).

    Keras's own loss functions map to their classes (so ``'mse'`` and ``keras.losses.mse`` behave the
    same); other callables ``fn(y_true, y_pred)`` are wrapped. Unknown names raise a ``ValueError`` that
    lists the valid ones.

    Example:
        >>> get("mse").name
        'mean_squared_error'
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        factory = ALIASES.get(identifier)
        if factory is None:
            raise ValueError(f"Unknown loss for argument `{argument}`: {identifier!r}. Valid choices are: "
                             f"{sorted(ALIASES)} (or a keras-style Loss object or a function "
                             f"fn(y_true, y_pred)). Received: {argument}={identifier!r}")
        return factory()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _CLASSES.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"Unknown loss class {identifier['class_name']!r} for argument `{argument}`. "
                             f"Valid choices are: {sorted(_CLASSES)}.")
        return cls.from_config(identifier.get("config", {}))
    if identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise ValueError(f"Could not interpret loss identifier for argument `{argument}`. "
                     f"Received: {argument}={identifier!r}")


def serialize(loss: Loss) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for a built-in loss."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}

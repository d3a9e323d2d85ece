"""The loss functions (``keras.losses.mean_squared_error``, ...): per-sample losses on graph values or arrays."""
from __future__ import annotations

__all__ = ["sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy", "mean_squared_error", "mean_absolute_error", "huber", "mse", "mae", "hinge", "squared_hinge", "categorical_hinge", "log_cosh", "poisson", "kl_divergence", "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "cosine_similarity", "binary_focal_crossentropy", "categorical_focal_crossentropy", "mape", "msle", "kld", "logcosh"]

import warnings
from typing import Any

import numpy as np
import onnx

from .. import backend_config
from ..graph import Value, np_dtype
from .values import (EPSILON, _is_symbolic, _like, _num_classes, _probabilities, _rank, cast, elementwise, floating,
                     reduce, run_eagerly, squeeze, squeeze_or_expand_to_same_rank)


_INT64 = onnx.TensorProto.INT64


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
    y_pred = floating(y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    d = elementwise("Sub", y_true, y_pred)
    return reduce("ReduceMean", elementwise("Mul", d, d), -1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(abs(y_true - y_pred), axis=-1)``."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(mean_absolute_error, y_true, y_pred)
    y_pred = floating(y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    return reduce("ReduceMean", elementwise("Abs", elementwise("Sub", y_true, y_pred)), -1)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Any:
    """Per-sample Huber loss: ``0.5 e^2`` where ``|e| <= delta``, else ``delta |e| - 0.5 delta^2``; mean
    over the last axis."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(huber, y_true, y_pred, delta=delta)
    y_pred = floating(y_pred)
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
    y_pred = floating(y_pred)
    return reduce("ReduceMean", _margin(y_true, y_pred), -1)


def squared_hinge(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(square(maximum(1 - y_true * y_pred, 0)), axis=-1)``; 0/1 labels count as -1/1."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(squared_hinge, y_true, y_pred)
    y_pred = floating(y_pred)
    m = _margin(y_true, y_pred)
    return reduce("ReduceMean", elementwise("Mul", m, m), -1)


def categorical_hinge(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``maximum(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` (one-hot labels)."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(categorical_hinge, y_true, y_pred)
    y_pred = floating(y_pred)
    y_true = cast(y_true, y_pred.dtype)
    pos = reduce("ReduceSum", elementwise("Mul", y_true, y_pred), -1)
    neg = reduce("ReduceMax", elementwise("Mul", elementwise("Sub", _f(y_pred, 1.0), y_true, shape=y_true.shape),
                                          y_pred), -1)
    return elementwise("Relu", elementwise("Add", elementwise("Sub", neg, pos), _f(y_pred, 1.0)))


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``100 * mean(abs((y_true - y_pred) / maximum(abs(y_true), 1e-7)), axis=-1)``."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(mean_absolute_percentage_error, y_true, y_pred)
    y_pred = floating(y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    scale = elementwise("Max", elementwise("Abs", y_true), _f(y_true, EPSILON))
    diff = elementwise("Abs", elementwise("Div", elementwise("Sub", y_true, y_pred), scale))
    return elementwise("Mul", reduce("ReduceMean", diff, -1), _f(y_pred, 100.0))


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), axis=-1)``."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(mean_squared_logarithmic_error, y_true, y_pred)
    y_pred = floating(y_pred)
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
    y_pred = floating(y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    product = elementwise("Mul", l2_normalize(y_true, axis), l2_normalize(y_pred, axis))
    return elementwise("Neg", reduce("ReduceSum", product, axis))


def log_cosh(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(log(cosh(y_pred - y_true)), axis=-1)``, in the overflow-free form
    ``x + softplus(-2x) - log(2)``."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(log_cosh, y_true, y_pred)
    y_pred = floating(y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(cast(y_true, y_pred.dtype), y_pred)
    x = elementwise("Sub", y_pred, y_true)
    per = elementwise("Sub", elementwise("Add", x, elementwise("Softplus", elementwise("Mul", x, _f(x, -2.0)))),
                      _f(x, float(np.log(2.0))))
    return reduce("ReduceMean", per, -1)


def kl_divergence(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``sum(y_true * log(y_true / y_pred), axis=-1)``, both clipped to [1e-7, 1]."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(kl_divergence, y_true, y_pred)
    y_pred = floating(y_pred)
    y_true = cast(y_true, y_pred.dtype)
    t = elementwise("Clip", y_true, _f(y_true, EPSILON), _f(y_true, 1.0))
    p = elementwise("Clip", y_pred, _f(y_pred, EPSILON), _f(y_pred, 1.0))
    return reduce("ReduceSum", elementwise("Mul", t, elementwise("Log", elementwise("Div", t, p))), -1)


def poisson(y_true: Any, y_pred: Any) -> Any:
    """Per-sample ``mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)``."""
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(poisson, y_true, y_pred)
    y_pred = floating(y_pred)
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

"""Connectionist Temporal Classification: ``ctc_loss_values`` (the graph of ``keras.ops.ctc_loss``), the Keras
loss function ``ctc`` and the loss class ``CTC``.

The loss is the negative log-likelihood of the label sequence summed over every alignment, computed by the
forward (alpha) recursion in log space over the extended label sequence ``blank l1 blank l2 ... blank``. The
recursion is one ONNX ``Scan`` over time, so the number of time steps may be known only at run time, and the
autodiff engine differentiates it through the Scan rule (exact gradients, no custom backward).

Conventions are those of Keras 3 on the TensorFlow backend (``tf.nn.ctc_loss`` with dense labels): ``output``
holds logits (a log-softmax is taken inside), ``mask_index`` is the blank, labels past ``target_length`` are
ignored, time steps past ``output_length`` are ignored. Where no alignment exists (a label longer than its
time steps allow), TensorFlow does not return ``inf``: its final-state weights use ``log(1e-307)`` in place
of ``log(0)``, which gives a finite loss near 707 plus the best partial alignment's cost, and finite
gradients. The same weights are used here, so the values agree there too.

Example:
    >>> import numpy as np
    >>> y_true = np.array([[1, 2]])
    >>> y_pred = np.zeros((1, 4, 3), np.float32)
    >>> round(float(ctc(y_true, y_pred)[0]), 4)   # 15 alignments of probability 3**-4: 4 log 3 - log 15
    1.6864
"""
from __future__ import annotations

__all__ = ["ctc_loss_values", "ctc", "CTC"]

from typing import Any

import numpy as np
import onnx

from ..graph import GraphBuilder, Value, np_dtype
from .loss import Loss, LossFunctionWrapper
from .values import _is_symbolic, _rank, cast, run_eagerly

_INT64 = onnx.TensorProto.INT64
_FLOAT = onnx.TensorProto.FLOAT
_LOW_FLOATS = (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)
#: TensorFlow's stand-in for log(0) in the final-state weights (``log(1e-307)`` cast to float32).
LOG_ZERO = float(np.float32(np.log(1e-307)))
#: Unreachable states: far below any path's log-probability, yet finite, so no ``inf - inf`` reaches a gradient.
_UNREACHABLE = -1e30


def _i64(b: GraphBuilder, values: Any) -> Value:
    return b.const(np.asarray(values, np.int64))


def _interleave(b: GraphBuilder, even: Value, odd: Value, last: Value) -> Value:
    """``(B, L)`` and ``(B, L)`` and ``(B, 1)`` -> ``(B, 2L + 1)``: ``even[0] odd[0] even[1] ... odd[L-1] last``."""
    pairs = b.op("Concat", [b.op("Unsqueeze", [even, _i64(b, [2])]), b.op("Unsqueeze", [odd, _i64(b, [2])])], axis=2)
    return b.op("Concat", [b.op("Reshape", [pairs, _i64(b, [0, -1])]), last], axis=1)


def _extended_labels(b: GraphBuilder, labels: Value, blank: Value) -> tuple[Value, Value]:
    """The extended sequence ``(batch, 2L + 1)`` (blanks around and between the labels) and where the skip
    transition ``s - 2 -> s`` is blocked: into every blank, and into a label equal to the one before it
    (TensorFlow compares the raw labels, padding included, so the values agree where no path exists)."""
    blanks = b.op("Expand", [blank, b.op("Shape", [labels])])
    column = b.op("Slice", [blanks, _i64(b, [0]), _i64(b, [1]), _i64(b, [1])])
    extended = _interleave(b, blanks, labels, column)
    # the first label's skip would come from before state 0, which the recursion's padding makes unreachable
    before = b.op("Concat", [b.op("Slice", [labels, _i64(b, [0]), _i64(b, [1]), _i64(b, [1])]),
                             b.op("Slice", [labels, _i64(b, [0]), _i64(b, [-1]), _i64(b, [1])])], axis=1)
    repeated = b.op("Equal", [labels, before])
    always = b.op("Expand", [b.const(np.asarray(True)), b.op("Shape", [labels])])
    blocked = _interleave(b, always, repeated, b.op("Expand", [b.const(np.asarray(True)), b.op("Shape", [column])]))
    return extended, blocked


def _alpha_step(sb: GraphBuilder, alpha: Value, emit: Value, valid: Value, skip_penalty: Value,
                pad1: Value, pad2: Value) -> Value:
    """One time step of the forward recursion: each state sums (in log space) the paths that stay, come from
    the state before it, or skip a blank from two states before; then adds its emission. Rows whose sequence
    has ended (``valid`` false) keep their alphas."""
    def shifted(pad: Value, by: int) -> Value:
        joined = sb.op("Concat", [pad, alpha], axis=1)
        return sb.op("Slice", [joined, _i64(sb, [0]), _i64(sb, [-by]), _i64(sb, [1])])

    from_skip = sb.op("Add", [shifted(pad2, 2), skip_penalty])
    three = sb.op("Concat", [sb.op("Unsqueeze", [v, _i64(sb, [2])]) for v in (alpha, shifted(pad1, 1), from_skip)],
                  axis=2)
    summed = sb.op("ReduceLogSumExp", [three, _i64(sb, [2])], keepdims=0)
    return sb.op("Where", [valid, sb.op("Add", [summed, emit]), alpha])


def _forward(b: GraphBuilder, emissions: Value, valid: Value, alpha0: Value, skip_penalty: Value) -> Value:
    """The alphas after the last time step: one ``Scan`` over the time-major ``emissions`` ``(T, B, S)``."""
    dtype = alpha0.dtype
    unreachable = b.const(np.asarray(_UNREACHABLE, np_dtype(dtype)))
    rows = b.op("Slice", [b.op("Shape", [alpha0]), _i64(b, [0]), _i64(b, [1])])
    pad1 = b.op("Expand", [unreachable, b.op("Concat", [rows, _i64(b, [1])], axis=0)])
    pad2 = b.op("Expand", [unreachable, b.op("Concat", [rows, _i64(b, [2])], axis=0)])
    sb = b.body_builder()
    alpha = sb.body_input("ctc_alpha", dtype, None)
    emit = sb.body_input("ctc_emission", dtype, None)
    ok = sb.body_input("ctc_valid", onnx.TensorProto.BOOL, None)
    new = _alpha_step(sb, alpha, emit, ok, skip_penalty, pad1, pad2)
    sb.output(new)
    body = sb.to_graph(name=b.fresh("ctc_body"))
    out = b.op("Scan", [alpha0, emissions, valid], body=body, num_scan_inputs=2, dtype=dtype)
    out.shape = alpha0.shape
    return out


def ctc_loss_values(target: Value, output: Value, target_length: Value, output_length: Value,
                    mask_index: int = 0) -> Value:
    """The per-sample CTC loss ``(batch,)`` of logits ``output`` ``(batch, T, classes)`` for integer labels
    ``target`` ``(batch, L)``, on graph values (``keras.ops.ctc_loss`` calls it).

    Float16 and bfloat16 logits are computed in float32 (the result is float32, as Keras's); float64 stays
    float64.
    """
    b = output.builder
    out_type = _FLOAT if output.dtype in _LOW_FLOATS or not output.is_float else output.dtype
    logits = cast(output, out_type)
    labels = cast(target, _INT64)
    classes = b.op("Gather", [b.op("Shape", [logits]), _i64(b, [2])], axis=0)
    blank = _i64(b, mask_index)
    if mask_index < 0:   # Keras counts a negative mask_index from the end of the classes
        blank = b.op("Add", [blank, b.op("Squeeze", [classes])])
    extended, blocked = _extended_labels(b, labels, blank)
    # emissions (B, T, S): log-probabilities of each state's symbol, a product with the one-hot symbols
    log_probs = b.op("LogSoftmax", [logits], axis=-1)
    ids = b.op("Unsqueeze", [b.op("Range", [_i64(b, 0), b.op("Squeeze", [classes]), _i64(b, 1)]), _i64(b, [0, 2])])
    one_hot = b.op("Cast", [b.op("Equal", [b.op("Unsqueeze", [extended, _i64(b, [1])]), ids])], to=out_type)  # (B,C,S)
    emissions = b.op("Transpose", [b.op("MatMul", [log_probs, one_hot])], perm=[1, 0, 2])
    zero = b.const(np.asarray(0.0, np_dtype(out_type)))
    unreachable = b.const(np.asarray(_UNREACHABLE, np_dtype(out_type)))
    skip_penalty = b.op("Where", [blocked, unreachable, zero])
    states = b.op("Shape", [extended])
    positions = b.op("Range", [_i64(b, 0), b.op("Gather", [states, _i64(b, 1)], axis=0), _i64(b, 1)])
    alpha0 = b.op("Where", [b.op("Equal", [positions, _i64(b, 0)]), zero,
                            b.op("Expand", [unreachable, states])])                     # only state 0 at t = -1
    steps = b.op("Gather", [b.op("Shape", [logits]), _i64(b, 1)], axis=0)
    times = b.op("Range", [_i64(b, 0), steps, _i64(b, 1)])
    lengths = b.op("Unsqueeze", [cast(output_length, _INT64), _i64(b, [0])])            # (1, B)
    valid = b.op("Unsqueeze", [b.op("Less", [b.op("Unsqueeze", [times, _i64(b, [1])]), lengths]), _i64(b, [2])])
    alpha = _forward(b, emissions, valid, alpha0, skip_penalty)
    # the paths end in the last label or the blank after it; other states weigh log(1e-307), as in TF
    last = b.op("Mul", [b.op("Unsqueeze", [cast(target_length, _INT64), _i64(b, [1])]), _i64(b, 2)])
    final = b.op("Or", [b.op("Equal", [positions, last]), b.op("Equal", [positions, b.op("Sub", [last, _i64(b, 1)])])])
    weights = b.op("Where", [final, zero, b.const(np.asarray(LOG_ZERO, np_dtype(out_type)))])
    total = b.op("ReduceLogSumExp", [b.op("Add", [alpha, weights]), _i64(b, [1])], keepdims=0)
    loss = b.op("Neg", [total], dtype=out_type)
    loss.shape = (output.shape[0],) if output.shape is not None else None
    return loss


def ctc(y_true: Any, y_pred: Any) -> Any:
    """Keras's ``keras.losses.ctc``: per-sample CTC loss of logits ``y_pred`` ``(batch, T, classes)`` for labels
    ``y_true`` ``(batch, max_length)`` padded with 0, the blank; every sample uses all ``T`` steps.

    Example:
        >>> import numpy as np
        >>> ctc(np.array([[1, 1, 0]]), np.zeros((1, 5, 3), np.float32)).shape
        TensorShape([1])
    """
    if not _is_symbolic(y_true, y_pred):
        return run_eagerly(ctc, y_true, y_pred)
    if _rank(y_true) is not None and _rank(y_true) != 2:
        raise ValueError("Targets `y_true` are expected to be a tensor of shape `(batch_size, max_length)` in "
                         f"integer format. Received: y_true.shape={y_true.shape}")
    if _rank(y_pred) is not None and _rank(y_pred) != 3:
        raise ValueError("Logits `y_pred` are expected to be a tensor of shape `(batch_size, max_length, "
                         f"num_classes)`. Received: y_pred.shape={y_pred.shape}")
    b = y_pred.builder
    labels = cast(y_true, _INT64)
    shape = b.op("Shape", [y_pred])
    steps = b.op("Expand", [b.op("Gather", [shape, _i64(b, 1)], axis=0), b.op("Slice", [shape, _i64(b, [0]),
                                                                                      _i64(b, [1])])])
    label_length = b.op("ReduceSum", [cast(b.op("Not", [b.op("Equal", [labels, _i64(b, 0)])]), _INT64),
                                      _i64(b, [-1])], keepdims=0)
    return ctc_loss_values(labels, y_pred, label_length, steps, mask_index=0)


class CTC(LossFunctionWrapper):
    """Keras's ``keras.losses.CTC``: ``ctc`` as a loss object. Targets are integer label sequences
    ``(batch, max_length)`` padded with 0 (the blank), whatever the prediction's time length.

    Example:
        >>> import numpy as np
        >>> loss = CTC()
        >>> round(float(loss(np.array([[1, 2]]), np.zeros((1, 4, 3), np.float32))), 4)
        1.6864
    """

    #: compiled steps feed the targets as ``(batch, max_length)`` int64 sequences, not shaped like the output
    sequence_labels = True

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = "ctc", dtype: Any = None):
        super().__init__(ctc, name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: Value, y_pred: Value) -> Value:
        return ctc(y_true, y_pred)   # no rank matching: the labels and logits differ in rank by design

    def get_config(self) -> dict[str, Any]:
        return Loss.get_config(self)

"""The inference form of the built-in recurrent layers: one fused ONNX ``RNN`` / ``LSTM`` / ``GRU`` node.

Fused nodes run a whole sequence in one optimized kernel (onnxruntime's CPU kernels, cuDNN on CUDA) but
have no gradient rule, so training programs always use the ``Scan`` form. Weight layouts are converted in
the graph (ONNX folds them once when the weights are initializers):

* LSTM: Keras gates i, f, c, o in kernel columns -> ONNX i, o, f, c in ``W`` / ``R`` rows; Keras has one
  bias, ONNX two (``Wb`` then ``Rb``): ``Rb = 0``.
* GRU: both use z, r, h. ``reset_after=True`` is ONNX ``linear_before_reset=1`` with Keras's ``(2, 3u)``
  bias as ``[Wb, Rb]``; ``reset_after=False`` is ``linear_before_reset=0`` with ``Rb = 0``.
* SimpleRNN: ``W = kernel^T``, ``R = recurrent_kernel^T``, ``Rb = 0``.

ONNX (and onnxruntime) need time-major inputs (``layout=0``), so the sequence is transposed in and out.
"""
from __future__ import annotations

__all__ = ["fusable", "fused_forward"]

from typing import Any

import numpy as np

from ... import activations as activations_mod
from ...graph import Value, np_dtype
from ...graph import emit as layer_ops
from . import _ops
from .cells import GRUCell, LSTMCell, SimpleRNNCell

_ONNX_ACTIVATIONS = {activations_mod.tanh: "Tanh", activations_mod.sigmoid: "Sigmoid", activations_mod.relu: "Relu"}
# Keras column blocks in ONNX gate order.
_LSTM_GATES = (0, 3, 1, 2)  # ONNX i, o, f, c <- Keras i, f, c, o


def fusable(cell: Any) -> str | None:
    """Why ``cell`` cannot run as a fused node, or ``None`` when it can."""
    if type(cell) not in (SimpleRNNCell, LSTMCell, GRUCell):
        return f"{type(cell).__name__} is not a built-in cell (SimpleRNNCell, LSTMCell, GRUCell)"
    for arg in cell._activation_args:
        if getattr(cell, arg) not in _ONNX_ACTIVATIONS:
            return f"{arg}={activations_mod.serialize(getattr(cell, arg))!r} has no ONNX recurrent activation"
    return None


def _weights(cell: Any) -> tuple[Value, Value, Value | None, str, dict]:
    """ONNX ``W``, ``R``, ``B``, the op type and its attributes for ``cell``."""
    kernel = cell.kernel.__onnx_value__()
    rec = cell.recurrent_kernel.__onnx_value__()
    b = kernel.builder
    u = cell.units
    width = cell.gates * u
    dtype = np_dtype(kernel.dtype)

    def rows(w: Value, order: tuple[int, ...] | None) -> Value:
        # (in, gates*u) Keras columns -> (1, gates*u, in) ONNX rows, gate blocks reordered.
        wt = b.op("Transpose", [w], perm=[1, 0])
        if order is not None:
            idx = np.concatenate([np.arange(g * u, (g + 1) * u) for g in order]).astype(np.int64)
            wt = b.op("Gather", [wt, b.const(idx)], axis=0)
        return b.op("Unsqueeze", [wt, layer_ops.ints(b, [0])])

    order = _LSTM_GATES if isinstance(cell, LSTMCell) else None
    W, R = rows(kernel, order), rows(rec, order)
    B = None
    attrs: dict[str, Any] = {"hidden_size": u}
    if cell.use_bias:
        bias = cell.bias.__onnx_value__()
        if isinstance(cell, GRUCell) and cell.reset_after:
            B = b.op("Reshape", [bias, layer_ops.ints(b, [1, 2 * width])])  # [Wb, Rb] already
        else:
            if order is not None:
                idx = np.concatenate([np.arange(g * u, (g + 1) * u) for g in order]).astype(np.int64)
                bias = b.op("Gather", [bias, b.const(idx)], axis=0)
            both = b.op("Concat", [bias, b.const(np.zeros(width, dtype))], axis=0)
            B = b.op("Unsqueeze", [both, layer_ops.ints(b, [0])])
    if isinstance(cell, LSTMCell):
        op = "LSTM"
        acts = [cell.recurrent_activation, cell.activation, cell.activation]
    elif isinstance(cell, GRUCell):
        op = "GRU"
        acts = [cell.recurrent_activation, cell.activation]
        attrs["linear_before_reset"] = int(cell.reset_after)
    else:
        op = "RNN"
        acts = [cell.activation]
    attrs["activations"] = [_ONNX_ACTIVATIONS[a] for a in acts]
    return W, R, B, op, attrs


def fused_forward(cell: Any, x: Value, states: list[Value] | None, go_backwards: bool, return_sequences: bool,
                  time_order: bool = False) -> tuple[Value | None, list[Value]]:
    """Run ``cell`` over ``x (batch, time, in)`` as one fused node.

    Args:
        states: initial states (``None``: zeros, the ONNX default).
        time_order: with ``go_backwards``, return the sequence in input time order instead of Keras's
            reversed processing order (``Bidirectional`` wants it so).

    Returns:
        ``(sequence (batch, time, units) or None, final states)``.
    """
    b = x.builder
    W, R, B, op, attrs = _weights(cell)
    x_tm = layer_ops.transpose(x, (1, 0, 2))
    inputs: list[Any] = [x_tm, W, R, B, None]
    if states is not None:
        inputs += [b.op("Unsqueeze", [s, layer_ops.ints(b, [0])]) for s in states]
    while inputs[-1] is None:
        inputs.pop()
    n_out = 3 if op == "LSTM" else 2
    outs = b.op(op, inputs, outputs=n_out, direction="reverse" if go_backwards else "forward", **attrs)
    zero = layer_ops.ints(b, [0])
    finals = [b.op("Squeeze", [o, zero], dtype=x.dtype, shape=(x.shape[0] if x.shape else None, cell.units))
              for o in outs[1:]]
    seq = None
    if return_sequences:
        y = b.op("Squeeze", [outs[0], layer_ops.ints(b, [1])], dtype=x.dtype)
        if go_backwards and not time_order:
            # ONNX stores a reverse pass at the input's time index; Keras returns processing order.
            y = _ops.flip_time(y, 0)
        seq = layer_ops.transpose(y, (1, 0, 2))
    return seq, finals

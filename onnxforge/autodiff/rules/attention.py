"""The ``Attention`` op (opset 23, 24): differentiated through its definition, written out NaN-safe.

``Attention`` is lowered before the reverse walk (``lowering.py``) into the ops its ONNX definition
uses -- heads split from 3D inputs, the KV cache concatenated, KV heads repeated for grouped-query
attention, ``softmax(scale * Q K^T [softcap] + bias) V`` -- and the engine differentiates those. The
composition follows the ONNX reference implementation (``onnx/reference/ops/op_attention.py``) in every
attribute and input: ``is_causal`` (bottom-right aligned: key ``j`` is visible to query ``i`` iff
``j <= i + offset``, the offset being the cache length, or ``nonpad_kv_seqlen - q_len``), ``scale``,
``softcap`` (before the mask), boolean or additive ``attn_mask`` (a short last axis padded with
"masked"), ``past_key`` / ``past_value``, ``nonpad_kv_seqlen``, ``q_num_heads`` / ``kv_num_heads``,
``softmax_precision`` and every ``qk_matmul_output_mode``.

Two choices keep gradients finite where the definition's ``-inf`` would not: masked scores get a large
finite negative (``_NEG``) instead of ``-inf``, and a query row with no visible key (ONNX sets its output
to 0) is zeroed by multiplying with a 0/1 row flag rather than by ``Where`` on a NaN row. Softmax of such a
row is then finite, so its gradient is exactly 0 instead of NaN, and NaN never reaches ``dK`` / ``dV``
through the other rows.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ...graph import GraphBuilder, Value, np_dtype
from ..lowering import register_lowering

__all__: list[str] = []

_I64 = onnx.TensorProto.INT64


def _neg(dtype: int) -> float:
    # Large enough that exp(score + _neg) is exactly 0, small enough that adding two or three of them to a
    # score never overflows to -inf (float16's range ends at 65504).
    return -3.0e4 if dtype == onnx.TensorProto.FLOAT16 else -1.0e30


def _i64(b: GraphBuilder, values) -> Value:
    return b.const(np.asarray(values, np.int64))


def _split_heads(b: GraphBuilder, x: Value, heads: int) -> Value:
    """``(B, L, heads * H) -> (B, heads, L, H)``."""
    return b.op("Transpose", [b.op("Reshape", [x, _i64(b, [0, 0, heads, -1])])], perm=[0, 2, 1, 3])


def _repeat_heads(b: GraphBuilder, kv: Value, q: Value) -> Value:
    """Repeat each KV head ``q_heads / kv_heads`` times in place (h0, h0, h1, h1, ...), as grouped-query
    attention reads them. Nothing happens when the head counts are known and equal."""
    qh = q.shape[1] if q.shape is not None else None
    kh = kv.shape[1] if kv.shape is not None else None
    if isinstance(qh, int) and qh == kh:
        return kv
    if isinstance(qh, int) and isinstance(kh, int):
        group, heads = _i64(b, [qh // kh]), _i64(b, [qh])
    else:
        heads = b.op("Shape", [q], start=1, end=2)
        group = b.op("Div", [heads, b.op("Shape", [kv], start=1, end=2)])
    one = _i64(b, [1])
    expanded = b.op("Expand", [b.op("Unsqueeze", [kv, _i64(b, [2])]),
                               b.op("Concat", [one, one, group, one, one], axis=0)])
    target = b.op("Concat", [b.op("Shape", [kv], start=0, end=1), heads, b.op("Shape", [kv], start=2)], axis=0)
    return b.op("Reshape", [expanded, target])


def _blocked_bias(b: GraphBuilder, allowed: Value, dtype: int) -> Value:
    """0 where ``allowed``, -inf elsewhere (the additive form of a boolean mask)."""
    return b.op("Where", [allowed, b.const(np.asarray(0, np_dtype(dtype))),
                          b.const(np.asarray(-np.inf, np_dtype(dtype)))], dtype=dtype)


def _positions(b: GraphBuilder, length: Value) -> Value:
    """``arange(length)`` for a 1-element int64 ``length``."""
    return b.op("Range", [_i64(b, 0), b.op("Squeeze", [length, _i64(b, [0])]), _i64(b, 1)])


@register_lowering("Attention")
def _attention(b: GraphBuilder, node: onnx.NodeProto) -> list[Value | None]:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def get(i: int) -> Value | None:
        return b.value(node.input[i]) if i < len(node.input) and node.input[i] else None

    q, k, v, mask, past_k, past_v, nonpad = (get(i) for i in range(7))
    if q.rank is None or q.dtype is None:
        raise ValueError(f"Attention node {node.name!r}: the rank and type of Q must be known to differentiate "
                         f"it. Received: {q!r}")
    dtype = q.dtype
    three_d = q.rank == 3
    if three_d:
        qh, kvh = attrs.get("q_num_heads"), attrs.get("kv_num_heads")
        if not qh or not kvh:
            raise ValueError(f"Attention node {node.name!r}: 3D inputs need q_num_heads and kv_num_heads. "
                             f"Received: q_num_heads={qh!r}, kv_num_heads={kvh!r}")
        q4, k4, v4 = _split_heads(b, q, qh), _split_heads(b, k, kvh), _split_heads(b, v, kvh)
        q4.shape = None if q.shape is None else (q.shape[0], qh, q.shape[1], None)
        k4.shape = None if k.shape is None else (k.shape[0], kvh, k.shape[1], None)
    else:
        q4, k4, v4 = q, k, v
    present_k = b.op("Concat", [past_k, k4], axis=2) if past_k is not None else k4
    present_v = b.op("Concat", [past_v, v4], axis=2) if past_v is not None else v4
    if past_k is not None and k4.shape is not None:
        present_k.shape = (k4.shape[0], k4.shape[1], None, k4.shape[3])
    if past_v is not None and v4.shape is not None:
        present_v.shape = (v4.shape[0], v4.shape[1], None, v4.shape[3])

    # Scores, scaled once on Q (the definition scales Q and K by sqrt(scale) each: the same product).
    if "scale" in attrs:
        scale = b.const(np.asarray(attrs["scale"], np_dtype(dtype)))
    elif q4.shape is not None and isinstance(q4.shape[3], int):
        scale = b.const(np.asarray(1.0 / np.sqrt(q4.shape[3]), np_dtype(dtype)))
    else:
        head = b.op("Cast", [b.op("Shape", [q4], start=3, end=4)], to=dtype)
        scale = b.op("Reciprocal", [b.op("Sqrt", [head])])
    kx, vx = _repeat_heads(b, present_k, q4), _repeat_heads(b, present_v, q4)
    scores = b.op("MatMul", [b.op("Mul", [q4, scale]), b.op("Transpose", [kx], perm=[0, 1, 3, 2])])
    qk = {0: scores}
    softcap = float(attrs.get("softcap", 0.0) or 0.0)
    if softcap > 0:
        cap = b.const(np.asarray(softcap, np_dtype(dtype)))
        scores = b.op("Mul", [b.op("Tanh", [b.op("Div", [scores, cap])]), cap])
    qk[1] = scores

    # The additive bias of every mask, -inf where a key is hidden (as the definition builds it).
    q_len = b.op("Shape", [q4], start=2, end=3)
    kv_len = b.op("Shape", [present_k], start=2, end=3)
    parts: list[Value] = []
    if mask is not None:
        if mask.shape is None or not (present_k.shape and mask.shape[-1] == present_k.shape[2]
                                      and isinstance(mask.shape[-1], int)):
            short = b.op("Sub", [kv_len, b.op("Shape", [mask], start=-1)])
            fill = b.const(np.asarray(False)) if mask.dtype == onnx.TensorProto.BOOL \
                else b.const(np.asarray(-np.inf, np_dtype(mask.dtype)))
            mask = b.op("Pad", [mask, b.op("Concat", [_i64(b, [0]), short], axis=0), fill, _i64(b, [-1])],
                        mode="constant", dtype=mask.dtype)
        if mask.dtype == onnx.TensorProto.BOOL:
            parts.append(_blocked_bias(b, mask, dtype))
        else:
            parts.append(mask if mask.dtype == dtype else b.op("Cast", [mask], to=dtype))
    if attrs.get("is_causal", 0):
        rows = b.op("Unsqueeze", [_positions(b, q_len), _i64(b, [1])])  # (L, 1)
        cols = b.op("Unsqueeze", [_positions(b, kv_len), _i64(b, [0])])  # (1, T)
        if past_k is not None:
            rows = b.op("Add", [rows, b.op("Squeeze", [b.op("Shape", [past_k], start=2, end=3), _i64(b, [0])])])
        elif nonpad is not None:  # per batch: (B, 1, L, 1)
            offset = b.op("Sub", [b.op("Cast", [nonpad], to=_I64), b.op("Squeeze", [q_len, _i64(b, [0])])])
            rows = b.op("Add", [rows, b.op("Reshape", [offset, _i64(b, [-1, 1, 1, 1])])])
        parts.append(_blocked_bias(b, b.op("Not", [b.op("Less", [rows, cols])]), dtype))
    if nonpad is not None:
        visible = b.op("Less", [b.op("Unsqueeze", [_positions(b, kv_len), _i64(b, [0])]),
                                b.op("Unsqueeze", [b.op("Cast", [nonpad], to=_I64), _i64(b, [1])])])
        parts.append(_blocked_bias(b, b.op("Reshape", [visible, _i64(b, [0, 1, 1, -1])]), dtype))
    keep_rows = None
    if parts:
        raw = parts[0]
        for p in parts[1:]:
            raw = b.op("Add", [raw, p])
        neg = b.const(np.asarray(_neg(dtype), np_dtype(dtype)))
        scores = b.op("Add", [scores, b.op("Max", [raw, neg])])
        # A row whose every key is hidden has output 0 (its bias is -inf throughout).
        row_max = b.op("ReduceMax", [raw, _i64(b, [-1])], keepdims=1)
        hidden = b.op("Equal", [row_max, b.const(np.asarray(-np.inf, np_dtype(dtype)))])
        keep_rows = b.op("Cast", [b.op("Not", [hidden])], to=dtype)
    qk[2] = scores

    precision = attrs.get("softmax_precision") or dtype
    probs = scores if precision == dtype else b.op("Cast", [scores], to=precision)
    probs = b.op("Softmax", [probs], axis=-1)
    if precision != dtype:
        probs = b.op("Cast", [probs], to=dtype)
    if keep_rows is not None:
        probs = b.op("Mul", [probs, keep_rows])
    qk[3] = probs

    y = b.op("MatMul", [probs, vx])
    if three_d:
        y = b.op("Reshape", [b.op("Transpose", [y], perm=[0, 2, 1, 3]), _i64(b, [0, 0, -1])])
    mode = int(attrs.get("qk_matmul_output_mode", 0))
    if mode not in qk:
        raise ValueError(f"Attention node {node.name!r}: qk_matmul_output_mode must be 0, 1, 2 or 3. "
                         f"Received: {mode}")
    return [y, present_k, present_v, qk[mode]]

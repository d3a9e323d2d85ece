"""The row-independence rules, one per ONNX op family: how each op moves the axis that carries the batch rows,
or taints the graph (rows mixed)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from .row_values import CONST, Rows, Shape, _Taint, _attr, _is_const, _label, _norm, _rows

if TYPE_CHECKING:  # the analyzer calls the rules; they only name its type
    from .row_independence import _Analyzer


# ------------------------------------------------------------------------------------------ rules
def _unary(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    s = ins[0]
    if isinstance(s, Shape):
        if node.op_type in ("Cast", "Identity"):
            return [s]
        if "B" in s.elems:
            an.fail(node, "computes with the batch size")
        return [Shape(tuple("D" for _ in s.elems), s.scalar)]
    return [s] * len(node.output)


def _identity(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    return [ins[0]] * len(node.output)


def _broadcast(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    if any(isinstance(s, Shape) and "B" in s.elems for s in ins):
        an.fail(node, "computes with the batch size")
    rows = [(name, s) for name, s in zip(node.input, ins) if isinstance(s, Rows)]
    out_rank = max(an.rank(name) for name in node.input if name)
    positions = {out_rank - an.rank(name) + s.axis for name, s in rows}
    if len(positions) != 1:
        an.fail(node, "combines inputs whose batch axes do not line up")
    p = positions.pop()
    for name, s in zip(node.input, ins):
        if not name or isinstance(s, Rows):
            continue
        offset = p - (out_rank - an.rank(name))
        if offset >= 0:
            dims = an.dims.get(name)
            if dims is None or dims[offset] != 1:
                an.fail(node, f"broadcasts '{name}' along the batch axis")
    return [Rows(p)]


def _batch_first(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    if _rows(ins[0], node, an) != 0 or any(not _is_const(s) for s in ins[1:] if s is not None):
        an.fail(node, "does not keep the batch on axis 0 with constant parameters")
    if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
        return [Rows(0), _Taint(f"{_label(node)}'s Indices count across the whole batch")]
    return [Rows(0)] * len(node.output)


def _batch_norm(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    if _attr(node, "training_mode", 0):
        an.fail(node, "normalizes with statistics of the batch (training_mode=1)")
    return _batch_first(an, node, ins)[:1] + [_Taint(f"{_label(node)} running statistics")] * (len(node.output) - 1)


def _dropout(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    if len(node.input) > 2 and node.input[2]:
        mode = an.ints(node.input[2])
        if mode is None or any(mode):
            an.fail(node, "may run in training mode (random masks differ with the batch)")
    return [ins[0]] * len(node.output)


def _matmul(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    (a, b), (na, nb) = ins[:2], node.input[:2]
    ra, rb = an.rank(na), an.rank(nb)
    r = max(ra, rb, 2) if min(ra, rb) >= 2 else max(ra, rb) - 1
    out: set[int] = set()
    if isinstance(a, Rows):
        if ra == 1 or a.axis == ra - 1:
            an.fail(node, "contracts over the batch axis")
        out.add(r - 2 if a.axis == ra - 2 else r - ra + a.axis)
    if isinstance(b, Rows):
        if rb == 1 or b.axis == rb - 2:
            an.fail(node, "contracts over the batch axis")
        out.add(r - 1 if b.axis == rb - 1 else r - rb + b.axis)
    if len(out) != 1 or (isinstance(a, Rows) and isinstance(b, Rows) and
                         (a.axis >= ra - 2 or b.axis >= rb - 2)):
        an.fail(node, "multiplies batch rows with each other")
    p = out.pop()
    for name, s, rank in ((na, a, ra), (nb, b, rb)):
        if not isinstance(s, Rows) and rank > 2 and p < r - 2:   # a constant's own batch dims broadcast
            offset = p - (r - rank)
            dims = an.dims.get(name)
            if offset >= 0 and (dims is None or dims[offset] != 1):
                an.fail(node, f"broadcasts '{name}' along the batch axis")
    return [Rows(p)]


def _gemm(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    a = ins[0]
    want = 1 if _attr(node, "transA", 0) else 0
    if _rows(a, node, an) != want or any(not _is_const(s) for s in ins[1:] if s is not None):
        an.fail(node, "contracts over the batch axis or takes batch-dependent weights")
    if len(node.input) > 2 and node.input[2]:
        dims = an.dims.get(node.input[2])
        if dims is None or (len(dims) == 2 and dims[0] != 1):
            an.fail(node, "adds a bias with one row per batch row")
    return [Rows(0)]


def _softmax(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    a = _rows(ins[0], node, an)
    rank = an.rank(node.input[0])
    default = -1 if an.opset >= 13 else 1
    axis = _norm(_attr(node, "axis", default), rank)
    if an.opset < 13 and axis <= a:   # old Softmax flattens [axis:] into one axis: the batch joins it
        an.fail(node, "normalizes over the batch axis")
    if axis == a:
        an.fail(node, "normalizes over the batch axis")
    return [Rows(a)]


def _norm_axes_from(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    a = _rows(ins[0], node, an)
    rank = an.rank(node.input[0])
    axis = _norm(_attr(node, "axis", -1), rank)
    if a >= axis or any(not _is_const(s) for s in ins[1:] if s is not None):
        an.fail(node, "normalizes over the batch axis")
    return [Rows(a)] * len(node.output)


def _reduce(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    a = _rows(ins[0], node, an)
    rank = an.rank(node.input[0])
    if len(node.input) > 1 and node.input[1]:
        axes = an.ints(node.input[1])
        if axes is None:
            an.fail(node, "reduces over axes known only at run time")
    else:
        axes = _attr(node, "axes", None)
    if not axes:
        if _attr(node, "noop_with_empty_axes", 0):
            return [Rows(a)]
        an.fail(node, "reduces over every axis, the batch included")
    axes = [_norm(x, rank) for x in axes]
    if a in axes:
        an.fail(node, f"reduces over the batch axis {a}")
    keep = _attr(node, "keepdims", 1)
    return [Rows(a if keep else a - sum(x < a for x in axes))]


def _arg(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    a = _rows(ins[0], node, an)
    axis = _norm(_attr(node, "axis", 0), an.rank(node.input[0]))
    if axis == a:
        an.fail(node, "searches along the batch axis")
    return [Rows(a if _attr(node, "keepdims", 1) or axis > a else a - 1)]


def _along(default_axis: int, param_input: int | None = None) -> Callable:
    """Ops acting along one axis (attribute or constant input) that must not be the batch axis."""
    def rule(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
        a = _rows(ins[0], node, an)
        if param_input is not None:
            got = an.ints(node.input[param_input]) if len(node.input) > param_input else None
            if got is None or len(got) != 1:
                an.fail(node, "acts along an axis known only at run time")
            axis = got[0]
        else:
            axis = _attr(node, "axis", default_axis)
        if _norm(axis, an.rank(node.input[0])) == a:
            an.fail(node, "acts along the batch axis")
        return [Rows(a)] * len(node.output)
    return rule


def _transpose(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    a = _rows(ins[0], node, an)
    rank = an.rank(node.input[0])
    perm = list(_attr(node, "perm", None) or range(rank - 1, -1, -1))
    return [Rows(perm.index(a))]


def _flatten(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    a = _rows(ins[0], node, an)
    axis = _norm(_attr(node, "axis", 1), an.rank(node.input[0]))
    if a != 0 or axis < 1:
        an.fail(node, "merges the batch axis with others")
    return [Rows(0)]


def _reshape(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    data, target = ins[0], ins[1]
    if isinstance(data, Shape):
        return [data]
    if not isinstance(target, Shape):
        an.fail(node, "reshapes to a shape known only at run time")
    a = _rows(data, node, an)
    elems = list(target.elems)
    allowzero = _attr(node, "allowzero", 0)
    if a != 0 or not elems or "B" in elems[1:]:
        an.fail(node, "moves the batch axis")
    first = elems[0]
    if first == "B" or (first == 0 and not allowzero):
        return [Rows(0)]
    if first == -1:
        dims = an.dims.get(node.input[0])
        rest = elems[1:]
        if dims is not None and all(isinstance(d, int) for d in dims[1:]) and \
                all(isinstance(e, int) and e > 0 for e in rest) and \
                int(np.prod(dims[1:])) == int(np.prod(rest)):
            return [Rows(0)]
    an.fail(node, "may merge the batch into another axis")
    return []


def _squeeze(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    s = ins[0]
    if isinstance(s, Shape):
        return [Shape(s.elems, scalar=len(s.elems) == 1)]
    a = _rows(s, node, an)
    axes = an.ints(node.input[1]) if len(node.input) > 1 and node.input[1] else _attr(node, "axes", None)
    if not axes:
        an.fail(node, "squeezes every size-1 axis: the batch too when one row comes")
    axes = [_norm(x, an.rank(node.input[0])) for x in axes]
    if a in axes:
        an.fail(node, "squeezes the batch axis")
    return [Rows(a - sum(x < a for x in axes))]


def _unsqueeze(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    s = ins[0]
    axes = an.ints(node.input[1]) if len(node.input) > 1 and node.input[1] else _attr(node, "axes", None)
    if axes is None:
        an.fail(node, "inserts axes known only at run time")
    if isinstance(s, Shape):
        if s.scalar and len(axes) == 1:
            return [Shape(s.elems)]
        if "B" in s.elems:
            an.fail(node, "reshapes the batch size")
        return [CONST]
    a = _rows(s, node, an)
    out_rank = an.rank(node.input[0]) + len(axes)
    inserted = {_norm(x, out_rank) for x in axes}
    original = [k for k in range(out_rank) if k not in inserted]
    return [Rows(original[a])]


def _shape(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    s = ins[0]
    if isinstance(s, Shape):
        return [Shape(() if s.scalar else (len(s.elems),))]
    rank = an.rank(node.input[0])
    dims = an.dims.get(node.input[0]) or (None,) * rank
    elems = tuple("B" if isinstance(s, Rows) and k == s.axis else (d if isinstance(d, int) else "D")
                  for k, d in enumerate(dims))
    start, end = _attr(node, "start", 0), _attr(node, "end", rank)
    return [Shape(elems[slice(_norm(start, rank), _norm(end, rank))])]


def _size(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    if isinstance(ins[0], Rows):
        an.fail(node, "counts the elements of the whole batch")
    return [Shape(("D",), scalar=True)]


def _gather(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    data, idx = ins
    axis = _attr(node, "axis", 0)
    if isinstance(data, Shape) and _is_const(idx):
        picks = an.ints(node.input[1])
        if picks is None:
            if "B" in data.elems:
                an.fail(node, "picks from a shape at run-time positions")
            return [CONST]
        scalar = isinstance(idx, Shape) and idx.scalar
        n = len(data.elems)
        return [Shape(tuple(data.elems[p + n if p < 0 else p] for p in picks), scalar=scalar)]
    rank = an.rank(node.input[0])
    axis = _norm(axis, rank)
    if isinstance(idx, Rows) and _is_const(data):
        return [Rows(axis + idx.axis)]
    if isinstance(data, Rows) and _is_const(idx):
        if axis == data.axis:
            an.fail(node, "picks rows of the batch")
        if data.axis < axis:
            return [Rows(data.axis)]
        return [Rows(data.axis - 1 + an.rank(node.input[1]))]
    an.fail(node, "gathers with batch-dependent data and indices")
    return []


def _concat(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    if all(isinstance(s, Shape) or s == CONST for s in ins):
        if all(isinstance(s, Shape) for s in ins):
            return [Shape(tuple(e for s in ins for e in s.elems))]
        if any(isinstance(s, Shape) and "B" in s.elems for s in ins):
            an.fail(node, "builds a shape from parts this analysis cannot read")
        return [CONST]
    axes = {s.axis for s in ins if isinstance(s, Rows)}
    if len(axes) != 1 or any(not isinstance(s, Rows) for s in ins):
        an.fail(node, "joins batch rows with values that have no batch axis")
    a = axes.pop()
    if _norm(_attr(node, "axis", 0), an.rank(node.input[0])) == a:
        an.fail(node, "concatenates along the batch axis")
    return [Rows(a)]


def _slice(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    data = ins[0]
    starts, ends = (an.ints(node.input[k]) for k in (1, 2))
    axes = an.ints(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    steps = an.ints(node.input[4]) if len(node.input) > 4 and node.input[4] else None
    if starts is None or ends is None or (len(node.input) > 3 and node.input[3] and axes is None) or \
            (len(node.input) > 4 and node.input[4] and steps is None):
        an.fail(node, "slices with bounds known only at run time")
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    if isinstance(data, Shape):
        if axes != [0] or data.scalar:
            an.fail(node, "slices a shape oddly")
        return [Shape(data.elems[slice(starts[0], ends[0], steps[0])])]
    a = _rows(data, node, an)
    rank = an.rank(node.input[0])
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if _norm(axis, rank) == a and not (start == 0 and end >= 2**31 - 1 and step == 1):
            an.fail(node, "slices the batch axis")
    return [Rows(a)]


def _split(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    a = _rows(ins[0], node, an)
    if _norm(_attr(node, "axis", 0), an.rank(node.input[0])) == a:
        an.fail(node, "splits the batch axis")
    return [Rows(a)] * len(node.output)


def _pad(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    a = _rows(ins[0], node, an)
    rank = an.rank(node.input[0])
    pads = an.ints(node.input[1]) if len(node.input) > 1 else _attr(node, "pads", None)
    axes = an.ints(node.input[3]) if len(node.input) > 3 and node.input[3] else list(range(rank))
    if pads is None or axes is None or any(not _is_const(s) for s in ins[2:] if s is not None):
        an.fail(node, "pads by amounts known only at run time")
    n = len(axes)
    for k, axis in enumerate(axes):
        if _norm(axis, rank) == a and (pads[k] or pads[k + n]):
            an.fail(node, "pads the batch axis")
    return [Rows(a)]


def _tile(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    a = _rows(ins[0], node, an)
    repeats = an.ints(node.input[1])
    if repeats is None or repeats[a] != 1:
        an.fail(node, "repeats the batch")
    return [Rows(a)]


def _fill_shape(an: _Analyzer, node: onnx.NodeProto, target: Any) -> int:
    """The axis where a shape ``target`` puts the batch (Expand / ConstantOfShape)."""
    if not isinstance(target, Shape):
        an.fail(node, "builds a tensor of a shape known only at run time")
    where = [k for k, e in enumerate(target.elems) if e == "B"]
    if len(where) > 1:
        an.fail(node, "puts the batch size on two axes")
    return where[0] if where else -1


def _constant_of_shape(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    p = _fill_shape(an, node, ins[0])
    return [Rows(p) if p >= 0 else CONST]


def _expand(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    data, target = ins
    p = _fill_shape(an, node, target)
    out_rank = max(an.rank(node.input[0]), len(target.elems))
    if isinstance(data, Rows):
        q = out_rank - an.rank(node.input[0]) + data.axis
        if p not in (-1, q - (out_rank - len(target.elems))):
            an.fail(node, "expands the batch onto another axis")
        offset = q - (out_rank - len(target.elems))
        if offset >= 0 and target.elems[offset] not in (1, "B"):
            an.fail(node, "expands the batch axis")
        return [Rows(q)]
    if p < 0:
        return [CONST]
    q = out_rank - len(target.elems) + p
    offset = q - (out_rank - an.rank(node.input[0]))
    dims = an.dims.get(node.input[0])
    if offset >= 0 and (dims is None or dims[offset] != 1):
        an.fail(node, "expands a constant with its own rows onto the batch")
    return [Rows(q)]


def _recurrent(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    """Fused LSTM / GRU / RNN: X is [seq, batch, in] (layout 0) or [batch, seq, in] (layout 1)."""
    layout = _attr(node, "layout", 0)
    batch_x, batch_h = (1, 1) if layout == 0 else (0, 0)
    if _rows(ins[0], node, an) != batch_x:
        an.fail(node, "runs over the batch axis")
    for k, (name, s) in enumerate(zip(node.input, ins)):
        if k == 0 or not name:
            continue
        want = {4: 0, 5: batch_h, 6: batch_h}.get(k)   # sequence_lens, initial_h, initial_c
        if want is None:
            if not _is_const(s):
                an.fail(node, "takes batch-dependent weights")
        elif not (isinstance(s, Rows) and s.axis == want):
            an.fail(node, f"takes input {k} without its batch axis")
    y = Rows(2 if layout == 0 else 0)
    return [y] + [Rows(batch_h)] * (len(node.output) - 1)


def _scan(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    """A Scan body is analyzed with the same rules: state keeps its batch axis, scan slices lose their
    scan axis (which must not be the batch axis), scan outputs get it back."""
    body = _attr(node, "body")
    m = _attr(node, "num_scan_inputs")
    n = len(node.input) - m
    in_axes = list(_attr(node, "scan_input_axes", None) or [0] * m)
    out_axes = list(_attr(node, "scan_output_axes", None) or [0] * (len(body.output) - n))
    inner = type(an)(an.opset, an.ranks, an.dims, parent=an)  # a nested analyzer for the body
    for k, (vi, s) in enumerate(zip(body.input, ins)):
        if k >= n and isinstance(s, Rows):
            axis = _norm(in_axes[k - n], an.rank(node.input[k]))
            if axis == s.axis:
                an.fail(node, "scans over the batch axis")
            s = Rows(s.axis - (axis < s.axis))
        inner.state[vi.name] = s
    inner.run(body)
    outs = []
    for k, vi in enumerate(body.output):
        s = inner.get(vi.name)
        if isinstance(s, _Taint):
            raise s
        if k < n:
            if s != ins[k] and not (_is_const(s) and _is_const(ins[k])):
                an.fail(node, f"changes how state '{vi.name}' carries the batch from one step to the next")
            outs.append(s)
        elif isinstance(s, Rows):
            axis = _norm(out_axes[k - n], inner.rank(vi.name) + 1)
            outs.append(Rows(s.axis + (axis <= s.axis)))
        else:
            outs.append(CONST if _is_const(s) else _Taint(f"{_label(node)} output {k}"))
    return outs


def _onehot(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    a = _rows(ins[0], node, an)
    if any(not _is_const(s) for s in ins[1:]):
        an.fail(node, "takes a batch-dependent depth or values")
    axis = _norm(_attr(node, "axis", -1), an.rank(node.input[0]) + 1)
    return [Rows(a if a < axis else a + 1)]


def _resize(an: _Analyzer, node: onnx.NodeProto, ins: list[Any]) -> list[Any]:
    a = _rows(ins[0], node, an)
    if len(node.input) > 3 and node.input[3]:
        if _fill_shape(an, node, ins[3]) != a:
            an.fail(node, "resizes the batch axis")
    elif len(node.input) > 2 and node.input[2] and not _is_const(ins[2]):
        an.fail(node, "resizes by scales known only at run time")
    return [Rows(a)]


_RULES: dict[str, Callable[[_Analyzer, onnx.NodeProto, list[Any]], list[Any]]] = {
    "Identity": _identity, "Cast": _unary, "CastLike": _unary, "Dropout": _dropout,
    "BatchNormalization": _batch_norm, "MatMul": _matmul, "Gemm": _gemm,
    "Softmax": _softmax, "LogSoftmax": _softmax, "Hardmax": _softmax,
    "LayerNormalization": _norm_axes_from, "ArgMax": _arg, "ArgMin": _arg,
    "CumSum": _along(0, 1), "TopK": _along(-1), "Transpose": _transpose, "Flatten": _flatten,
    "Reshape": _reshape, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Shape": _shape, "Size": _size,
    "Gather": _gather, "Concat": _concat, "Slice": _slice, "Split": _split, "Pad": _pad, "Tile": _tile,
    "ConstantOfShape": _constant_of_shape, "Expand": _expand, "LSTM": _recurrent, "GRU": _recurrent,
    "RNN": _recurrent, "Scan": _scan, "OneHot": _onehot, "Resize": _resize,
}
#: Rules that also compute on known integer vectors (shape arithmetic) when every input is constant.
_SHAPE_AWARE = {"Identity", "Cast", "CastLike", "Reshape", "Squeeze", "Unsqueeze", "Gather", "Concat", "Slice"}

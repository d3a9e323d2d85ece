"""The least output shape of ops whose size constants fix but whose input dims are known only at run time.

A loaded config can size a graph through dynamic dims that no static check sees: ``UpSampling2D(size=10**5)``
or ``ZeroPadding2D(10**6)`` on ``Input((None, None, 3))`` declares an output of shape ``(None, None, None,
3)``, yet onnxruntime allocates ``10**10`` pixels for a 1 x 1 image. For the ops that grow a tensor by
constant operands (``Tile`` repeats, ``Pad`` pads, ``Resize`` scales or sizes, ``Expand`` shapes,
``ConstantOfShape``, ``Range`` bounds), :func:`least_shape` gives the output shape for the smallest
non-empty input (every unknown dim taken as 1), which ``size_limits`` bounds like a static shape.

What stays undecidable at load: sizes computed from the *data* (a ``Range`` to ``ReduceMax(x)``, a ``Tile``
by an input tensor), and the product of a growth factor with input dims the client picks: a config may
legitimately tile 1000-fold, and it is the server's request bounds (``--max-body-bytes``) that then cap
the input. onnxruntime's own arena fails such an allocation with an error, not a crash.

Example:
    >>> import onnx
    >>> node = onnx.helper.make_node("Tile", ["x", "reps"], ["y"])
    >>> least_shape(node, {"x": (None, None, 3)}.get, {"reps": [1, 10**5, 1]}.get)
    [1, 100000, 3]
"""
from __future__ import annotations

__all__ = ["least_shape", "GROWING_OPS"]

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

#: Ops whose output size comes from constant operands, not only from their input's size.
GROWING_OPS = frozenset({"Tile", "Pad", "Resize", "Expand", "ConstantOfShape", "Range"})

Shape = Sequence[Any] | None


def _least(shape: Shape, rank: int | None = None) -> list[int] | None:
    """``shape`` with each unknown dim as 1 (the smallest non-empty input)."""
    if shape is None:
        return None
    dims = [int(d) if isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 else 1 for d in shape]
    return dims if rank is None or len(dims) == rank else None


def _ints(value: Any) -> list[int] | None:
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype.kind not in "iu" or array.ndim > 1:
        return None
    return [int(v) for v in array.reshape(-1)]


def _axes(node: onnx.NodeProto, rank: int, given: list[int] | None) -> list[int]:
    axes = given if given is not None else next(
        (list(a.ints) for a in node.attribute if a.name == "axes"), None)
    return [a % rank for a in axes] if axes else list(range(rank))


def least_shape(node: onnx.NodeProto, shape_of: Callable[[str], Shape],
                constant: Callable[[str], Any]) -> list[int] | None:
    """The output shape of ``node`` for its smallest non-empty input, where constants fix its size
    (``None`` where they do not, or for other ops). ``shape_of`` and ``constant`` look a name up."""
    op, ins = node.op_type, list(node.input)
    arg = (lambda i: ins[i] if len(ins) > i and ins[i] else None)
    if op == "ConstantOfShape":
        return [max(d, 0) for d in _ints(constant(ins[0])) or []] or None
    if op == "Range":
        bounds = [constant(n) for n in ins[:3]]
        if any(b is None or np.asarray(b).size != 1 for b in bounds):
            return None
        start, limit, delta = (float(np.asarray(b).reshape(-1)[0]) for b in bounds)
        if delta == 0 or not all(map(math.isfinite, (start, limit, delta))):
            return None
        return [max(math.ceil((limit - start) / delta), 0)]
    x = _least(shape_of(ins[0])) if ins else None
    if x is None:
        return None
    if op == "Tile":
        reps = _ints(constant(arg(1)))
        return [d * max(r, 0) for d, r in zip(x, reps)] if reps is not None and len(reps) == len(x) else None
    if op == "Expand":
        target = _ints(constant(arg(1)))
        if target is None:
            return None
        rank = max(len(target), len(x))
        a, b = [1] * (rank - len(x)) + x, [1] * (rank - len(target)) + target
        return [max(p, q) if 1 in (p, q) else p for p, q in zip(a, b)]
    if op == "Pad":
        pads = _ints(constant(arg(1)))
        axes = _axes(node, len(x), _ints(constant(arg(3))) if arg(3) else None)
        if pads is None or len(pads) != 2 * len(axes):
            return None
        out = list(x)
        for k, axis in enumerate(axes):
            out[axis] = max(out[axis] + pads[k] + pads[k + len(axes)], 0)
        return out
    if op == "Resize":
        sizes, scales = _ints(constant(arg(3))), constant(arg(2))
        policy = next((a.s.decode() for a in node.attribute if a.name == "keep_aspect_ratio_policy"), "stretch")
        out = list(x)
        if sizes is not None and policy == "stretch":
            axes = _axes(node, len(x), None)
            if len(sizes) != len(axes):
                return None
            for axis, size in zip(axes, sizes):
                out[axis] = max(size, 0)
            return out
        if scales is not None and np.asarray(scales).size:
            factors = [float(s) for s in np.asarray(scales, np.float64).reshape(-1)]
            axes = _axes(node, len(x), None)
            if len(factors) != len(axes) or not all(map(math.isfinite, factors)):
                return None
            for axis, factor in zip(axes, factors):
                out[axis] = max(math.floor(out[axis] * factor), 0)
            return out
    return None

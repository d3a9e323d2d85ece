"""Array manipulation ``keras.ops.numpy`` ops: split / flip / roll / repeat / pad, axis moves, stacking,
``meshgrid``, triangles and diagonals, ``eye`` and ``linspace``.

Shapes follow NumPy (and Keras): static sizes stay static in the graph, a dynamic batch stays dynamic.
Every op emits standard ``ai.onnx`` nodes whose gradient rules exist (triangles are ``Where`` masks, not
``Trilu``, for that reason).

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> [p.tolist() for p in ops.split(np.arange(6), 3)]
    [[0, 1], [2, 3], [4, 5]]
    >>> ops.eye(2).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
"""
from __future__ import annotations

__all__ = [
    "split",
    "array_split",
    "hsplit",
    "vsplit",
    "dsplit",
    "unstack",
    "flip",
    "fliplr",
    "flipud",
    "roll",
    "repeat",
    "moveaxis",
    "swapaxes",
    "rot90",
    "ravel",
    "ndim",
    "hstack",
    "vstack",
    "dstack",
    "column_stack",
    "append",
    "meshgrid",
    "tril",
    "triu",
    "tri",
    "eye",
    "identity",
    "diagonal",
    "trace",
    "diag",
    "diagflat",
    "linspace",
    "logspace",
    "geomspace",
    "empty",
    "empty_like",
    "copy",
    "array",
    "vander",
    "pad",
]

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..graph import Value
from ..graph.size_limits import check_constant
from ._arrays_util import BIG, INT64, axis_index, dim, emit, rank_of, slice_axis, value
from ._util import as_value, builder_of, cast_value, int_const, promote, symbolic


@symbolic
def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Value]:
    """Equal sections (an int, which must divide the axis) or pieces cut at the given indices."""
    v = value(x)
    rank = rank_of(v, "split")
    axis = axis_index(axis, rank, "split")
    size = v.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        n = int(indices_or_sections)
        if isinstance(size, int):
            if size % n:
                raise ValueError(f"ops.split: array split does not result in an equal division: axis {axis} has "
                                 f"size {size}, sections={n}.")
            return _split_at(v, axis, [size // n * k for k in range(1, n)])
        b = v.builder
        return list(emit(b, "Split", [v], outputs=n, axis=axis, num_outputs=n))
    return _split_at(v, axis, [int(i) for i in indices_or_sections])


def _split_at(v: Value, axis: int, cuts: list[int]) -> list[Value]:
    bounds = [0, *cuts, BIG]
    return [slice_axis(v, axis, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


@symbolic
def array_split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Value]:
    """Like ``split``, but ``n`` sections need not divide the axis (the first ones are one longer)."""
    v = value(x)
    axis = axis_index(axis, rank_of(v, "array_split"), "array_split")
    if isinstance(indices_or_sections, (int, np.integer)):
        size = v.shape[axis]
        if not isinstance(size, int):
            raise ValueError("ops.array_split into sections needs a static size along the axis.")
        n = int(indices_or_sections)
        q, r = divmod(size, n)
        cuts, at = [], 0
        for k in range(n - 1):
            at += q + (1 if k < r else 0)
            cuts.append(at)
        return _split_at(v, axis, cuts)
    return split(v, indices_or_sections, axis)


@symbolic
def hsplit(x: Any, indices_or_sections: Any) -> list[Value]:
    v = value(x)
    return split(v, indices_or_sections, axis=0 if rank_of(v, "hsplit") == 1 else 1)


@symbolic
def vsplit(x: Any, indices_or_sections: Any) -> list[Value]:
    return split(x, indices_or_sections, axis=0)


@symbolic
def dsplit(x: Any, indices_or_sections: Any) -> list[Value]:
    return split(x, indices_or_sections, axis=2)


@symbolic
def unstack(x: Any, num: int | None = None, axis: int = 0) -> list[Value]:
    """The slices of ``x`` along ``axis`` (whose size must be static or given as ``num``)."""
    v = value(x)
    rank = rank_of(v, "unstack")
    axis = axis_index(axis, rank, "unstack")
    n = v.shape[axis] if isinstance(v.shape[axis], int) else num
    if n is None:
        raise ValueError("ops.unstack needs a static size along `axis` (or `num`).")
    b = v.builder
    return [emit(b, "Squeeze", [slice_axis(v, axis, k, k + 1), int_const(b, [axis])]) for k in range(int(n))]


@symbolic
def flip(x: Any, axis: Any = None) -> Value:
    v = value(x)
    rank = rank_of(v, "flip")
    axes = range(rank) if axis is None else [axis] if isinstance(axis, (int, np.integer)) else axis
    for a in axes:
        v = slice_axis(v, axis_index(int(a), rank, "flip"), -1, -BIG, -1)
    return v


@symbolic
def fliplr(x: Any) -> Value:
    return flip(x, axis=1)


@symbolic
def flipud(x: Any) -> Value:
    return flip(x, axis=0)


@symbolic
def roll(x: Any, shift: Any, axis: Any = None) -> Value:
    """Entries shifted by ``shift`` along ``axis`` (of the flattened tensor when ``None``), wrapping round."""
    v = value(x)
    b = v.builder
    if axis is None:
        flat = emit(b, "Reshape", [v, int_const(b, [-1])])
        return emit(b, "Reshape", [roll(flat, shift, 0), emit(b, "Shape", [v])], shape=v.shape)
    shifts = [shift] if isinstance(shift, (int, np.integer)) else list(shift)
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    rank = rank_of(v, "roll")
    for s, a in zip(shifts, axes):
        a = axis_index(int(a), rank, "roll")
        size = v.shape[a]
        if isinstance(size, int):
            s = int(s) % size if size else 0
            if s:
                v = emit(b, "Concat", [slice_axis(v, a, size - s, BIG), slice_axis(v, a, 0, size - s)], axis=a)
        else:
            n = dim(v, a)
            k = emit(b, "Mod", [as_value(np.int64(int(s)), b), n], fmod=0)
            v = emit(b, "Concat", [slice_axis(v, a, n - k, BIG), slice_axis(v, a, 0, n - k)], axis=a)
    return v


@symbolic
def repeat(x: Any, repeats: Any, axis: int | None = None) -> Value:
    """Each entry repeated ``repeats`` times along ``axis`` (of the flattened tensor when ``None``).

    ``repeats`` is one count, or one count per entry along ``axis``; as in NumPy and Keras, a sequence or
    tensor holding a single count (``[n]``) is that count for every entry.
    """
    v = value(x)
    b = v.builder
    if axis is None:
        v, axis = emit(b, "Reshape", [v, int_const(b, [-1])]), 0
    rank = rank_of(v, "repeat")
    axis = axis_index(axis, rank, "repeat")
    if isinstance(repeats, Value):
        size = int(np.prod(repeats.shape)) if repeats.shape is not None and all(
            isinstance(d, int) for d in repeats.shape) else None
    else:
        repeats = np.asarray(repeats, np.int64)
        size = repeats.size
    if size == 1:
        return _repeat_each(v, axis, repeats)
    length = v.shape[axis] if v.shape is not None else None
    if isinstance(length, int) and size is not None and length != size:
        raise ValueError(f"ops.repeat: `repeats` holds one count per entry along axis {axis} ({length} entries) "
                         f"or a single count. Received: repeats of length {size}")
    if isinstance(repeats, Value):
        return emit(b, "Gather", [v, _repeat_index(repeats)], axis=axis)
    # Before numpy (and the list) make it: the counts come from the caller, or a loaded config.
    check_constant((sum(max(int(r), 0) for r in repeats.reshape(-1)),), 8, "ops.repeat's index")
    return emit(b, "Gather", [v, int_const(b, np.repeat(np.arange(size), repeats.reshape(-1)).tolist())], axis=axis)


def _repeat_each(v: Value, axis: int, repeats: Any) -> Value:
    """Every entry along ``axis`` repeated the one count ``repeats`` times: a new axis after ``axis`` is
    tiled, then merged with it."""
    b = v.builder
    rank = len(v.shape)
    r = int(np.asarray(repeats).reshape(-1)[0]) if not isinstance(repeats, Value) else None
    count = int_const(b, [r]) if r is not None else emit(b, "Reshape", [cast_value(repeats, INT64),
                                                                        int_const(b, [1])])
    expanded = emit(b, "Unsqueeze", [v, int_const(b, [axis + 1])])
    reps = emit(b, "Concat", [int_const(b, [1] * (axis + 1)), count, int_const(b, [1] * (rank - axis - 1))],
                axis=0)
    tiled = emit(b, "Tile", [expanded, reps])
    shape = emit(b, "Shape", [v])
    new_dim = emit(b, "Mul", [emit(b, "Slice", [shape, int_const(b, [axis]), int_const(b, [axis + 1])]), count])
    target = emit(b, "Concat", [emit(b, "Slice", [shape, int_const(b, [0]), int_const(b, [axis])]), new_dim,
                             emit(b, "Slice", [shape, int_const(b, [axis + 1]), int_const(b, [BIG])])], axis=0)
    static = None
    if v.shape is not None:
        static = tuple(d * r if i == axis and isinstance(d, int) and r is not None else (None if i == axis else d)
                       for i, d in enumerate(v.shape))
    return emit(b, "Reshape", [tiled, target], shape=static)


def _repeat_index(counts: Value) -> Value:
    """The Gather index that repeats entry ``i`` ``counts[i]`` times, for counts known only at run time:
    output position ``p`` takes the entry whose running total of counts first exceeds ``p``."""
    b = counts.builder
    c = emit(b, "Reshape", [cast_value(counts, INT64), int_const(b, [-1])])
    ends = emit(b, "CumSum", [c, as_value(np.int64(0), b)])
    total = emit(b, "ReduceSum", [c], keepdims=0)
    positions = emit(b, "Range", [as_value(np.int64(0), b), total, as_value(np.int64(1), b)])
    passed = emit(b, "LessOrEqual", [emit(b, "Unsqueeze", [ends, int_const(b, [0])]),
                                     emit(b, "Unsqueeze", [positions, int_const(b, [1])])])
    return emit(b, "ReduceSum", [cast_value(passed, INT64), int_const(b, [1])], keepdims=0)


@symbolic
def moveaxis(x: Any, source: Any, destination: Any) -> Value:
    v = value(x)
    rank = rank_of(v, "moveaxis")
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    src = [axis_index(int(s), rank, "moveaxis") for s in src]
    dst = [axis_index(int(d), rank, "moveaxis") for d in dst]
    order = [a for a in range(rank) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    from .numpy import transpose

    return transpose(v, order)


@symbolic
def swapaxes(x: Any, axis1: int, axis2: int) -> Value:
    v = value(x)
    rank = rank_of(v, "swapaxes")
    perm = list(range(rank))
    a1, a2 = axis_index(axis1, rank, "swapaxes"), axis_index(axis2, rank, "swapaxes")
    perm[a1], perm[a2] = perm[a2], perm[a1]
    from .numpy import transpose

    return transpose(v, perm)


@symbolic
def rot90(array: Any, k: int = 1, axes: tuple[int, int] = (0, 1)) -> Value:
    v = value(array)
    k %= 4
    a1, a2 = axes
    for _ in range(k):
        v = swapaxes(flip(v, a2), a1, a2)
    return v


@symbolic
def ravel(x: Any) -> Value:
    v = value(x)
    b = v.builder
    return emit(b, "Reshape", [v, int_const(b, [-1])])


def ndim(x: Any) -> int:
    """The rank of ``x`` (a Python int)."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return np.ndim(x)
    return len(shape)


@symbolic
def hstack(xs: Sequence[Any]) -> Value:
    from .numpy import concatenate

    values = [value(x) if isinstance(x, Value) else x for x in xs]
    first = next((v for v in values if isinstance(v, Value)), None)
    rank = len(first.shape) if first is not None and first.shape is not None else np.ndim(values[0])
    return concatenate(list(xs), axis=0 if rank == 1 else 1)


@symbolic
def vstack(xs: Sequence[Any]) -> Value:
    from .numpy import concatenate

    b = builder_of(*xs)
    values = promote(b, *xs)
    values = [emit(b, "Unsqueeze", [v, int_const(b, [0])]) if v.shape is not None and len(v.shape) == 1 else v
              for v in values]
    return concatenate(values, axis=0)


@symbolic
def dstack(xs: Sequence[Any]) -> Value:
    from .numpy import concatenate

    b = builder_of(*xs)
    out = []
    for v in promote(b, *xs):
        rank = len(v.shape) if v.shape is not None else 3
        if rank == 1:
            v = emit(b, "Unsqueeze", [v, int_const(b, [0, 2])])
        elif rank == 2:
            v = emit(b, "Unsqueeze", [v, int_const(b, [2])])
        out.append(v)
    return concatenate(out, axis=2)


@symbolic
def column_stack(xs: Sequence[Any]) -> Value:
    from .numpy import concatenate

    b = builder_of(*xs)
    values = [emit(b, "Unsqueeze", [v, int_const(b, [1])]) if v.shape is not None and len(v.shape) == 1 else v
              for v in promote(b, *xs)]
    return concatenate(values, axis=1)


@symbolic
def append(x1: Any, x2: Any, axis: int | None = None) -> Value:
    from .numpy import concatenate

    b = builder_of(x1, x2)
    a, c = promote(b, x1, x2)
    if axis is None:
        a, c = (emit(b, "Reshape", [t, int_const(b, [-1])]) for t in (a, c))
        axis = 0
    return concatenate([a, c], axis=axis)


@symbolic
def meshgrid(*x: Any, indexing: str = "xy") -> list[Value]:
    """Coordinate grids from 1-D tensors (``"xy"``: the first two output axes swapped, as NumPy)."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"ops.meshgrid: indexing must be 'xy' or 'ij'. Received: indexing={indexing!r}")
    b = builder_of(*x)
    values = [emit(b, "Reshape", [as_value(t, b), int_const(b, [-1])]) for t in x]
    n = len(values)
    # Output axis k holds input `order[k]`.
    order = list(range(n))
    if indexing == "xy" and n >= 2:
        order[0], order[1] = 1, 0
    sizes = [emit(b, "Shape", [values[i]]) for i in order]
    target = emit(b, "Concat", sizes, axis=0)
    grids = []
    for i, v in enumerate(values):
        shape = [1] * n
        shape[order.index(i)] = -1
        grids.append(emit(b, "Expand", [emit(b, "Reshape", [v, int_const(b, shape)]), target]))
    return grids


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


@symbolic
def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: Any = None) -> Value:
    """Pad every axis by ``pad_width`` (an int, one ``(before, after)`` pair for all axes, or one pair per
    axis) with ``mode`` ``"constant"``, ``"reflect"``, ``"symmetric"``, ``"edge"`` or ``"wrap"``."""
    v = value(x)
    b = v.builder
    n = rank_of(v, "pad")
    widths = np.asarray(pad_width, dtype=np.int64)
    if widths.ndim == 0:
        widths = np.full((n, 2), int(widths))
    elif widths.ndim == 1:
        widths = np.tile(widths.reshape(1, -1), (n, 1)) if widths.size == 2 else widths.reshape(n, 1).repeat(2, 1)
    if widths.shape != (n, 2) or (widths < 0).any():
        raise ValueError(f"ops.pad: pad_width must give non-negative (before, after) sizes for each of the {n} "
                         f"axes. Received: pad_width={pad_width!r}")
    if mode == "symmetric":
        # Reflection that repeats the edge entry: mirror slices joined on each side.
        for axis, (before, after) in enumerate(widths.tolist()):
            pieces = []
            if before:
                pieces.append(flip(slice_axis(v, axis, 0, before), axis))
            pieces.append(v)
            if after:
                pieces.append(flip(slice_axis(v, axis, -after, BIG), axis))
            if len(pieces) > 1:
                v = emit(b, "Concat", pieces, axis=axis)
        return v
    if mode not in _PAD_MODES:
        raise ValueError(f"ops.pad: mode must be one of {sorted([*_PAD_MODES, 'symmetric'])}. Received: "
                         f"mode={mode!r}")
    if mode != "constant" and constant_values not in (None, 0):
        raise ValueError(f"ops.pad: constant_values only applies to mode='constant'. Received: mode={mode!r}")
    pads = int_const(b, widths[:, 0].tolist() + widths[:, 1].tolist())
    inputs = [v, pads]
    if mode == "constant" and constant_values is not None:
        inputs.append(as_value(constant_values, b, like=v))
    return emit(b, "Pad", inputs, mode=_PAD_MODES[mode])


# Triangles, diagonals and ranges live in arrays_creation.py; re-exported here (OpCall paths say arrays.*).
from .arrays_creation import (  # noqa: E402,F401
    tril, triu, tri, eye, identity, diagonal, trace, diag, diagflat, linspace, logspace, geomspace, empty, empty_like, copy, array, vander)

"""Rearranging and pooling image blocks (``keras.ops.nn``): ``depth_to_space`` / ``space_to_depth``,
``adaptive_average_pool`` / ``adaptive_max_pool``, and torch-style ``unfold`` (im2col) / ``fold`` (col2im).

``depth_to_space`` and ``space_to_depth`` are a Reshape, a Transpose and a Reshape (TensorFlow's element
order, the ONNX ``DCR`` one), so they are differentiable and keep a dynamic batch and image size. Adaptive
pooling splits each spatial axis into torch's bins (``floor(i L / o)`` to ``ceil((i + 1) L / o)``) one axis
at a time: a ``MatMul`` by the bin-averaging matrix, or a max per bin. ``unfold`` is a grouped ``Conv`` by
one-hot kernels (each kernel tap becomes a channel) and ``fold`` the matching ``ConvTranspose``, which sums
overlapping blocks as col2im does.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.depth_to_space(np.arange(8.0).reshape(1, 1, 2, 4), 2).shape
    TensorShape([1, 2, 4, 1])
    >>> ops.unfold(np.ones((1, 2, 4, 4), "float32"), kernel_size=2, stride=2).shape
    TensorShape([1, 8, 4])
"""
from __future__ import annotations

__all__ = ["depth_to_space", "space_to_depth", "adaptive_average_pool", "adaptive_max_pool", "unfold", "fold"]

import math
from typing import Any

import numpy as np

from ..backend_config import image_data_format
from ..graph import FLOAT_TYPES, Value, np_dtype
from ..graph.size_limits import charge_graph, check_constant
from ._arrays_util import emit, value
from ._util import int_const, symbolic


def _data_format(data_format: str | None) -> str:
    data_format = data_format or image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"`data_format` must be 'channels_last' or 'channels_first'. Received: "
                         f"data_format={data_format!r}")
    return data_format


def _rank(v: Value, name: str, ranks: tuple[int, ...]) -> int:
    if v.shape is None or len(v.shape) not in ranks:
        raise ValueError(f"ops.{name} takes a tensor of rank {' or '.join(map(str, ranks))}. Received: x with "
                         f"shape {v.shape}")
    return len(v.shape)


def _to_last(v: Value) -> Value:
    r = len(v.shape)
    return emit(v.builder, "Transpose", [v], perm=[0, *range(2, r), 1])


def _to_first(v: Value) -> Value:
    r = len(v.shape)
    return emit(v.builder, "Transpose", [v], perm=[0, r - 1, *range(1, r - 1)])


def _block(block_size: Any, name: str) -> int:
    if not isinstance(block_size, (int, np.integer)) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(f"ops.{name}: `block_size` must be a positive int. Received: block_size={block_size!r}")
    return int(block_size)


# ------------------------------------------------------------------------------------------ depth <-> space
def _times(d: Any, r: int) -> int | None:
    return d * r if isinstance(d, int) else None


@symbolic
def depth_to_space(x: Any, block_size: int, data_format: str = "channels_last") -> Value:
    """``(N, H, W, C * r**2)`` to ``(N, H * r, W * r, C)`` (``r = block_size``; channels_first alike)."""
    v, r = value(x), _block(block_size, "depth_to_space")
    b = v.builder
    _rank(v, "depth_to_space", (4,))
    first = _data_format(data_format) == "channels_first"
    if first:
        v = _to_last(v)
    channels = v.shape[3]
    if not isinstance(channels, int) or channels % (r * r):
        raise ValueError(f"ops.depth_to_space: the channels ({channels}) must be a static multiple of "
                         f"block_size**2 = {r * r}. Received: x with shape {v.shape}")
    depth = channels // (r * r)
    blocks = emit(b, "Reshape", [v, int_const(b, [0, 0, 0, r, r, depth])])
    moved = emit(b, "Transpose", [blocks], perm=[0, 1, 3, 2, 4, 5])
    head = emit(b, "Mul", [emit(b, "Slice", [emit(b, "Shape", [v]), int_const(b, [0]), int_const(b, [3])]),
                           int_const(b, [1, r, r])])
    n, h, w = v.shape[:3]
    out = emit(b, "Reshape", [moved, emit(b, "Concat", [head, int_const(b, [depth])], axis=0)],
               shape=(n, _times(h, r), _times(w, r), depth))
    return _to_first(out) if first else out


@symbolic
def space_to_depth(x: Any, block_size: int, data_format: str = "channels_last") -> Value:
    """``(N, H * r, W * r, C)`` to ``(N, H, W, C * r**2)`` (``r = block_size``; channels_first alike)."""
    v, r = value(x), _block(block_size, "space_to_depth")
    b = v.builder
    _rank(v, "space_to_depth", (4,))
    first = _data_format(data_format) == "channels_first"
    if first:
        v = _to_last(v)
    for d in v.shape[1:3]:
        if isinstance(d, int) and d % r:
            raise ValueError(f"ops.space_to_depth: height and width must be multiples of block_size={r}. "
                             f"Received: x with shape {v.shape}")
    shape = emit(b, "Div", [emit(b, "Shape", [v]), int_const(b, [1, r, r, 1])])

    def part(i: int) -> Value:
        return emit(b, "Slice", [shape, int_const(b, [i]), int_const(b, [i + 1])])

    target = emit(b, "Concat", [part(0), part(1), int_const(b, [r]), part(2), int_const(b, [r]), part(3)], axis=0)
    moved = emit(b, "Transpose", [emit(b, "Reshape", [v, target])], perm=[0, 1, 3, 2, 4, 5])
    n, h, w, c = v.shape
    out = emit(b, "Reshape", [moved, int_const(b, [0, 0, 0, -1])],
               shape=(n, h // r if isinstance(h, int) else None, w // r if isinstance(w, int) else None,
                      c * r * r if isinstance(c, int) else None))
    return _to_first(out) if first else out


# ------------------------------------------------------------------------------------------ adaptive pooling
def _bins(length: int, out: int) -> list[tuple[int, int]]:
    return [(i * length // out, -(-(i + 1) * length // out)) for i in range(out)]


def _adaptive(x: Any, output_size: Any, data_format: str | None, name: str, average: bool) -> Value:
    v = value(x)
    b = v.builder
    rank = _rank(v, name, (3, 4, 5))
    spatial = rank - 2
    sizes = [int(output_size)] * spatial if isinstance(output_size, (int, np.integer)) else \
        [int(s) for s in output_size]
    if len(sizes) != spatial or any(s < 1 for s in sizes):
        raise ValueError(f"ops.{name}: `output_size` must be a positive int or {spatial} positive ints for a "
                         f"rank-{rank} input. Received: output_size={output_size!r}")
    if v.dtype not in FLOAT_TYPES:
        raise TypeError(f"ops.{name} pools float tensors. Received: x of dtype {np.dtype(np_dtype(v.dtype)).name}")
    first = _data_format(data_format) == "channels_first"
    axes = list(range(2, rank)) if first else list(range(1, rank - 1))
    for axis, out in zip(axes, sizes):
        length = v.shape[axis]
        if not isinstance(length, int):
            raise ValueError(f"ops.{name} needs static spatial sizes. Received: x with shape {v.shape}")
        if not average:   # a Slice and a ReduceMax per bin: bounded before the bins are listed
            charge_graph(0, len(b.nodes) + 2 * out, f"ops.{name}'s {out} bins")
        bins = _bins(length, out)
        if average:
            check_constant((length, out), 8, f"ops.{name}'s bin matrix")   # pre-alloc
            weights = np.zeros((length, out), np.float64)
            for i, (lo, hi) in enumerate(bins):
                weights[lo:hi, i] = 1.0 / (hi - lo)
            perm = [*(i for i in range(rank) if i != axis), axis]
            moved = emit(b, "Transpose", [v], perm=perm)
            pooled = emit(b, "MatMul", [moved, b.const(weights.astype(np_dtype(v.dtype)))])
            v = emit(b, "Transpose", [pooled], perm=[int(i) for i in np.argsort(perm)])
        else:
            parts = [emit(b, "ReduceMax", [emit(b, "Slice", [v, int_const(b, [lo]), int_const(b, [hi]),
                                                             int_const(b, [axis])]), int_const(b, [axis])],
                          keepdims=1) for lo, hi in bins]
            v = parts[0] if len(parts) == 1 else emit(b, "Concat", parts, axis=axis)
    return v


@symbolic
def adaptive_average_pool(inputs: Any, output_size: Any, data_format: str | None = None) -> Value:
    """Average pooling to a fixed spatial ``output_size`` (1-D, 2-D or 3-D images; torch's bins)."""
    return _adaptive(inputs, output_size, data_format, "adaptive_average_pool", average=True)


@symbolic
def adaptive_max_pool(inputs: Any, output_size: Any, data_format: str | None = None) -> Value:
    """Max pooling to a fixed spatial ``output_size`` (1-D, 2-D or 3-D images; torch's bins)."""
    return _adaptive(inputs, output_size, data_format, "adaptive_max_pool", average=False)


# ------------------------------------------------------------------------------------------ im2col / col2im
def _pair(value_: Any, name: str, minimum: int) -> list[int]:
    pair = [value_] * 2 if isinstance(value_, (int, np.integer)) else list(value_)
    if len(pair) != 2 or any(not isinstance(p, (int, np.integer)) or p < minimum for p in pair):
        raise ValueError(f"`{name}` must be an int or a pair of ints >= {minimum}. Received: {name}={value_!r}")
    return [int(p) for p in pair]


def _one_hot_kernels(channels: int, kernel: list[int], dtype: int) -> np.ndarray:
    """``(C * kh * kw, 1, kh, kw)``: output channel ``c * K + k`` copies tap ``k`` of input channel ``c``."""
    taps = kernel[0] * kernel[1]
    check_constant((channels * taps, taps), np.dtype(np_dtype(dtype)).itemsize, "the one-hot kernels of ops.unfold")
    eye = np.eye(taps, dtype=np_dtype(dtype)).reshape(taps, 1, *kernel)
    return np.tile(eye, (channels, 1, 1, 1))


def _geometry(kernel_size: Any, dilation: Any, padding: Any, stride: Any) -> dict:
    k, d = _pair(kernel_size, "kernel_size", 1), _pair(dilation, "dilation", 1)
    p, s = _pair(padding, "padding", 0), _pair(stride, "stride", 1)
    return dict(kernel_shape=k, dilations=d, pads=p + p, strides=s)


def _float_input(v: Value, name: str) -> None:
    if v.dtype not in FLOAT_TYPES:
        raise TypeError(f"ops.{name} takes float tensors. Received: x of dtype {np.dtype(np_dtype(v.dtype)).name}")


@symbolic
def unfold(x: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> Value:
    """torch's ``unfold`` (im2col): ``(N, C, H, W)`` to ``(N, C * kh * kw, L)``, the sliding blocks as
    columns, channel-major then kernel row then column; ``L`` counts the block positions."""
    v = value(x)
    b = v.builder
    _rank(v, "unfold", (4,))
    _float_input(v, "unfold")
    channels = v.shape[1]
    if not isinstance(channels, int):
        raise ValueError(f"ops.unfold needs a static channel count (axis 1). Received: x with shape {v.shape}")
    geo = _geometry(kernel_size, dilation, padding, stride)
    w = b.const(_one_hot_kernels(channels, geo["kernel_shape"], v.dtype))
    cols = emit(b, "Conv", [v, w], group=channels, **geo)
    return emit(b, "Reshape", [cols, int_const(b, [0, 0, -1])])


@symbolic
def fold(x: Any, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> Value:
    """torch's ``fold`` (col2im): ``(N, C * kh * kw, L)`` blocks summed into ``(N, C, *output_size)``,
    overlapping entries added; the inverse arrangement of ``unfold``."""
    v = value(x)
    b = v.builder
    _rank(v, "fold", (3,))
    _float_input(v, "fold")
    geo = _geometry(kernel_size, dilation, padding, stride)
    size = _pair(output_size, "output_size", 1)
    k, d, p, s = geo["kernel_shape"], geo["dilations"], geo["pads"][:2], geo["strides"]
    blocks = [(size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2)]
    taps = k[0] * k[1]
    depth, count = v.shape[1], v.shape[2]
    if not isinstance(depth, int) or depth % taps:
        raise ValueError(f"ops.fold: axis 1 must be a static multiple of kernel_size[0] * kernel_size[1] = {taps}."
                         f" Received: x with shape {v.shape}")
    if min(blocks) < 1 or (isinstance(count, int) and count != math.prod(blocks)):
        raise ValueError(f"ops.fold: output_size={size} with this kernel, dilation, padding and stride holds "
                         f"{math.prod(blocks)} blocks. Received: x with shape {v.shape}")
    channels = depth // taps
    grid = emit(b, "Reshape", [v, int_const(b, [0, depth, *blocks])])
    w = b.const(_one_hot_kernels(channels, k, v.dtype))
    covered = [s[i] * (blocks[i] - 1) + d[i] * (k[i] - 1) + 1 - 2 * p[i] for i in range(2)]
    # Rows and columns the blocks never reach (size not a whole number of strides) stay zero, as in torch.
    extra = [size[i] - covered[i] for i in range(2)]
    return emit(b, "ConvTranspose", [grid, w], group=channels, output_padding=extra, **geo)

"""Gradient rules: Conv and ConvTranspose, 1-D to 3-D, with every attribute of the ONNX spec.

Conv's input gradient is a ConvTranspose with pads and output_padding chosen so the shape comes out exact
(strided convs whose windows leave trailing pixels uncovered included); at unit stride, with a kernel fed
at run time, it beat the equivalent Conv with reversed taps on AVX2 and AVX-512 alike. A constant kernel
(the initializers of an exported model) gets the reversed-taps Conv instead, which onnxruntime runs in its
NCHWc layout (``_reversed_conv_input_grad``). ConvTranspose's input gradient is a Conv.
Weight gradients use *patches*: a one-hot grouped Conv lays every kernel tap out as its own channel, one
batched MatMul contracts the output positions and a ReduceSum the batch. In onnxruntime (CPU, 2 threads)
that measured 7.0 ms against 16.5 ms for the textbook batch/channel-swapped Conv with 5-D Transposes,
for a 32 -> 64 channel 3x3 conv on 14x14 at batch 128 (and 38 vs 51 CPU-ms on the benchmark machine).
Where that is not the fastest, other shapes get their own formulation: unpadded unit-stride 1x1 convs with
many positions keep the patches formulation (their patches are X itself), ungrouped unit-stride convs with 16
or more input channels one GEMM per kernel tap over the whole batch, depthwise convs one product and sum
per tap (see the two ``*_by_taps`` functions for the measurements), and ungrouped convs with few output
positions per sample a single GEMM over the whole batch on the patches.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import onnx

from ...graph import GraphBuilder, Value, np_dtype
from ..context import GradContext
from ..registry import register
from ..tuning import planned_threads

__all__: list[str] = []


@dataclass(frozen=True)
class _Geometry:
    """Kernel, strides and dilations of one conv node, per spatial axis."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]

    @property
    def extent(self) -> tuple[int, ...]:
        """The span of a dilated kernel: ``(k - 1) * d + 1``."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilations))

    def attrs(self) -> dict:
        return {"kernel_shape": list(self.kernel), "strides": list(self.strides),
                "dilations": list(self.dilations)}


def _geometry(ctx: GradContext, w: Value) -> _Geometry:
    if w.shape is None or not all(isinstance(d, int) for d in w.shape[:2]) or len(w.shape) < 3:
        raise ctx.fail(f"the weight's shape must be known (rank and channel dims). Received: {w.shape}")
    rank = len(w.shape) - 2
    kernel = ctx.attr("kernel_shape") or w.shape[2:]
    if not all(isinstance(k, int) for k in kernel):
        raise ctx.fail(f"kernel_shape must be known while building the graph. Received: {w.shape}")
    strides = ctx.attr("strides") or [1] * rank
    dilations = ctx.attr("dilations") or [1] * rank
    return _Geometry(tuple(kernel), tuple(strides), tuple(dilations))


def _spatial(x: Value) -> tuple | None:
    """The static spatial dims of an NC... tensor, or ``None`` if any is unknown."""
    if x.shape is None or not all(isinstance(d, int) for d in x.shape[2:]):
        return None
    return tuple(x.shape[2:])


def _ints(b: GraphBuilder, values) -> Value:
    return b.const(np.asarray(values, dtype=np.int64))


def _conv_pads(ctx: GradContext, geo: _Geometry, spatial: tuple | None):
    """``(begin, end)`` pads of a Conv after ``auto_pad``; ``None`` when they depend on unknown dims."""
    rank = len(geo.kernel)
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad == "VALID":
        return (0,) * rank, (0,) * rank
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if spatial is None:
            return None
        total = [max((-(-i // s) - 1) * s + e - i, 0) for i, s, e in zip(spatial, geo.strides, geo.extent)]
        begin = tuple(t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total)
        return begin, tuple(t - p for t, p in zip(total, begin))
    if auto_pad != "NOTSET":
        raise ctx.fail(f"unknown auto_pad. Received: auto_pad={auto_pad!r}")
    pads = ctx.attr("pads") or [0] * (2 * rank)
    return tuple(pads[:rank]), tuple(pads[rank:])


def _same_begin_pads(b: GraphBuilder, x: Value, geo: _Geometry, upper: bool) -> Value:
    """SAME begin pads computed in the graph from ``x``'s run-time spatial dims (int64 vector)."""
    size = b.op("Slice", [b.op("Shape", [x]), _ints(b, [2]), _ints(b, [len(geo.kernel) + 2])])
    s, e = _ints(b, geo.strides), _ints(b, geo.extent)
    out = b.op("Div", [b.op("Add", [size, b.op("Sub", [s, _ints(b, 1)])]), s])  # ceil(in / s)
    total = b.op("Max", [b.op("Sub", [b.op("Add", [b.op("Mul", [b.op("Sub", [out, _ints(b, 1)]), s]), e]), size]),
                         _ints(b, 0)])
    half = b.op("Div", [total, _ints(b, 2)])
    return half if upper else b.op("Sub", [total, half])


def _slice_spatial(b: GraphBuilder, t: Value, starts: Value, like: Value, rank: int) -> Value:
    """``t[:, :, starts : starts + spatial(like)]`` with run-time bounds."""
    size = b.op("Slice", [b.op("Shape", [like]), _ints(b, [2]), _ints(b, [rank + 2])])
    return b.op("Slice", [t, starts, b.op("Add", [starts, size]), _ints(b, list(range(2, rank + 2)))],
                shape=like.shape)


# ------------------------------------------------------------------ shared pieces
def _reversed_conv_input_grad(ctx: GradContext, dy: Value, w: Value, x: Value, geo: _Geometry, group: int,
                              pads: tuple) -> Value | None:
    """The unit-stride input gradient as a Conv of ``dY`` with the kernel reversed (and its channel axes
    swapped), when the weight is a constant of the graph; ``None`` where ConvTranspose stays the faster.

    With a constant kernel onnxruntime folds the reversal and runs the Conv in its blocked NCHWc layout,
    which it never does for ConvTranspose (gradient graphs of exported models, weights as initializers;
    1 thread, AVX-512, CPU-ms, ConvTranspose -> reversed Conv): depthwise 5x5 on 4x672x14x14 3.72 -> 0.51,
    4x240x28x28 4.19 -> 0.71, depthwise 3x3 on 4x144x56x56 3.78 -> 1.85; ungrouped 3x3 on 4x64x56x56
    10.1 -> 8.7, 4x512x7x7 11.9 -> 8.3. 1x1 kernels gained nothing (5.75 -> 6.19 on 4x96x112x112), and
    with a weight fed at run time ConvTranspose stays ahead at one thread (depthwise 13.9 vs 14.7), so both
    keep it. With several intra-op threads (``autodiff.tuning``) the reversed Conv wins for fed weights too:
    ConvTranspose runs its col2im on one thread (2 threads, in-process A/B of whole training steps: the
    residual BatchNorm CNN of bench/ 163 -> 152 ms, 245 -> 190 in the VM's slow phases; the seed CNN as one
    session 40.0 vs 39.9, 58 -> 54 in slow phases).
    """
    if not ctx.b.is_fixed(w.name) and (planned_threads() or 1) <= 1:
        return None   # a weight fed at run time, in a one-thread session
    rank = len(geo.kernel)
    depthwise = w.shape[1] == 1 and w.shape[0] == group and x.shape is not None and x.shape[1] == group
    if not (depthwise or (group == 1 and any(k > 1 for k in geo.kernel))):
        return None
    reverse_pads = [e - 1 - p for p, e in zip(pads[0] + pads[1], geo.extent + geo.extent)]
    if min(reverse_pads) < 0:
        return None
    b = ctx.b
    spatial_axes = list(range(2, rank + 2))
    flipped = b.op("Slice", [w, _ints(b, [-1] * rank), _ints(b, [-(2 ** 62)] * rank), _ints(b, spatial_axes),
                             _ints(b, [-1] * rank)], shape=w.shape)
    if not depthwise:
        flipped = b.op("Transpose", [flipped], perm=[1, 0, *spatial_axes])
    return b.op("Conv", [dy, flipped], group=group, kernel_shape=list(geo.kernel), dilations=list(geo.dilations),
                pads=reverse_pads, shape=x.shape)


def _conv_input_grad(ctx: GradContext, dy: Value, w: Value, x: Value, geo: _Geometry, group: int,
                     out: tuple | None = None) -> Value:
    """``dL/dX`` of ``Y = Conv(X, W)``, shaped exactly like X: a ConvTranspose of ``dY`` cropped or
    output-padded to X.

    ``out``: the output's spatial dims when they are not the Conv formula's (pooling in ceil_mode).
    """
    b = ctx.b
    rank = len(geo.kernel)
    spatial = _spatial(x)
    pads = _conv_pads(ctx, geo, spatial)
    common = dict(group=group, **geo.attrs())
    if pads is not None and out is None and all(st == 1 for st in geo.strides):
        reversed_conv = _reversed_conv_input_grad(ctx, dy, w, x, geo, group, pads)
        if reversed_conv is not None:
            return reversed_conv
        # Unit stride: the same pads crop ConvTranspose's full output to exactly X's extent, whatever the
        # spatial dims. ConvTranspose (GEMM + col2im) measured 12.3 CPU-ms against 15.2 for the equivalent
        # stride-1 Conv with reversed taps (conv2 of the seed CNN, 1 thread, AVX-512) and 22.5 vs 29.6 on AVX2;
        # depthwise 13.9 vs 14.7.
        return b.op("ConvTranspose", [dy, w], pads=list(pads[0] + pads[1]), shape=x.shape, **common)
    if spatial is not None:
        begin, end = pads
        if out is None:
            out = [(i + pb + pe - e) // s + 1
                   for i, pb, pe, e, s in zip(spatial, begin, end, geo.extent, geo.strides)]
        # ConvTranspose covers (O - 1) * s + extent positions of the padded input; crop the begin pads and
        # whatever lies past X, or add output_padding for trailing pixels no window reached.
        excess = [(o - 1) * s + e - pb - i for o, s, e, pb, i in zip(out, geo.strides, geo.extent, begin, spatial)]
        return b.op("ConvTranspose", [dy, w], pads=list(begin) + [max(c, 0) for c in excess],
                    output_padding=[max(-c, 0) for c in excess], shape=x.shape, **common)
    # Spatial dims known only at run time: make the uncropped result long enough (output_padding s - 1
    # covers any trailing pixels) and slice X's extent out of it from the begin pad on.
    full = b.op("ConvTranspose", [dy, w], pads=[0] * (2 * rank),
                output_padding=[s - 1 for s in geo.strides], **common)
    if pads is not None:
        starts = _ints(b, list(pads[0]))
    else:
        starts = _same_begin_pads(b, x, geo, ctx.attr("auto_pad") == "SAME_UPPER")
    return _slice_spatial(b, full, starts, x, rank)


def _one_hot_kernel(channels: int, kernel: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Weights of a depthwise Conv whose output channel ``c * K + j`` is input channel ``c`` at tap ``j``."""
    taps = int(np.prod(kernel))
    return np.tile(np.eye(taps, dtype=dtype), (channels, 1)).reshape((channels * taps, 1) + tuple(kernel))


_TAPS_MIN_CHANNELS = 16  # below this the per-tap GEMMs are too thin to beat the batched patches MatMul
# In a session with several intra-op threads the taps' Slices and Pad run on one thread while the patches Conv
# and MatMul use them all, and on some VMs every hand-over between cores is slow: there the taps win only from
# 128 channels (2 threads, AVX-512, whole training step of Conv-pool-Dense, ms: 16 -> 16 at 32x32, batch 128,
# taps 25.6 vs patches 20.7; 32 -> 64 at 14x14, 21.9 vs 19.7; 128 -> 128 at 14x14, batch 32, 28.9 vs 32.1;
# 256 -> 256 at 7x7 even; the residual BatchNorm CNN of bench/ 177 vs 156 ms per step). One thread keeps 16.
_TAPS_MIN_CHANNELS_THREADED = 128
# The patches hold every tap of X at once (9x X for a 3x3 kernel), the taps one Slice at a time: past this many
# patch elements per sample (1 MiB of float32; 128 MiB at batch 128) the threaded choice keeps the taps, so a
# wide early layer (64 channels at 56x56: 7 MiB per sample) does not trade memory for speed.
_THREADED_PATCHES_MAX_PER_SAMPLE = 1 << 18


def _taps_min_channels(patch_elements: int | None) -> int:
    """Fewest input channels for the per-tap GEMMs, given the patches' elements per sample (if known)."""
    threads = planned_threads()
    if threads is None or threads <= 1 or patch_elements is None or patch_elements > _THREADED_PATCHES_MAX_PER_SAMPLE:
        return _TAPS_MIN_CHANNELS
    return _TAPS_MIN_CHANNELS_THREADED


def _weight_grad(b: GraphBuilder, x: Value, dy: Value, w_shape: tuple, group: int, patch_attrs: dict,
                 spatial: tuple | None = None) -> Value:
    """``dW[m, c, k] = sum_{n, o} dY[n, m, o] * X[n, c, o * s + k * d - pad]`` for ``Y = Conv(X, W)``.

    ``patch_attrs`` are the conv's geometry attributes (kernel_shape, strides, dilations, pads / auto_pad);
    ``spatial`` X's static spatial dims where the caller knows them better than X's annotation.
    """
    m, cg = w_shape[0], w_shape[1]
    spatial = spatial or _spatial(x)
    out = _output_spatial(spatial, patch_attrs)
    positions = int(np.prod(out)) if out is not None else None
    kernel = tuple(patch_attrs["kernel_shape"])
    taps = int(np.prod(kernel))
    # A 1x1 stride-1 unpadded conv reads each pixel once: its patches are X itself.
    trivial = taps == 1 and all(s == 1 for s in patch_attrs.get("strides", [1]))
    trivial = trivial and not any(patch_attrs.get("pads", [0]))
    # With many positions, such a conv's weight gradient is best one GEMM per sample on X and dY as they lie
    # (no batch/channel Transposes; onnxruntime fuses the small Transpose of X's last two axes into the
    # MatMul). EfficientNet-B0's 1x1 convs (batch 4, 1 thread, AVX-512, CPU-ms, GEMM per tap -> per sample):
    # 16 -> 96 at 112x112 3.51 -> 1.54, 24 -> 144 at 56x56 1.42 -> 1.07, 144 -> 40 at 28x28 0.49 -> 0.39,
    # equal at 14x14; at 7x7 the per-sample GEMMs are too short (320 -> 1280: 1.60 -> 2.92).
    pointwise = trivial and group == 1 and positions is not None and positions >= _POINTWISE_MIN_POSITIONS
    by_taps = None
    patch_elements = cg * taps * positions if positions is not None else None
    if group == 1 and cg >= _taps_min_channels(patch_elements) and not pointwise:
        by_taps = _weight_grad_by_taps(b, x, dy, w_shape, patch_attrs, spatial)
    elif group > 1 and cg == 1 and m == group:
        by_taps = _depthwise_weight_grad_by_taps(b, x, dy, w_shape, patch_attrs, spatial)
    if by_taps is not None:
        return by_taps
    channels = cg * group
    if trivial:
        patches = x
    else:
        onehot = b.const(_one_hot_kernel(channels, kernel, np_dtype(x.dtype or onnx.TensorProto.FLOAT)))
        patches = b.op("Conv", [x, onehot], group=channels, **patch_attrs)
    if group == 1:
        p = b.op("Reshape", [patches, _ints(b, [0, cg * taps, -1])])
        g = b.op("Reshape", [dy, _ints(b, [0, m, -1])])
        perm = [0, 2, 1]
        if not pointwise and positions is not None and positions * (m + cg * taps) < m * cg * taps:
            # Few output positions per sample: the per-sample products would be far bigger ([N, M, C*K])
            # than patches and dY themselves, so both are laid out channel-major and contracted over the
            # whole batch at once. ResNet-18's last stride-2 conv at 64 px (256 -> 512, 2x2 outputs, batch
            # 8): the ReduceSum of the per-sample products alone took 7.8 ms.
            def channel_major(t: Value, rows: int) -> Value:
                return b.op("Reshape", [b.op("Transpose", [t], perm=[1, 0, 2]), _ints(b, [rows, -1])])
            grid = b.op("Gemm", [channel_major(g, m), channel_major(p, cg * taps)], transB=1)
            return b.op("Reshape", [grid, _ints(b, list(w_shape))], shape=tuple(w_shape))
    else:
        p = b.op("Reshape", [patches, _ints(b, [0, group, cg * taps, -1])])
        g = b.op("Reshape", [dy, _ints(b, [0, group, m // group, -1])])
        perm = [0, 1, 3, 2]
    if group == 1 and not pointwise and m < cg * taps:
        # dY the packed (second, transposed) operand when it is the smaller: MLAS repacks that one for every
        # sample's GEMM (residual BN CNN of bench/, in-process A/B, medians of 8: 149 -> 143 ms per step at
        # 2 threads, 248 -> 241 at 1 thread; its 16-channel 3x3 layers contract [144, 1024] x [1024, 16]).
        per_sample = b.op("MatMul", [p, b.op("Transpose", [g], perm=perm)])
        total = b.op("Transpose", [b.op("ReduceSum", [per_sample, _ints(b, [0])], keepdims=0)], perm=[1, 0])
        return b.op("Reshape", [total, _ints(b, list(w_shape))], shape=tuple(w_shape))
    per_sample = b.op("MatMul", [g, b.op("Transpose", [p], perm=perm)])
    total = b.op("ReduceSum", [per_sample, _ints(b, [0])], keepdims=0)
    return b.op("Reshape", [total, _ints(b, list(w_shape))], shape=tuple(w_shape))


def _output_spatial(spatial: tuple | None, patch_attrs: dict) -> list[int] | None:
    """The output's spatial dims of a conv with ``patch_attrs`` (explicit pads) on ``spatial``, if known."""
    if spatial is None or "pads" not in patch_attrs:
        return None
    rank = len(spatial)
    pads, kernel = patch_attrs["pads"], patch_attrs["kernel_shape"]
    strides = patch_attrs.get("strides") or [1] * rank
    dilations = patch_attrs.get("dilations") or [1] * rank
    return [(i + pb + pe - (k - 1) * d - 1) // s + 1
            for i, pb, pe, k, d, s in zip(spatial, pads[:rank], pads[rank:], kernel, dilations, strides)]


_POINTWISE_MIN_POSITIONS = 196  # below this the per-sample GEMMs are too short to beat one GEMM over the batch


def _weight_grad_by_taps(b: GraphBuilder, x: Value, dy: Value, w_shape: tuple, patch_attrs: dict,
                         spatial: tuple | None) -> Value | None:
    """The unit-stride, ungrouped weight gradient as one GEMM per kernel tap over the whole batch, or ``None``
    where that does not apply (strides, run-time spatial dims, ``auto_pad`` left to run time).

    With batch and channels swapped (``[C, N, ...]``, one Transpose of X and one of dY), each tap's slice of
    the padded X is a ``[C, N*O]`` matrix and ``dW[:, :, tap] = dY[M, N*O] @ slice^T`` is a single GEMM whose
    contraction runs over every output position of every sample: no per-sample GEMMs and no ReduceSum over
    the batch, and the slices (plain copies) replace the one-hot patches Conv. Seed CNN conv2 (32 -> 64
    channels, 14x14, batch 128, 1 thread, AVX-512): 14.9 vs 21.3 CPU-ms; 16 -> 16 at 32x32 20.9 vs 25.2;
    64 -> 64 at 8x8 10.8 vs 15.2. Strided convs gain nothing (their patches Conv only computes the strided
    outputs) and fewer than 16 input channels lose (conv1 of the seed CNN: 1 channel, 4.6 vs 2.3).
    """
    kernel = tuple(patch_attrs["kernel_shape"])
    rank = len(kernel)
    strides = patch_attrs.get("strides") or [1] * rank
    dilations = patch_attrs.get("dilations") or [1] * rank
    if any(s != 1 for s in strides) or "pads" not in patch_attrs or spatial is None:
        return None
    m, c = w_shape[0], w_shape[1]
    pads = list(patch_attrs["pads"])
    padded = [i + pb + pe for i, pb, pe in zip(spatial, pads[:rank], pads[rank:])]
    out = _output_spatial(spatial, patch_attrs)
    swap = [1, 0] + list(range(2, rank + 2))  # [N, C, ...] <-> [C, N, ...]
    unpadded = xc = b.op("Transpose", [x], perm=swap)
    if any(pads):
        xc = b.op("Pad", [xc, _ints(b, [0, 0] + pads[:rank] + [0, 0] + pads[rank:])])
    g = b.op("Reshape", [b.op("Transpose", [dy], perm=swap), _ints(b, [m, -1])])
    axes = _ints(b, list(range(2, rank + 2)))
    # Pack the smaller operand: MLAS repacks the transposed (second) one for every GEMM.
    m_rows = m >= c
    per_tap = []
    for tap in itertools.product(*(range(k) for k in kernel)):
        starts = [t * d for t, d in zip(tap, dilations)]
        if list(starts) == pads[:rank] and list(out) == list(spatial):
            tap_x = unpadded  # the tap that reads X exactly where it lies ('same' padding's centre): no copy
        elif any(starts) or any(st + o != n for st, o, n in zip(starts, out, padded)):
            tap_x = b.op("Slice", [xc, _ints(b, starts), _ints(b, [st + o for st, o in zip(starts, out)]), axes])
        else:
            tap_x = xc  # a 1x1 kernel reads the (padded) X as it is
        tap_x = b.op("Reshape", [tap_x, _ints(b, [c, -1])])
        per_tap.append(b.op("Gemm", [g, tap_x] if m_rows else [tap_x, g], transB=1))
    stacked = b.op("Concat", per_tap, axis=0) if len(per_tap) > 1 else per_tap[0]
    # [taps * M, C] or [taps * C, M] -> [M, C, *kernel]
    if m_rows:
        grid = b.op("Reshape", [stacked, _ints(b, [*kernel, m, c])])
        return b.op("Transpose", [grid], perm=[rank, rank + 1, *range(rank)], shape=tuple(w_shape))
    grid = b.op("Reshape", [stacked, _ints(b, [*kernel, c, m])])
    return b.op("Transpose", [grid], perm=[rank + 1, rank, *range(rank)], shape=tuple(w_shape))


def _depthwise_weight_grad_by_taps(b: GraphBuilder, x: Value, dy: Value, w_shape: tuple, patch_attrs: dict,
                                   spatial: tuple | None) -> Value | None:
    """The depthwise (one input and one output channel per group) weight gradient as, per kernel tap, a
    slice of the padded X times dY summed over batch and positions; ``None`` where it does not pay or apply.

    ``dW[c, 0, tap] = sum_{n, o} dY[n, c, o] * Xpad[n, c, o * s + tap * d]``. A stride ``s`` is handled by
    splitting the padded X once into its ``s``-strided phase planes, so that every tap reads one plane at unit
    stride. The patches formulation multiplies each pixel by a one-hot ``taps x taps`` kernel (625 MACs per
    pixel at 5x5) and keeps all taps' patches at once; this makes one pass of plain copies and products per
    tap. EfficientNet-B0's depthwise convs (batch 4, 1 thread, AVX-512, CPU-ms, patches -> taps): 5x5 at
    14x14 672 channels 20.5 -> 7.8, 5x5 stride 2 at 56x56 16.0 -> 8.4, 3x3 at 56x56 11.6 -> 10.4; only 3x3
    stride 2 loses (12.4 -> 21.0: the strided phase copies cost more than the small one-hot GEMM saves).
    """
    kernel = tuple(patch_attrs["kernel_shape"])
    rank = len(kernel)
    strides = list(patch_attrs.get("strides") or [1] * rank)
    dilations = list(patch_attrs.get("dilations") or [1] * rank)
    taps = int(np.prod(kernel))
    if "pads" not in patch_attrs or spatial is None or (any(s != 1 for s in strides) and taps < 16):
        return None
    channels = w_shape[0]
    pads = list(patch_attrs["pads"])
    padded = [i + pb + pe for i, pb, pe in zip(spatial, pads[:rank], pads[rank:])]
    out = _output_spatial(spatial, patch_attrs)
    spatial_axes = list(range(2, rank + 2))
    axes = _ints(b, spatial_axes)
    xp = b.op("Pad", [x, _ints(b, [0, 0] + pads[:rank] + [0, 0] + pads[rank:])]) if any(pads) else x
    planes: dict[tuple, Value] = {}

    def plane(phase: tuple) -> Value:
        # X's positions congruent to ``phase`` modulo the strides, one strided copy per phase in use.
        if phase not in planes:
            planes[phase] = xp if all(s == 1 for s in strides) else b.op(
                "Slice", [xp, _ints(b, list(phase)), _ints(b, padded), axes, _ints(b, strides)])
        return planes[phase]

    reduce_axes = _ints(b, [0] + spatial_axes)
    per_tap = []
    for tap in itertools.product(*(range(k) for k in kernel)):
        offsets = [t * d for t, d in zip(tap, dilations)]
        phase = tuple(o % s for o, s in zip(offsets, strides))
        starts = [o // s for o, s in zip(offsets, strides)]
        source = plane(phase)
        if all(s == 1 for s in strides) and offsets == pads[:rank] and list(out) == list(spatial):
            tap_x = x  # the tap that reads X where it lies ('same' padding's centre, a 1x1 kernel): no copy
        else:
            tap_x = b.op("Slice", [source, _ints(b, starts), _ints(b, [st + o for st, o in zip(starts, out)]), axes])
        per_tap.append(b.op("ReduceSum", [b.op("Mul", [tap_x, dy]), reduce_axes], keepdims=0))
    stacked = b.op("Concat", per_tap, axis=0) if len(per_tap) > 1 else per_tap[0]  # [taps * C]
    grid = b.op("Reshape", [stacked, _ints(b, [*kernel, channels])])
    by_channel = b.op("Transpose", [grid], perm=[rank, *range(rank)])
    return b.op("Reshape", [by_channel, _ints(b, list(w_shape))], shape=tuple(w_shape))


def _bias_grad(b: GraphBuilder, dy: Value, rank: int, channels: int) -> Value:
    return b.op("ReduceSum", [dy, _ints(b, [0] + list(range(2, rank + 2)))], keepdims=0, shape=(channels,))


# ------------------------------------------------------------------------- rules
@register("Conv")
def _conv(ctx: GradContext):
    x, w, dy = ctx.I(0), ctx.I(1), ctx.GO(0)
    b = ctx.b
    geo = _geometry(ctx, w)
    group = ctx.attr("group", 1)
    dx = _conv_input_grad(ctx, dy, w, x, geo, group) if ctx.needs(0) else None
    dw = None
    if ctx.needs(1):
        pads = _conv_pads(ctx, geo, _spatial(x))
        # Explicit pads where they are known: onnxruntime refuses auto_pad SAME with dilations.
        patch_attrs = {**geo.attrs(), **({"pads": list(pads[0] + pads[1])} if pads is not None
                                         else {"auto_pad": ctx.attr("auto_pad")})}
        dw = _weight_grad(b, x, dy, w.shape, group, patch_attrs)
    db = _bias_grad(b, dy, len(geo.kernel), w.shape[0]) if ctx.needs(2) else None
    return [dx, dw, db]


def _conv_transpose_pads(ctx: GradContext, geo: _Geometry, x: Value, out_pad: list[int]):
    """``(begin, end)`` pads of a ConvTranspose after ``auto_pad`` and ``output_shape``."""
    rank = len(geo.kernel)
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    output_shape = ctx.attr("output_shape")
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise ctx.fail(f"unknown auto_pad. Received: auto_pad={auto_pad!r}")
    if output_shape is None and auto_pad in ("NOTSET", "VALID"):
        pads = ctx.attr("pads") if auto_pad == "NOTSET" and ctx.attr("pads") else [0] * (2 * rank)
        return tuple(pads[:rank]), tuple(pads[rank:])
    if output_shape is not None:
        spatial = _spatial(x)
        if spatial is None:
            raise ctx.fail(f"output_shape needs X's spatial dims known while building. Received: {x.shape}")
        out = list(output_shape)[-rank:]
        total = [s * (i - 1) + p + e - o for s, i, p, e, o in zip(geo.strides, spatial, out_pad, geo.extent, out)]
    else:  # SAME: output = input * stride, so the total padding does not depend on the input size
        total = [p + e - s for p, e, s in zip(out_pad, geo.extent, geo.strides)]
    if any(t < 0 for t in total):
        raise ctx.fail(f"the implied total padding {total} is negative (output larger than the kernels "
                       "cover); that ConvTranspose has no exact adjoint Conv")
    begin = tuple(t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total)
    return begin, tuple(t - p for t, p in zip(total, begin))


@register("ConvTranspose")
def _conv_transpose(ctx: GradContext):
    x, w, dy = ctx.I(0), ctx.I(1), ctx.GO(0)
    b = ctx.b
    geo = _geometry(ctx, w)
    rank = len(geo.kernel)
    group = ctx.attr("group", 1)
    out_pad = list(ctx.attr("output_padding") or [0] * rank)
    begin, end = _conv_transpose_pads(ctx, geo, x, out_pad)
    if any(p - pe >= s for p, pe, s in zip(out_pad, end, geo.strides)):
        # onnxruntime refuses output_padding >= stride as well; the adjoint Conv would overshoot X.
        raise ctx.fail(f"output_padding must stay below strides + end pads. Received: "
                       f"output_padding={out_pad}, strides={list(geo.strides)}, end pads={list(end)}")
    # The adjoint Conv reads dY at i * s + k * d - begin: the same begin pad, and an end pad that makes
    # its output exactly X's length.
    conv_end = [max(pe - p, 0) for pe, p in zip(end, out_pad)]
    adjoint = dict(pads=list(begin) + conv_end, **geo.attrs())
    dx = b.op("Conv", [dy, w], group=group, shape=x.shape, **adjoint) if ctx.needs(0) else None
    dw = _weight_grad(b, dy, x, w.shape, group, adjoint, _spatial(ctx.O(0))) if ctx.needs(1) else None
    db = _bias_grad(b, dy, rank, w.shape[1] * group) if ctx.needs(2) else None
    return [dx, dw, db]

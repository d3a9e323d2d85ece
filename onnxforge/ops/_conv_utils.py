"""Shape and padding arithmetic shared by the convolution and pooling ops and layers (Keras / TensorFlow semantics).

Keras ``"same"`` padding puts the odd pixel at the end (TensorFlow's rule), which is ONNX's
``SAME_UPPER``. Pads are emitted explicitly wherever they are known while building (always for stride 1,
and whenever the spatial size is static), so gradient rules see plain ``pads``; an unknown size with
stride > 1 falls back on ``auto_pad="SAME_UPPER"``.
"""
from __future__ import annotations

__all__ = ["conv_output_length", "padding_attrs", "transpose_padding", "to_channels_first",
           "to_channels_last", "check_padding", "require_windows"]

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..graph import Value
from ..tracing import current_trace
from ..graph import emit as _ops


def check_padding(layer: str, padding: Any, allowed: Sequence[str]) -> str:
    value = str(padding).lower() if isinstance(padding, str) else padding
    if value not in allowed:
        raise ValueError(f"Invalid padding for layer {layer}: expected one of {tuple(allowed)}. "
                         f"Received: padding={padding!r}")
    return value


def conv_output_length(n: int | None, k: int, padding: str, stride: int, dilation: int = 1) -> int | None:
    """Keras's output length of a convolution / pooling window along one axis."""
    if n is None:
        return None
    dk = (k - 1) * dilation + 1
    if padding == "valid":
        return (n - dk) // stride + 1
    return (n - 1) // stride + 1  # "same" and "causal"


def require_windows(layer: Any, spatial: Sequence[Any], kernel: Sequence[int], dilations: Sequence[int],
                    padding: str) -> None:
    """With ``"valid"`` padding, each spatial size known only at run time must cover the window.

    A size fixed while building is checked then (``compute_output_shape``); a dynamic one (an
    ``Input((None, None, 1))``) is checked on the host before each run, with this layer's name, instead of
    surfacing as onnxruntime's "Invalid input shape" from an anonymous Conv node.
    """
    ctx = current_trace()
    if padding != "valid" or ctx is None:
        return
    for axis, (n, k, d) in enumerate(zip(spatial, kernel, dilations)):
        span = (k - 1) * d + 1
        if isinstance(n, str) and span > 1:
            ctx.require_dim(n, span, f"Layer {layer.name!r} ({type(layer).__name__}) needs spatial dimension {axis} "
                            f"of its input to be at least {span}: its window (size {tuple(kernel)}, dilation "
                            f"{tuple(dilations)}, padding='valid') cannot be greater than the input.")


def _same_pads(n: int | str | None, k: int, stride: int, dilation: int) -> tuple[int, int] | None:
    dk = (k - 1) * dilation + 1
    if stride == 1:
        total = dk - 1
    elif not isinstance(n, (int, np.integer)):
        # Unknown until run time (None, or a traced value's symbolic dim name such as an ``Input((None, 1))``
        # time axis reaching ``ops.conv``): the pads depend on it, so onnxruntime works them out (SAME_UPPER).
        return None
    else:
        total = max(((n - 1) // stride) * stride + dk - n, 0)
    return total // 2, total - total // 2


def padding_attrs(spatial: Sequence[int | str | None], kernel: Sequence[int], strides: Sequence[int],
                  dilations: Sequence[int], padding: str) -> dict:
    """ONNX ``pads`` (or ``auto_pad``) for a Conv / pool over the ``spatial`` input sizes."""
    n = len(kernel)
    if padding == "valid":
        return {"pads": [0] * (2 * n)}
    if padding == "causal":  # 1-D only: all the padding on the left
        return {"pads": [(kernel[0] - 1) * dilations[0], 0]}
    pads = [_same_pads(s, k, st, d) for s, k, st, d in zip(spatial, kernel, strides, dilations)]
    if any(p is None for p in pads):
        return {"auto_pad": "SAME_UPPER"}
    return {"pads": [p[0] for p in pads] + [p[1] for p in pads]}


def transpose_output_length(n: int | None, k: int, padding: str, output_padding: int | None, stride: int,
                            dilation: int = 1) -> int | None:
    """Keras's ``compute_conv_transpose_output_length`` along one axis."""
    if n is None:
        return None
    dk = (k - 1) * dilation + 1
    if output_padding is None:
        return n * stride + max(dk - stride, 0) if padding == "valid" else n * stride
    pad = dk // 2 if padding == "same" else 0
    return (n - 1) * stride + dk - 2 * pad + output_padding


def transpose_padding(k: int, padding: str, output_padding: int | None, stride: int,
                      dilation: int = 1) -> tuple[int, int, int]:
    """ONNX ``ConvTranspose`` (pad_begin, pad_end, output_padding) giving Keras's output along one axis.

    The full transposed convolution is ``(n - 1) * stride + dk`` long; Keras keeps ``out`` of it, cropping
    ``total = full - out`` with the smaller half at the start (TensorFlow's rule), or extending at the end
    when ``total < 0``. ``total`` does not depend on ``n``, so pads are static even for unknown sizes.
    """
    n = 1  # any length gives the same crop
    dk = (k - 1) * dilation + 1
    full = (n - 1) * stride + dk
    total = full - transpose_output_length(n, k, padding, output_padding, stride, dilation)
    if total >= 0:
        return total // 2, total - total // 2, 0
    return 0, 0, -total


def to_channels_first(x: Value, data_format: str) -> Value:
    if data_format == "channels_first":
        return x
    rank = len(x.shape)
    return _ops.transpose(x, (0, rank - 1, *range(1, rank - 1)))


def to_channels_last(x: Value, data_format: str) -> Value:
    if data_format == "channels_first":
        return x
    rank = len(x.shape)
    return _ops.transpose(x, (0, *range(2, rank), 1))

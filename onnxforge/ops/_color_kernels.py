"""RGB <-> HSV on graph values, with Keras 3's formulas (its torch backend's ``rgb_to_hsv`` / ``hsv_to_rgb``,
after dm_pix), so hue and saturation layers compute Keras's float32 numbers; and a per-image channel split.

Example:
    >>> import numpy as np, onnx, onnxruntime as ort
    >>> from onnxforge.graph import GraphBuilder
    >>> b = GraphBuilder()
    >>> x = b.input("x", onnx.TensorProto.FLOAT, (1, 1, 1, 3))
    >>> b.output(hsv_to_rgb(rgb_to_hsv(x, "channels_last"), "channels_last"), "y")
    >>> sess = ort.InferenceSession(b.to_model().SerializeToString(), providers=["CPUExecutionProvider"])
    >>> sess.run(None, {"x": np.array([[[[0.2, 0.4, 0.8]]]], np.float32)})[0].astype(float).round(3).tolist()
    [[[[0.2, 0.4, 0.8]]]]
"""
from __future__ import annotations

__all__ = ["rgb_to_hsv", "hsv_to_rgb", "split_channels", "join_channels"]

import numpy as np
import onnx

from ..graph import Value
from ..graph import emit as _ops


def _axis(data_format: str) -> int:
    return 3 if data_format == "channels_last" else 1


def split_channels(images: Value, data_format: str) -> list[Value]:
    """The three channel planes, each keeping its (size-1) channel axis."""
    b = images.builder
    axis = _axis(data_format)
    shape = list(images.shape) if images.shape is not None else None
    if shape is not None:
        shape[axis] = 1
    planes = b.op("Split", [images, _ops.ints(b, [1, 1, 1])], axis=axis, outputs=3)
    return [_ops.set_shape(v, shape) if shape is not None else v for v in planes]


def join_channels(planes: list[Value], data_format: str, like: Value) -> Value:
    return like.builder.op("Concat", planes, axis=_axis(data_format), shape=like.shape)


def _where(cond: Value, a, c) -> Value:
    b = cond.builder
    like = a if isinstance(a, Value) else c
    return b.op("Where", [cond, a, c], dtype=like.dtype, shape=like.shape)


def rgb_to_hsv(images: Value, data_format: str) -> Value:
    """Hue in [0, 1), saturation, value (the maximum channel): Keras's formulas, ties resolved as Keras does
    (green over blue, red over both)."""
    b = images.builder
    eps = float(np.finfo(np.float32).eps)
    images = _where(b.op("Less", [b.op("Abs", [images]), eps]), images * 0.0, images)
    r, g, bl = split_channels(images, data_format)
    value = b.op("Max", [r, g, bl], shape=r.shape)
    minimum = b.op("Min", [r, g, bl], shape=r.shape)
    spread = value - minimum
    positive_value = b.op("Greater", [value, 0.0])
    positive_spread = b.op("Greater", [spread, 0.0])
    one = r * 0.0 + 1.0
    saturation = _where(positive_value, spread / _where(positive_value, value, one), r * 0.0)
    norm = 1.0 / (_where(positive_spread, spread, one) * 6.0)
    hue = _where(b.op("Equal", [value, g]), norm * (bl - r) + 2.0 / 6.0, norm * (r - g) + 4.0 / 6.0)
    hue = _where(b.op("Equal", [value, r]), norm * (g - bl), hue)
    negative = b.op("Cast", [b.op("Less", [hue, 0.0])], to=hue.dtype or onnx.TensorProto.FLOAT, shape=r.shape)
    hue = _where(positive_spread, hue, r * 0.0) + negative
    return join_channels([hue, saturation, value], data_format, images)


def hsv_to_rgb(images: Value, data_format: str) -> Value:
    """The inverse of ``rgb_to_hsv`` (hue taken modulo 1)."""
    b = images.builder
    hue, saturation, value = split_channels(images, data_format)
    dh = b.op("Mod", [hue, 1.0], fmod=1)
    dh = _where(b.op("Less", [dh, 0.0]), dh + 1.0, dh) * 6.0  # torch.remainder: the divisor's sign

    def clip01(x: Value) -> Value:
        return b.op("Clip", [x, b.const(np.float32(0.0), x.dtype), b.const(np.float32(1.0), x.dtype)])
    dr = clip01(b.op("Abs", [dh - 3.0]) - 1.0)
    dg = clip01(2.0 - b.op("Abs", [dh - 2.0]))
    db = clip01(2.0 - b.op("Abs", [dh - 4.0]))
    one_minus_s = 1.0 - saturation
    planes = [value * (one_minus_s + saturation * d) for d in (dr, dg, db)]
    return join_channels(planes, data_format, images)

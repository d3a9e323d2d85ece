"""Random image augmentation active in training programs only (identity, cast to float, at inference):
``RandomFlip``, ``RandomRotation``, ``RandomZoom``, ``RandomTranslation``, ``RandomContrast``,
``RandomBrightness``.

Each draws its per-image parameters from the program's in-graph RNG (``current_trace().random_uniform``,
like ``Dropout``) with Keras 3's distributions; given the same parameters, the transforms compute Keras's
numbers: the geometric layers build Keras's affine matrices and resample like its torch backend's
``map_coordinates`` (bilinear or nearest, with the ``reflect`` / ``wrap`` / ``nearest`` / ``constant`` fill
modes) from standard ops (``Floor``, ``Mod``, ``GatherND``).
"""
from __future__ import annotations

__all__ = ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness"]

import math
from typing import Any

import numpy as np
import onnx

from ...graph import Value
from ...tracing import current_trace
from ...graph import emit as _ops
from ..base import Layer
from ..seed_state import LayerSeedGenerator
from ..reshaping import normalize_data_format
from ...ops._image_kernels import _f, affine_transform


_I64 = onnx.TensorProto.INT64
_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATIONS = ("nearest", "bilinear")


class _RandomImageLayer(Layer):
    """Shared: Keras's training flag (identity at inference), per-image uniforms, config."""

    _data_layer = True  # inside a Dataset.map its inputs take the compute dtype first (layers/host_inputs.py)
    _draws = True       # False: a deterministic image layer (AutoContrast), which Keras gives no SeedGenerator

    def __init__(self, data_format: str | None = None, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)
        self.seed = seed
        if self._draws:   # listed in `variables` as Keras lists it (see layers/seed_state.py)
            self.generator = LayerSeedGenerator(seed)

    def _uniform(self, images: Value, low: float, high: float, count: int = 1) -> list[Value]:
        """``count`` independent U[low, high) draws per image, each shaped ``(B, 1, 1, 1)``."""
        b = images.builder
        rank = len(images.shape)
        axes = list(range(1, rank))
        like = b.op("Slice", [images, _ops.ints(b, [0] * len(axes)), _ops.ints(b, [1] * len(axes)),
                              _ops.ints(b, axes)], shape=(images.shape[0], *(1,) * len(axes)))
        ctx = current_trace()
        return [ctx.random_uniform(like) * (high - low) + low for _ in range(count)]

    def _hw(self, images: Value) -> tuple[int, int]:
        shape = _ops.static_shape(images)
        h, w = (shape[1], shape[2]) if self.data_format == "channels_last" else (shape[2], shape[3])
        if h is None or w is None:
            raise ValueError(f"{type(self).__name__} {self.name!r} needs images of known size. Received shape {shape}")
        return h, w

    #: Whether the layer transforms its inputs at inference too (``AutoContrast`` does, as in Keras).
    _ALWAYS = False

    def call(self, inputs, training=True):
        # Keras's BaseImagePreprocessingLayer: a batch, one image (a tf.data ``map`` before ``batch``), or a
        # dict whose "images" entry is transformed (and its "labels" with the same draws, where they mix).
        data = dict(inputs) if isinstance(inputs, dict) else None
        if data is not None and "bounding_boxes" in data:
            # Keras needs bounding_box_format= for boxes; onnxforge's augmentation layers take none and would
            # hand the boxes back untransformed, so they are refused as Keras refuses them without a format.
            raise ValueError("You passed an input with a 'bounding_boxes' key, but you didn't specify a bounding box "
                             f"format. onnxforge's {type(self).__name__} does not transform bounding boxes (it takes "
                             "no `bounding_box_format`); transform the boxes yourself with "
                             "keras.utils.bounding_boxes, or pass the images alone.")
        images = data["images"] if data is not None else inputs
        if not (training or self._ALWAYS):
            return inputs
        images = self._prepare(images)
        rank = len(images.shape)
        if rank not in (3, 4):
            raise ValueError("Expected image tensor to have rank 3 (single image) or 4 (batch of images). "
                             f"Received: data.shape={_ops.static_shape(images)}")
        b = images.builder
        if rank == 3:   # one image: a batch of one, as Keras's transform_single_image
            images = b.op("Unsqueeze", [images, _ops.ints(b, [0])], shape=(1, *images.shape))
        out, params = self._augment_with_params(images)
        if rank == 3:
            out = b.op("Squeeze", [out, _ops.ints(b, [0])], shape=None if out.shape is None else tuple(out.shape[1:]))
        if data is None:
            return out
        data["images"] = out
        if "labels" in data and rank == 4:
            data["labels"] = self._transform_labels(data["labels"], params)
        return data

    def _prepare(self, images: Value) -> Value:
        """The images as the layer transforms them (the older layers take them as given)."""
        return images

    def _augment_with_params(self, images: Value) -> tuple[Value, Any]:
        """The transformed images and the draws that made them (``None``: nothing the labels need)."""
        return self._augment(images), None

    def _transform_labels(self, labels: Value, params: Any) -> Value:
        return labels

    def _augment(self, images: Value) -> Value:
        return self._transform(images, self._draw(images))

    # The split that RandAugment uses: one call's random parameters, then the transform they give.
    def _draw(self, images: Value) -> Any:
        return None

    def _transform(self, images: Value, params: Any) -> Value:
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict):   # {"images", "labels"}: tuple() of a dict would be its keys
            return dict(input_shape)
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return 0  # identity at inference

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "seed": self.seed}


class RandomFlip(_RandomImageLayer):
    """Flips each image with probability 1/2: ``"horizontal"``, ``"vertical"``, or
    ``"horizontal_and_vertical"`` (Keras 3 flips both axes on the same draw).

    Example:
        >>> from onnxforge.layers import Input, RandomFlip
        >>> RandomFlip("horizontal")(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def __init__(self, mode: str = "horizontal_and_vertical", seed: int | None = None, data_format: str | None = None,
                 **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        if mode not in ("horizontal", "vertical", "horizontal_and_vertical"):
            raise ValueError(f"RandomFlip layer {self.name} received an unknown mode argument {mode}")
        self.mode = mode

    def _augment(self, images):
        b = images.builder
        (u,) = self._uniform(images, 0.0, 1.0)
        flip = b.op("LessOrEqual", [u, 0.5])  # Keras: flip where uniform <= 0.5
        # A horizontal flip reverses the width axis, a vertical one the height axis.
        width_axis, height_axis = (2, 1) if self.data_format == "channels_last" else (3, 2)
        out = images
        for wanted, axis in (("horizontal", width_axis), ("vertical", height_axis)):
            if self.mode in (wanted, "horizontal_and_vertical"):
                flipped = b.op("Slice", [out, _ops.ints(b, [-1]), _ops.ints(b, [np.iinfo(np.int64).min]),
                                         _ops.ints(b, [axis]), _ops.ints(b, [-1])], shape=out.shape)
                out = b.op("Where", [flip, flipped, out], dtype=out.dtype, shape=out.shape)
        return out

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _symmetric(factor: Any, name: str, error: str, check) -> tuple[float, float]:
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2:
            raise ValueError(error + f"Received: {name}={factor}")
        for v in factor:
            check(v)
        return tuple(sorted(float(v) for v in factor))  # type: ignore[return-value]
    if isinstance(factor, (int, float)) and not isinstance(factor, bool):
        check(factor)
        return -abs(float(factor)), abs(float(factor))
    raise ValueError(error + f"Received: {name}={factor}")


class _AffineLayer(_RandomImageLayer):
    def __init__(self, fill_mode: str, interpolation: str, fill_value: float, data_format: str | None,
                 seed: int | None, **kwargs: Any):
        super().__init__(data_format, seed, **kwargs)
        if fill_mode not in _FILL_MODES:
            raise NotImplementedError(f"Unknown `fill_mode` {fill_mode}. Expected of one {_FILL_MODES}.")
        if interpolation not in _INTERPOLATIONS:
            raise NotImplementedError(f"Unknown `interpolation` {interpolation}. Expected of one {_INTERPOLATIONS}.")
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, float(fill_value)

    def _apply(self, images: Value, params: list[Value]) -> Value:
        """``params``: the six (B, 1, 1, 1) coefficients a0, a1, a2, b0, b1, b2."""
        b = images.builder
        flat = [b.op("Reshape", [p, _ops.ints(b, [-1, 1])]) for p in params]
        zeros = flat[0] * 0.0
        transform = b.op("Concat", flat + [zeros, zeros], axis=1)
        return affine_transform(images, transform, self.interpolation, self.fill_mode, self.fill_value,
                                self.data_format)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}


class RandomRotation(_AffineLayer):
    """Rotates each image by an angle drawn uniformly from ``factor * 2π`` (a fraction of a full turn, or a
    ``(low, high)`` pair), about its center (Keras 3's ``RandomRotation``).

    Example:
        >>> from onnxforge.layers import Input, RandomRotation
        >>> RandomRotation(0.1)(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def __init__(self, factor: Any, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0, data_format: str | None = None, **kwargs: Any):
        super().__init__(fill_mode, interpolation, fill_value, data_format, seed, **kwargs)

        def check(v):
            if not -1 <= v <= 1:
                raise ValueError(f"The `factor` argument should be a number (or a list of two numbers) in the range "
                                 f"[-1.0, 1.0]. Received: factor={factor}")
        self.factor = _symmetric(factor, "factor", "", check)

    def _draw(self, images):
        return self._uniform(images, self.factor[0] * 360.0, self.factor[1] * 360.0)[0]

    def _transform(self, images, angle):
        h, w = self._hw(images)
        b = images.builder
        theta = angle * (math.pi / 180.0)
        cos, sin = b.op("Cos", [theta]), b.op("Sin", [theta])
        cx, cy = 0.5 * (w - 1), 0.5 * (h - 1)
        a0, a1 = cos, -sin
        b0, b1 = sin, cos
        a2 = cx - a0 * cx - a1 * cy
        b2 = cy - b0 * cx - b1 * cy
        return self._apply(images, [a0, a1, a2, b0, b1, b2])

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


def _zoom_range(factor: Any, name: str) -> tuple[float, float]:
    def check(v):
        if v > 1.0 or v <= -1.0:
            raise ValueError(f"The `{name}` argument should be a number (or a list of two numbers) in the range "
                             f"(-1.0, 1.0]. Received: {name}={factor}")
    return _symmetric(factor, name, f"The `{name}` argument should be a number or a list of two numbers. ", check)


class RandomZoom(_AffineLayer):
    """Zooms each image by ``1 + U(height_factor)`` vertically (and ``1 + U(width_factor)`` horizontally, or
    the same factor when ``width_factor`` is ``None``); positive factors zoom out (Keras 3's ``RandomZoom``).

    Example:
        >>> from onnxforge.layers import Input, RandomZoom
        >>> RandomZoom(0.2)(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def __init__(self, height_factor: Any, width_factor: Any = None, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None, fill_value: float = 0.0,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(fill_mode, interpolation, fill_value, data_format, seed, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self.height_lower, self.height_upper = _zoom_range(height_factor, "height_factor")
        if width_factor is not None:
            self.width_lower, self.width_upper = _zoom_range(width_factor, "width_factor")

    def _augment(self, images):
        h, w = self._hw(images)
        (zy,) = self._uniform(images, 1.0 + self.height_lower, 1.0 + self.height_upper)
        zx = zy if self.width_factor is None else self._uniform(images, 1.0 + self.width_lower,
                                                                1.0 + self.width_upper)[0]
        zero = zy * 0.0
        x_offset = (1.0 - zx) * ((w - 1.0) / 2.0)
        y_offset = (1.0 - zy) * ((h - 1.0) / 2.0)
        return self._apply(images, [zx, zero, x_offset, zero, zy, y_offset])

    def get_config(self):
        def plain(v):
            return list(v) if isinstance(v, tuple) else v
        return {**super().get_config(), "height_factor": plain(self.height_factor),
                "width_factor": plain(self.width_factor)}


class RandomTranslation(_AffineLayer):
    """Shifts each image by ``U(height_factor) * height`` rows and ``U(width_factor) * width`` columns
    (Keras 3's ``RandomTranslation``).

    Example:
        >>> from onnxforge.layers import Input, RandomTranslation
        >>> RandomTranslation(0.1, 0.2)(Input(shape=(8, 8, 3))).shape
        (None, 8, 8, 3)
    """

    def __init__(self, height_factor: Any, width_factor: Any, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None, fill_value: float = 0.0,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(fill_mode, interpolation, fill_value, data_format, seed, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self.height_lower, self.height_upper = _zoom_range(height_factor, "height_factor")
        self.width_lower, self.width_upper = _zoom_range(width_factor, "width_factor")

    def _draw(self, images):
        return (self._uniform(images, self.height_lower, self.height_upper)[0],
                self._uniform(images, self.width_lower, self.width_upper)[0])

    def _transform(self, images, params):
        h, w = self._hw(images)
        dy, dx = params[0] * float(h), params[1] * float(w)
        one, zero = dy * 0.0 + 1.0, dy * 0.0
        return self._apply(images, [one, zero, -dx, zero, one, -dy])

    def get_config(self):
        def plain(v):
            return list(v) if isinstance(v, tuple) else v
        return {**super().get_config(), "height_factor": plain(self.height_factor),
                "width_factor": plain(self.width_factor)}


class RandomContrast(_RandomImageLayer):
    """Scales each image's deviation from its per-channel mean by a factor from ``U(1 - lower, 1 + upper)``
    (Keras 3's ranges), then clips to ``value_range``."""

    def __init__(self, factor: Any, value_range: Any = (0, 255), seed: int | None = None, **kwargs: Any):
        super().__init__(kwargs.pop("data_format", None), seed, **kwargs)

        def check(v):
            if not 0 <= v <= 1:
                raise ValueError(f"The `factor` argument should be a number (or a list of two numbers) in the range "
                                 f"[0.0, 1.0]. Received: factor={factor}")
        if isinstance(factor, (tuple, list)):
            if len(factor) != 2 or factor[0] > 1 or factor[1] < 0:
                raise ValueError(f"The `factor` argument should be a number (or a list of two numbers) in the range "
                                 f"[0.0, 1.0]. Received: factor={factor}")
            self.factor = tuple(sorted(factor))
        else:
            check(factor)
            self.factor = (max(-abs(factor), 0), abs(factor))
        self.value_range = tuple(value_range)

    def _draw(self, images):
        return self._uniform(images, 1.0 - self.factor[0], 1.0 + self.factor[1])[0]

    def _transform(self, images, f):
        b = images.builder
        axes = [1, 2] if self.data_format == "channels_last" else [2, 3]
        mean = _ops.reduce("ReduceMean", _ops.reduce("ReduceMean", images, [axes[0]], True), [axes[1]], True)
        out = (images - mean) * f + mean
        return b.op("Clip", [out, _f(b, self.value_range[0], images), _f(b, self.value_range[1], images)])

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range)}


class RandomBrightness(_RandomImageLayer):
    """Adds ``U(factor) * (value_range[1] - value_range[0])`` to each image, then clips to ``value_range``
    (Keras 3's ``RandomBrightness``)."""

    def __init__(self, factor: Any, value_range: Any = (0, 255), seed: int | None = None, **kwargs: Any):
        super().__init__(kwargs.pop("data_format", None), seed, **kwargs)

        def check(v):
            if not -1 <= v <= 1:
                raise ValueError(f"The `factor` argument should be a number (or a list of two numbers) in the range "
                                 f"[-1.0, 1.0]. Received: factor={factor}")
        self.factor = _symmetric(factor, "factor", "", check)
        if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
            raise ValueError(f"The `value_range` argument should be a list of two numbers. "
                             f"Received: value_range={value_range}")
        self.value_range = sorted(value_range)

    def _draw(self, images):
        return self._uniform(images, self.factor[0], self.factor[1])[0]

    def _transform(self, images, delta):
        b = images.builder
        out = images + delta * float(self.value_range[1] - self.value_range[0])
        return b.op("Clip", [out, _f(b, self.value_range[0], images), _f(b, self.value_range[1], images)])

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range)}

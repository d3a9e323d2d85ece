"""``keras.quantizers``: the quantizer objects, configs and functions Keras 3 exports.

The functions run on arrays (eagerly) and on graph values (inside a layer's ``call`` or a traced step) through
``onnxforge.ops``, with Keras's formulas: ``abs_max_quantize`` (``scale = hi / (max|x| + epsilon)``, values
rounded half to even and clipped), ``fake_quant_with_min_max_vars`` (TensorFlow's nudged range, with its
straight-through gradient that also reaches ``min_vals`` / ``max_vals``), and the float8 helpers
``compute_float8_scale``, ``compute_float8_amax_history`` and ``quantize_and_dequantize``. The configs
(``Int8QuantizationConfig`` ...) round-trip through ``serialize`` / ``deserialize`` as Keras writes them in layer
configs; layers quantize with the default int8 config only (``layers/quantization.py``).

Example:
    >>> import numpy as np
    >>> q, scale = abs_max_quantize(np.array([[0.5, -1.0, 0.25]], np.float32), axis=-1, to_numpy=True)
    >>> q.tolist(), round(float(scale[0, 0]), 3)
    ([[63, -127, 32]], 127.0)
"""
from __future__ import annotations

__all__ = ["Quantizer", "AbsMaxQuantizer", "QuantizationConfig", "Int8QuantizationConfig", "Int4QuantizationConfig",
           "Float8QuantizationConfig", "abs_max_quantize", "compute_float8_scale", "compute_float8_amax_history",
           "quantize_and_dequantize", "fake_quant_with_min_max_vars", "pack_int4", "unpack_int4", "get",
           "serialize", "deserialize", "is_default_int8_config", "is_default_int4_config",
           "abs_max_quantize_grouped_with_zero_point", "abs_max_quantize_grouped_numpy", "GPTQConfig", "AWQConfig"]

import inspect
from typing import Any

import numpy as np

EPSILON = 1e-7   # Keras's backend.epsilon()


def _ops() -> Any:
    from . import ops
    return ops


class Quantizer:
    """Base class of quantizers: ``quantizer(x)`` returns the quantized ``x``."""

    def __init__(self, output_dtype: str = "int8"):
        self.output_dtype = output_dtype

    def __call__(self, x: Any) -> Any:
        return x

    @classmethod
    def from_config(cls, config: dict) -> Quantizer:
        return cls(**config)

    def get_config(self) -> dict:
        raise NotImplementedError(f"{self} does not implement get_config()")


def abs_max_quantize(inputs: Any, axis: Any, value_range: tuple = (-127, 127), dtype: str = "int8",
                     epsilon: float = EPSILON, to_numpy: bool = False) -> tuple[Any, Any]:
    """``(quantized, scale)`` with ``scale = value_range[1] / (max|inputs| + epsilon)`` over ``axis`` (kept) and
    ``quantized = clip(round(inputs * scale), *value_range)`` cast to ``dtype``.

    Args:
        inputs: a tensor (array, Variable or graph value).
        axis: the axis (or axes) the abs-max is taken over.
        to_numpy: compute on the host with NumPy and return arrays (Keras's memory-saving path).
    """
    if to_numpy:
        x = np.asarray(inputs.numpy() if hasattr(inputs, "numpy") else inputs)
        ax = tuple(axis) if isinstance(axis, (list, tuple)) else axis
        scale = np.divide(value_range[1], np.add(np.max(np.abs(x), axis=ax, keepdims=True), epsilon))
        out = np.clip(np.round(np.multiply(x, scale)), value_range[0], value_range[1]).astype(dtype)
        return out, scale.astype(x.dtype)
    ops = _ops()
    x = ops.convert_to_tensor(inputs)
    ax = tuple(axis) if isinstance(axis, list) else axis
    scale = ops.divide(value_range[1], ops.add(ops.max(ops.abs(x), axis=ax, keepdims=True), epsilon))
    scale = ops.cast(scale, x.dtype)
    out = ops.clip(ops.round(ops.multiply(x, scale)), value_range[0], value_range[1])
    return ops.cast(out, dtype), scale


def abs_max_quantize_grouped_with_zero_point(inputs: Any, block_size: int, value_range: tuple = (-8, 7),
                                             dtype: str = "int8", epsilon: float = EPSILON,
                                             to_numpy: bool = False) -> tuple[Any, Any, Any]:
    """Keras's grouped asymmetric quantization of a 2-D ``(input_dim, output_dim)`` tensor: rows in groups of
    ``block_size``, each group's columns mapped from ``[min, max]`` to ``value_range``. Returns
    ``(quantized, scale, zero_point)``, the latter two ``(n_groups, output_dim)``.

    Computed on the host (Keras's ``to_numpy`` path; its device path gives the same values), so graph values are
    refused.
    """
    if _is_graph(inputs):
        raise NotImplementedError("abs_max_quantize_grouped_with_zero_point runs on arrays in onnxforge (a layer's "
                                  "weights are quantized once, on the host). Received a graph value.")
    x = np.asarray(inputs.numpy() if hasattr(inputs, "numpy") else inputs)
    if x.ndim != 2:
        raise ValueError(f"abs_max_quantize_grouped_with_zero_point expects a 2-D tensor. Received: shape={x.shape}")
    q, scale, zero = abs_max_quantize_grouped_numpy(x, int(block_size), tuple(value_range), epsilon)
    q = q.astype(dtype)
    if to_numpy:
        return q, scale, zero
    ops = _ops()
    return ops.convert_to_tensor(q), ops.convert_to_tensor(scale), ops.convert_to_tensor(zero)


def abs_max_quantize_grouped_numpy(w: np.ndarray, block_size: int, value_range: tuple = (-8, 7),
                                   epsilon: float = EPSILON) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras's ``abs_max_quantize_grouped_with_zero_point(..., to_numpy=True)``: rows in groups of
    ``block_size`` (the last one zero-padded), each group's columns mapped from ``[min, max]`` to
    ``value_range`` with a scale and an int8 zero point. Returns ``(q, scale, zero)``, the latter two
    ``(n_groups, columns)``."""
    w = np.asarray(w)
    rows, cols = w.shape
    groups = -(-rows // block_size)
    padded = np.concatenate([w, np.zeros((groups * block_size - rows, cols), w.dtype)]) if groups * block_size > rows \
        else w
    shaped = padded.reshape(groups, block_size, cols)
    lo, hi = np.min(shaped, axis=1, keepdims=True), np.max(shaped, axis=1, keepdims=True)
    qmin, qmax = value_range
    scale = np.divide(np.subtract(hi, lo) + epsilon, qmax - qmin)
    zero = np.clip(np.round(np.divide(-lo, scale)) + qmin, qmin, qmax)
    q = np.clip(np.round(np.divide(shaped, scale)) + zero, qmin, qmax).astype(np.int8)
    q = q.reshape(groups * block_size, cols)[:rows]
    return q, np.squeeze(scale, axis=1).astype(w.dtype), np.squeeze(zero, axis=1).astype(np.int8)


class AbsMaxQuantizer(Quantizer):
    """Abs-max quantization to ``value_range`` (``abs_max_quantize``) along ``axis`` (default the last).

    Example:
        >>> AbsMaxQuantizer().get_config()
        {'value_range': (-127, 127), 'epsilon': 1e-07, 'output_dtype': 'int8'}
    """

    def __init__(self, axis: Any = None, value_range: tuple = (-127, 127), epsilon: float = EPSILON,
                 output_dtype: str = "int8"):
        super().__init__(output_dtype=output_dtype)
        self.axis = None if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))
        self.value_range = tuple(value_range)
        self.epsilon = epsilon
        if output_dtype == "int8" and (self.value_range[0] < -128 or self.value_range[1] > 127):
            raise ValueError(f"Quantizer with output_dtype='int8' requires value_range to be within the interval "
                             f"[-128, 127]. Received: value_range={value_range}")

    def __call__(self, x: Any, axis: Any = None, to_numpy: bool = False) -> tuple[Any, Any]:   # type: ignore[override]
        axis = self.axis if axis is None else axis
        return abs_max_quantize(x, -1 if axis is None else axis, self.value_range, self.output_dtype, self.epsilon,
                                to_numpy)

    def get_config(self) -> dict:
        config: dict[str, Any] = {"value_range": self.value_range, "epsilon": self.epsilon,
                                  "output_dtype": self.output_dtype}
        if self.axis is not None:
            config["axis"] = self.axis
        return config

    @classmethod
    def from_config(cls, config: dict) -> AbsMaxQuantizer:
        return cls(**config)


# ------------------------------------------------------------------------------------------ configs
class QuantizationConfig:
    """Base of the quantization configs: a weight quantizer and an activation quantizer."""

    def __init__(self, weight_quantizer: Any = None, activation_quantizer: Any = None):
        self.weight_quantizer = weight_quantizer
        self.activation_quantizer = activation_quantizer

    @property
    def mode(self) -> str:
        raise NotImplementedError("Subclasses must implement this property. Do not instantiate QuantizationConfig "
                                  "directly.")

    def get_config(self) -> dict:
        return {"weight_quantizer": serialize(self.weight_quantizer),
                "activation_quantizer": serialize(self.activation_quantizer)}

    @classmethod
    def from_config(cls, config: dict) -> QuantizationConfig:
        return cls(weight_quantizer=deserialize(config.get("weight_quantizer")),
                   activation_quantizer=deserialize(config.get("activation_quantizer")))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class Int8QuantizationConfig(QuantizationConfig):
    """The int8 config; the default activation quantizer is ``AbsMaxQuantizer()`` (per token)."""

    def __init__(self, weight_quantizer: Any = None, activation_quantizer: Any = "default"):
        if isinstance(activation_quantizer, str) and activation_quantizer == "default":
            activation_quantizer = AbsMaxQuantizer()
        super().__init__(weight_quantizer, activation_quantizer)
        if weight_quantizer is not None and getattr(weight_quantizer, "output_dtype", None) != "int8":
            raise ValueError("Int8QuantizationConfig requires a weight_quantizer with output_dtype='int8'. "
                             f"Received: output_dtype={getattr(weight_quantizer, 'output_dtype', None)}")

    @property
    def mode(self) -> str:
        return "int8"


class Int4QuantizationConfig(QuantizationConfig):
    """The int4 config (weight-only by default, ``block_size`` 128); onnxforge's layers do not quantize to int4."""

    def __init__(self, weight_quantizer: Any = None, activation_quantizer: Any = "default", block_size: Any = 128):
        if isinstance(activation_quantizer, str) and activation_quantizer == "default":
            activation_quantizer = None
        super().__init__(weight_quantizer, activation_quantizer)
        if block_size is not None and block_size != -1 and block_size <= 0:
            raise ValueError(f"block_size must be None, -1, or a positive integer. Received: block_size={block_size}")
        self.block_size = block_size

    @property
    def mode(self) -> str:
        return "int4"

    def get_config(self) -> dict:
        return {**super().get_config(), "block_size": self.block_size}

    @classmethod
    def from_config(cls, config: dict) -> Int4QuantizationConfig:
        return cls(weight_quantizer=deserialize(config.get("weight_quantizer")),
                   activation_quantizer=deserialize(config.get("activation_quantizer")),
                   block_size=config.get("block_size"))


class Float8QuantizationConfig(QuantizationConfig):
    """The float8 config (no quantizers); onnxforge's layers do not train in float8."""

    def __init__(self) -> None:
        super().__init__(None, None)

    @property
    def mode(self) -> str:
        return "float8"

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Float8QuantizationConfig:
        return cls()


class GPTQConfig(QuantizationConfig):
    """Keras's GPTQ config: refused (GPTQ calibrates with a dataset and a tokenizer; onnxforge computes int8 and
    int4 only)."""

    def __init__(self, *args: Any, **kwargs: Any):
        raise NotImplementedError("GPTQ quantization (keras.quantizers.GPTQConfig) is not supported by onnxforge; "
                                  "the supported modes are 'int8' and 'int4'.")


class AWQConfig(QuantizationConfig):
    """Keras's AWQ config: refused, as ``GPTQConfig``."""

    def __init__(self, *args: Any, **kwargs: Any):
        raise NotImplementedError("AWQ quantization (keras.quantizers.AWQConfig) is not supported by onnxforge; "
                                  "the supported modes are 'int8' and 'int4'.")


def is_default_int8_config(config: Any) -> bool:
    """Whether ``config`` quantizes as ``Int8QuantizationConfig()`` does (the only config layers compute)."""
    if not isinstance(config, Int8QuantizationConfig):
        return False
    w, a = config.weight_quantizer, config.activation_quantizer
    weight_ok = w is None or (type(w) is AbsMaxQuantizer and w.get_config() == AbsMaxQuantizer(axis=w.axis)
                              .get_config())
    act_ok = type(a) is AbsMaxQuantizer and a.axis in (None, (-1,)) and \
        (tuple(a.value_range), a.epsilon, a.output_dtype) == ((-127, 127), EPSILON, "int8")
    return weight_ok and act_ok and (w is None or w.axis is None)


def is_default_int4_config(config: Any) -> bool:
    """Whether ``config`` is an ``Int4QuantizationConfig`` without custom quantizers (any block size)."""
    return isinstance(config, Int4QuantizationConfig) and config.weight_quantizer is None and \
        config.activation_quantizer is None


# ------------------------------------------------------------------------------------------ (de)serialization
_OBJECTS: dict[str, type] = {cls.__name__: cls for cls in (Quantizer, AbsMaxQuantizer, QuantizationConfig,
                                                            Int8QuantizationConfig, Int4QuantizationConfig,
                                                            Float8QuantizationConfig, GPTQConfig, AWQConfig)}
_OBJECTS.update({"abs_max_quantizer": AbsMaxQuantizer, "int8_quantization_config": Int8QuantizationConfig,
                 "int4_quantization_config": Int4QuantizationConfig,
                 "float8_quantization_config": Float8QuantizationConfig})


def serialize(obj: Any) -> Any:
    """Keras 3's form ``{"module": "keras.quantizers", "class_name": ..., "config": ...}`` (``None`` stays)."""
    if obj is None:
        return None
    config = obj.get_config()
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
    return {"module": "keras.quantizers", "class_name": type(obj).__name__, "config": config,
            "registered_name": None}


def deserialize(config: Any, custom_objects: dict | None = None) -> Any:
    """The quantizer or config a ``serialize`` dict describes (``None`` stays)."""
    if config is None or isinstance(config, (Quantizer, QuantizationConfig)):
        return config
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ValueError(f"Could not interpret quantizer identifier: {config!r}")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or _OBJECTS.get(name)
    if cls is None:
        raise ValueError(f"Unknown quantizer class {name!r}; known: {sorted(n for n in _OBJECTS if n[0].isupper())}. "
                         f"Received: {config!r}")
    args = dict(config.get("config") or {})
    if "value_range" in args and isinstance(args["value_range"], list):
        args["value_range"] = tuple(args["value_range"])
    if "axis" in args and isinstance(args["axis"], list):
        args["axis"] = tuple(args["axis"])
    return cls.from_config(args)


def get(identifier: Any, **kwargs: Any) -> Any:
    """A quantizer from ``None``, a serialized dict, a class name or an instance (Keras's ``quantizers.get``)."""
    if identifier is None:
        return None
    obj = deserialize(identifier) if isinstance(identifier, dict) else \
        _OBJECTS.get(identifier) if isinstance(identifier, str) else identifier
    if callable(obj):
        return obj(**kwargs) if inspect.isclass(obj) else obj
    raise ValueError(f"Could not interpret quantizer identifier: {identifier}")


# ------------------------------------------------------------------------------------------ other functions
def compute_float8_scale(amax: Any, scale: Any, dtype_max: float, margin: int = 0) -> Any:
    """The new float8 scale from the amax history's maximum (TransformerEngine's rule, as Keras)."""
    ops = _ops()
    scale = ops.reciprocal(scale)
    sf = ops.divide(ops.divide(dtype_max, amax), 2 ** margin)
    sf = ops.where(ops.greater(amax, 0.0), sf, scale)
    sf = ops.where(ops.isfinite(amax), sf, scale)
    return ops.reciprocal(sf)


def compute_float8_amax_history(x: Any, amax_history: Any) -> Any:
    """``amax_history`` rolled by one with ``max|x|`` written first."""
    ops = _ops()
    amax = ops.cast(ops.max(ops.abs(x)), amax_history.dtype)
    return ops.scatter_update(ops.roll(amax_history, shift=-1), [[0]], ops.reshape(amax, [1]))


_FLOAT8_MAX = {"float8_e4m3fn": 448.0, "float8_e5m2": 57344.0}


def quantize_and_dequantize(inputs: Any, scale: Any, quantized_dtype: str, compute_dtype: str) -> Any:
    """``inputs / scale`` clipped to the quantized type's range, rounded to it, times ``scale`` again.

    The rounding to float8 is emulated with ``ml_dtypes`` on arrays; inside a graph only the clipping is
    expressible in ai.onnx before opset 19's float8 types, so graph values are refused.
    """
    if quantized_dtype not in _FLOAT8_MAX:
        raise ValueError(f"quantize_and_dequantize: quantized_dtype must be one of {sorted(_FLOAT8_MAX)}. "
                         f"Received: quantized_dtype={quantized_dtype!r}")
    ops = _ops()
    if _is_graph(inputs) or _is_graph(scale):
        raise NotImplementedError(f"quantize_and_dequantize(quantized_dtype={quantized_dtype!r}) runs on arrays "
                                  "only in onnxforge (its float8 rounding has no ai.onnx form in the pinned opset).")
    import ml_dtypes

    top = _FLOAT8_MAX[quantized_dtype]
    x = np.asarray(ops.convert_to_numpy(inputs), dtype=compute_dtype)
    s = np.asarray(ops.convert_to_numpy(scale), dtype=compute_dtype)
    q = np.clip(x / s, -top, top).astype(getattr(ml_dtypes, quantized_dtype))
    return ops.convert_to_tensor(q.astype(compute_dtype) * s)


def _is_graph(x: Any) -> bool:
    from .graph import Value
    return isinstance(x, Value)


def _adjust_and_nudge(min_range: Any, max_range: Any, num_bits: int, narrow_range: bool) -> tuple:
    ops = _ops()
    min_range, max_range = ops.cast(min_range, "float32"), ops.cast(max_range, "float32")
    quant_max = (1 << num_bits) - 1
    quant_min = 1 if narrow_range else 0
    diff = ops.subtract(max_range, min_range)
    scale = ops.divide(diff, quant_max - quant_min)
    inv_scale = ops.divide(quant_max - quant_min, diff)
    zero_point = ops.clip(quant_min - ops.divide(min_range, scale), quant_min, quant_max)
    nudged_zero = ops.round(zero_point)
    nudged_min = ops.multiply(ops.subtract(quant_min, nudged_zero), scale)
    nudged_max = ops.multiply(ops.subtract(quant_max, nudged_zero), scale)
    return nudged_min, nudged_max, scale, inv_scale


def fake_quant_with_min_max_vars(inputs: Any, min_vals: Any, max_vals: Any, num_bits: int = 8,
                                 narrow_range: bool = False, axis: int | None = None) -> Any:
    """TensorFlow's ``fake_quant_with_min_max_vars`` (per tensor, or per channel along ``axis``), with its
    gradient: ``inputs`` get the upstream gradient inside the nudged range, ``min_vals`` / ``max_vals`` the sum
    of it below / above."""
    ops = _ops()
    num_bits = int(num_bits)
    if axis is not None:
        axis = axis % len(inputs.shape if hasattr(inputs, "shape") else np.shape(inputs))

    @ops.custom_gradient
    def fake_quant(x: Any, min_val: Any, max_val: Any) -> Any:
        nudged_min, nudged_max, scale, inv_scale = _adjust_and_nudge(min_val, max_val, num_bits, narrow_range)
        quant_zero = ops.floor(ops.add(ops.multiply(ops.negative(nudged_min), inv_scale), 0.5))
        clamped = ops.clip(ops.cast(x, "float32"), nudged_min, nudged_max)
        shifted = ops.subtract(clamped, nudged_min)
        result = ops.multiply(ops.floor(ops.add(ops.subtract(ops.multiply(shifted, inv_scale), quant_zero), 0.5)),
                              scale)
        result = ops.cast(result, x.dtype)
        inside = ops.logical_and(ops.greater_equal(x, nudged_min), ops.less_equal(x, nudged_max))

        def grad(upstream: Any) -> tuple:
            dx = ops.where(inside, upstream, 0.0)
            axes = [i for i in range(len(x.shape)) if i != axis]
            below = ops.where(ops.less_equal(x, nudged_min), upstream, 0.0)
            above = ops.where(ops.greater_equal(x, nudged_max), upstream, 0.0)
            d_min = ops.sum(below, axis=axes) if axis is not None else ops.sum(below)
            d_max = ops.sum(above, axis=axes) if axis is not None else ops.sum(above)
            return dx, ops.reshape(d_min, ops.shape(min_val)), ops.reshape(d_max, ops.shape(max_val))
        return result, grad

    # Variables pass as they are, so an open GradientTape follows them into the custom gradient.
    return fake_quant(inputs, min_vals, max_vals)


def pack_int4(arr: Any, axis: int = 0, dtype: str = "int8") -> tuple[np.ndarray, tuple, int]:
    """Two int4 values per byte along ``axis`` (low nibble first), as Keras packs its int4 kernels: returns
    ``(packed, packed_shape, orig_len)``. NumPy arrays only."""
    a = np.asarray(arr)
    if a.dtype not in (np.int8, np.uint8):
        raise TypeError(f"pack_int4 expects an int8 or uint8 tensor. Received: dtype={a.dtype}")
    axis = axis % a.ndim
    moved = np.moveaxis(a, axis, 0)
    n = moved.shape[0]
    if n % 2:
        moved = np.concatenate([moved, np.zeros((1, *moved.shape[1:]), moved.dtype)], axis=0)
    low, high = moved[0::2].astype(np.int16) & 0x0F, moved[1::2].astype(np.int16) & 0x0F
    packed = np.moveaxis(((high << 4) | low).astype(np.uint8).view(np.int8 if dtype == "int8" else np.uint8), 0,
                         axis)
    return packed, packed.shape, n


def unpack_int4(packed: Any, orig_len: int, axis: int = 0, dtype: str = "int8") -> np.ndarray:
    """The inverse of ``pack_int4``: signed int4 values in int8 (``dtype="int8"``) or nibbles in uint8."""
    p = np.asarray(packed)
    axis = axis % p.ndim
    moved = np.moveaxis(p.view(np.uint8), axis, 0).astype(np.int16)
    low, high = moved & 0x0F, (moved >> 4) & 0x0F
    if dtype == "int8":
        low, high = np.where(low > 7, low - 16, low), np.where(high > 7, high - 16, high)
    out = np.empty((2 * moved.shape[0], *moved.shape[1:]), np.int16)
    out[0::2], out[1::2] = low, high
    return np.moveaxis(out[:orig_len].astype(np.int8 if dtype == "int8" else np.uint8), 0, axis)

"""Core layers: ``Dense``, ``Activation``, ``Embedding``."""
from __future__ import annotations

__all__ = ["Dense", "Activation", "Embedding", "Identity", "apply_activation", "check_positive_int", "set_constraints",
           "reject_unsupported"]

from typing import Any, Callable

import numpy as np
import onnx

from .. import activations as activations_mod
from .. import initializers as initializers_mod
from .. import regularizers as regularizers_mod
from .. import constraints as constraints_mod
from ..constraints import check_constraint
from ..graph import Value
from ..tracing import current_trace
from ..graph import emit as _ops
from .base import InputSpec, Layer
from .keras_tensor import KerasTensor
from .int4_weights import Int4WeightsMixin, unpack_int4_graph
from .lora import LoraMixin
from .quantization import (QuantizeMixin, abs_max_quantize_grouped_numpy, abs_max_quantize_numpy, int8_product,
                           quantizable, quantization_config_arg, serialize_config)


def check_positive_int(layer: str, arg: str, value: Any) -> int:
    """``value`` as an int if it is a positive integer, else a Keras-style ``ValueError``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Received an invalid value for `{arg}` of layer {layer}, expected a positive integer. "
                         f"Received: {arg}={value!r}")
    return int(value)


def reject_unsupported(layer: str, **args: Any) -> None:
    """Raise for each Keras argument given a value other than its inert default ``None``: onnxforge accepts the
    keyword (Keras configs carry it) but does not implement what it asks for, and would otherwise train a
    different model silently. (LoRA and the default quantization configs are supported: ``layers/lora.py``,
    ``layers/quantization.py``.)"""
    for arg, value in args.items():
        if value is not None:
            raise NotImplementedError(f"Layer {layer!r}: {arg} is not supported by onnxforge (only the default "
                                      f"None). Received: {arg}={value!r}")


def set_constraints(layer: Any, **constraints: Any) -> None:
    """Set ``layer.<arg>`` to each constraint argument, read by ``constraints.get`` (a bad one raises with the
    argument named); ``build`` hands them to ``add_weight``."""
    for arg, value in constraints.items():
        setattr(layer, arg, check_constraint(layer.name, arg, value))


def apply_activation(activation: Callable | None, x: Value) -> Value:
    """``activation(x)``; elementwise built-ins run before a pending layout transpose (see ``_ops``)."""
    # None is the identity, as in Keras's layers: Grad-CAM programs write ``layer.activation = None`` on a
    # built model to read the logits under a softmax classifier.
    if activation is None or activation is activations_mod.linear:
        return x
    if activation in activations_mod.ELEMENTWISE:
        return _ops.elementwise(x, activation)
    return activation(x)


def _flops_activation(activation: Callable, out_elems: int) -> int:
    return 0 if activation is None or activation is activations_mod.linear else out_elems


@quantizable
class Dense(QuantizeMixin, Int4WeightsMixin, LoraMixin, Layer):
    """``activation(inputs @ kernel + bias)``; kernel ``(input_dim, units)``.

    Example:
        >>> from onnxforge.layers import Dense, Input
        >>> Dense(4, activation="relu")(Input(shape=(3,))).shape
        (None, 4)
    """

    supports_masking = True
    _lora_alpha_at_build = False   # Keras's Dense.build enables a configured lora_rank with alpha = rank

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, lora_rank: int | None = None,
                 lora_alpha: float | None = None, quantization_config: Any = None, **kwargs: Any):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.quantization_config = quantization_config_arg(self.name, quantization_config)
        self._init_lora(lora_rank, lora_alpha)
        self.units = check_positive_int(self.name, "units", units)
        set_constraints(self, kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        self.activation = activations_mod.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers_mod.get(kernel_initializer)
        self.bias_initializer = initializers_mod.get(bias_initializer)
        self.kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)
        self.input_spec = InputSpec(min_ndim=2)

    _supports_int4 = True

    def _keras_saved_variables(self):    # Keras's Dense.save_own_variables writes exactly these
        return [v for v in (getattr(self, "kernel", None), getattr(self, "bias", None),
                            getattr(self, "kernel_scale", None), getattr(self, "kernel_zero", None),
                            getattr(self, "g_idx", None)) if v is not None]

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"Layer {self.name!r} needs a known last input dimension. "
                             f"Received: input_shape={tuple(input_shape)}")
        if self._check_build_mode():   # a quantized layer read back from its config: int8 kernel and its scale
            if self.quantization_mode == "int4":
                self._int4_build((input_dim, self.units), self._int4_block())
            else:
                self._int8_build((input_dim, self.units))
        else:
            self.kernel = self.add_weight(shape=(input_dim, self.units), initializer=self.kernel_initializer,
                                          name="kernel", regularizer=self.kernel_regularizer,
                                          constraint=self.kernel_constraint)
        self.bias = (self.add_weight(shape=(self.units,), initializer=self.bias_initializer, name="bias",
                                     regularizer=self.bias_regularizer,
                                     constraint=self.bias_constraint) if self.use_bias else None)
        self.input_spec = InputSpec(min_ndim=2, axes={-1: input_dim})
        self.built = True
        self._build_lora()

    def call(self, inputs, training=None):   # ``training`` as Keras's (subclasses forward their **kwargs)
        if self.quantization_mode == "int8":
            y = self._int8_call(inputs)
        elif self.quantization_mode == "int4":
            y = self._int4_call(inputs)
        else:
            y = inputs @ self._lora_weight()
        if self.bias is not None:
            y = y + self.bias
        return apply_activation(self.activation, y)

    def _int8_call(self, inputs):
        """Keras's ``Dense._int8_call`` before the bias: the int8 product, then the LoRA update if enabled."""
        y = int8_product(inputs, self.kernel, self.kernel_scale, [-1], lambda xq, w: xq @ w,
                         lambda dy, w: dy @ _ops.transpose(w / self.kernel_scale, (1, 0)))
        if self.lora_enabled:
            y = y + (self.lora_alpha / self.lora_rank) * ((inputs @ self.lora_kernel_a) @ self.lora_kernel_b)
        return y

    # ------------------------------------------------------------------ int4 (Keras's weight-only mode)
    def _int4_build(self, shape, block):
        """Keras's int4 weights: the kernel packed two values per byte along the units axis, its scale (and, per
        group of ``block`` input rows, an int8 zero point and the rows' group index ``g_idx``)."""
        input_dim, units = shape
        scale_shape = (units,) if block == -1 else (-(-input_dim // block), units)
        self._int4_weights((input_dim, (units + 1) // 2), scale_shape, input_dim, block)

    def _int4_quantize(self, weight, block):
        self._int4_quantize_matrix(weight, np.asarray(weight.numpy(), dtype=np.float32), block)

    def _int4_call(self, inputs):
        """Keras's ``Dense._int4_call``: weight-only, the unpacked kernel in floats; per channel the product is
        divided by the scale, per group the kernel is dequantized first, ``(q - zero) * scale``."""
        b = inputs.builder
        w = unpack_int4_graph(self.kernel.__onnx_value__(), self.units)
        if getattr(self, "g_idx", None) is None:
            return (inputs @ w) / self.kernel_scale
        groups = b.op("Cast", [self.g_idx], to=onnx.TensorProto.INT64)
        scale = b.op("Gather", [self.kernel_scale, groups], axis=0)
        zero = b.op("Cast", [b.op("Gather", [self.kernel_zero, groups], axis=0)], to=onnx.TensorProto.FLOAT)
        return inputs @ ((w - zero) * scale)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.units)

    def _count_flops(self, input_shapes, output_shapes):
        rows = int(np.prod([d or 1 for d in input_shapes[0][1:-1]]))
        out = rows * self.units
        return 2 * rows * input_shapes[0][-1] * self.units + (out if self.use_bias else 0) + \
            _flops_activation(self.activation, out)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations_mod.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers_mod.serialize(self.kernel_initializer),
                "bias_initializer": initializers_mod.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers_mod.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers_mod.serialize(self.bias_regularizer),
                "kernel_constraint": constraints_mod.serialize(self.kernel_constraint),
                "bias_constraint": constraints_mod.serialize(self.bias_constraint), **serialize_config(self)}


class Activation(Layer):
    """Applies an activation function (a name like ``"relu"`` or a callable on graph values)."""

    supports_masking = True

    def __init__(self, activation: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.activation = activations_mod.get(activation)

    def call(self, inputs):
        return apply_activation(self.activation, inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _count_flops(self, input_shapes, output_shapes):
        return _flops_activation(self.activation, int(np.prod([d or 1 for d in output_shapes[0][1:]])))

    def get_config(self):
        return {**super().get_config(), "activation": activations_mod.serialize(self.activation)}


@quantizable
class Embedding(QuantizeMixin, Int4WeightsMixin, LoraMixin, Layer):
    """Maps integer indices to dense vectors: ``embeddings[inputs]``; embeddings ``(input_dim, output_dim)``.

    ``mask_zero=True`` makes index 0 padding: the mask it computes travels to later layers (recurrent layers
    skip padded steps; global pooling and merges respect it), as in Keras.
    """

    _autocast = False  # indices stay integers
    _reads_ids = True  # a Sequential built by a first call on integer ids keeps them integers
    _lora_target, _lora_factor_names = "embeddings", ("lora_embeddings_a", "lora_embeddings_b")
    _lora_constraint = "embeddings_constraint"
    _lora_alpha_at_build = False   # as Keras's Embedding.build
    _quantize_target, _quantize_scale = "embeddings", "embeddings_scale"

    def _quantize_reduced_axes(self):   # one scale per row (Keras: output_dim is usually the smaller axis)
        return (1,)

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer: Any = "uniform",
                 embeddings_regularizer: Any = None, embeddings_constraint: Any = None, mask_zero: bool = False,
                 weights: Any = None, lora_rank: int | None = None, lora_alpha: float | None = None,
                 quantization_config: Any = None, input_length: int | None = None, **kwargs: Any):
        if input_length is not None and "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)  # tf.keras 2 argument: the sequence length
        super().__init__(**kwargs)
        self.quantization_config = quantization_config_arg(self.name, quantization_config)
        self._init_lora(lora_rank, lora_alpha)
        self.input_dim = check_positive_int(self.name, "input_dim", input_dim)
        self.output_dim = check_positive_int(self.name, "output_dim", output_dim)
        set_constraints(self, embeddings_constraint=embeddings_constraint)
        self.embeddings_initializer = initializers_mod.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers_mod.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero  # as Keras: the layer reports the mask it makes
        if weights is not None:
            self.build(None)
            self.set_weights(weights if isinstance(weights, (list, tuple)) else [weights])

    _supports_int4 = True

    def _keras_saved_variables(self):    # Keras's Embedding.save_own_variables writes exactly these
        return [v for v in (getattr(self, "embeddings", None), getattr(self, "embeddings_scale", None),
                            getattr(self, "embeddings_zero", None), getattr(self, "g_idx", None)) if v is not None]

    def build(self, input_shape=None):
        if self.built:
            return
        if self._check_build_mode():   # a quantized layer read back from its config
            if self.quantization_mode == "int4":
                self._int4_build((self.input_dim, self.output_dim), self._int4_block())
            else:
                self._int8_build((self.input_dim, self.output_dim))
        else:
            self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                              initializer=self.embeddings_initializer, name="embeddings",
                                              regularizer=self.embeddings_regularizer,
                                              constraint=self.embeddings_constraint)
        self.built = True
        self._build_lora()

    def call(self, inputs):
        b = inputs.builder
        ctx = current_trace()
        if ctx is not None:
            # Gather fails inside onnxruntime for ids >= input_dim and wraps negative ones to the end of
            # the table; Keras (torch) raises. Ids fed straight from the data are checked before each run.
            ctx.require_values(inputs, 0, self.input_dim - 1, f"Embedding layer {self.name!r} received an id "
                               f"outside [0, input_dim={self.input_dim}): every id must be a non-negative integer "
                               f"smaller than input_dim.")
        if inputs.dtype not in (onnx.TensorProto.INT32, onnx.TensorProto.INT64):
            inputs = b.op("Cast", [inputs], to=onnx.TensorProto.INT64, shape=inputs.shape)
        if self.quantization_mode == "int8":
            return self._int8_call(inputs)
        if self.quantization_mode == "int4":
            return self._int4_call(inputs)
        return b.op("Gather", [self._lora_weight(), inputs], axis=0)

    def _int4_build(self, shape, block):
        """Keras's int4 embeddings: rows packed two values per byte, one scale per row (or, per group of
        ``block`` columns, a scale and an int8 zero point, with the columns' group index ``g_idx``)."""
        input_dim, output_dim = shape
        scale_shape = (input_dim,) if block == -1 else (input_dim, -(-output_dim // block))
        self._int4_weights((input_dim, (output_dim + 1) // 2), scale_shape, output_dim, block)

    def _int4_quantize(self, weight, block):
        from ..quantizers import pack_int4

        w = np.asarray(weight.numpy(), dtype=np.float32)
        if block == -1:
            q, scale = abs_max_quantize_numpy(w, 1, (-8, 7))
            scale, zero = np.squeeze(scale, axis=1), None
        else:   # Keras groups the columns: it quantizes the transposed table
            q, scale, zero = (a.T for a in abs_max_quantize_grouped_numpy(w.T, block))
        prefix = weight.path.rsplit("/", 1)[0]
        self._drop_weight(weight)
        self._int4_build(w.shape, block)
        self._keep_prefix(prefix)
        self.embeddings.assign(pack_int4(np.ascontiguousarray(q), axis=-1)[0])
        self.embeddings_scale.assign(scale)
        if zero is not None:
            self.embeddings_zero.assign(zero)

    def _int4_call(self, ids: Value) -> Value:
        """Keras's ``Embedding._int4_call``: the unpacked rows, divided by their scale (per row) or dequantized
        with their groups' zero points and scales."""
        b = ids.builder
        rows = b.op("Gather", [unpack_int4_graph(self.embeddings.__onnx_value__(), self.output_dim), ids], axis=0)
        scale = b.op("Gather", [self.embeddings_scale, ids], axis=0)
        if getattr(self, "g_idx", None) is None:
            return rows / b.op("Unsqueeze", [scale, _ops.ints(b, [-1])])
        groups = b.op("Cast", [self.g_idx], to=onnx.TensorProto.INT64)
        zero = b.op("Cast", [b.op("Gather", [self.embeddings_zero, ids], axis=0)], to=onnx.TensorProto.FLOAT)
        return (rows - b.op("Gather", [zero, groups], axis=-1)) * b.op("Gather", [scale, groups], axis=-1)

    def _int8_call(self, ids: Value) -> Value:
        """Keras's ``Embedding._int8_call``: the int8 rows cast to float, divided by their scales (the int8 table
        is frozen, so no custom gradient is needed); the LoRA update, if enabled, added on top."""
        b = ids.builder
        shape = (*ids.shape, self.output_dim) if ids.shape is not None else None
        rows = b.op("Gather", [self.embeddings, ids], axis=0, shape=shape)
        scale = b.op("Gather", [self.embeddings_scale, ids], axis=0, shape=ids.shape)
        scale = b.op("Unsqueeze", [scale, _ops.ints(b, [-1])],
                     shape=(*ids.shape, 1) if ids.shape is not None else None)
        out = b.op("Cast", [rows], to=onnx.TensorProto.FLOAT, shape=shape) / scale
        if self.lora_enabled:
            lora = b.op("Gather", [self.lora_embeddings_a, ids], axis=0) @ self.lora_embeddings_b
            out = out + (self.lora_alpha / self.lora_rank) * lora
        return out

    def compute_mask(self, inputs: Value, mask: Any = None) -> Value | None:
        if not self.mask_zero:
            return None
        return inputs.builder.op("Not", [inputs.builder.op("Equal", [inputs, 0])], shape=inputs.shape)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape), self.output_dim)

    def _count_flops(self, input_shapes, output_shapes):
        return 0  # a gather

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers_mod.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers_mod.serialize(self.embeddings_regularizer),
                "activity_regularizer": regularizers_mod.serialize(self.activity_regularizer),  # always, as Keras
                "embeddings_constraint": constraints_mod.serialize(self.embeddings_constraint),
                "mask_zero": self.mask_zero, **serialize_config(self)}


class Identity(Layer):
    """Returns its inputs unchanged (any structure); a placeholder that keeps masks.

    Example:
        >>> from onnxforge.layers import Identity, Input
        >>> Identity()(Input(shape=(3,))).shape
        (None, 3)
    """

    supports_masking = True
    _autocast = False

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, *args, **kwargs):
        from .keras_tensor import map_structure as _map

        return _map(lambda t: KerasTensor(t.shape, t.dtype) if isinstance(t, KerasTensor) else t, args[0])

    def _count_flops(self, input_shapes, output_shapes):
        return 0

"""``EinsumDense``: a dense layer whose product is an einsum equation (Keras 3 semantics and weight shapes).

``MultiHeadAttention`` builds its projections from it, so its kernel layouts (``query/kernel`` of shape
``(dim, heads, key_dim)``, ...) are Keras's. Equations of the dense kind (the input's trailing labels
contracted with the kernel's leading ones) are emitted as one ``MatMul`` between reshaped operands, which
onnxruntime runs faster than ``Einsum``; every other equation is an ONNX ``Einsum``.
"""
from __future__ import annotations

__all__ = ["EinsumDense", "analyze_einsum"]

import copy
import re
import string
from typing import Any, NamedTuple

import numpy as np
import onnx

from .. import activations as activations_mod
from .. import initializers as initializers_mod
from .. import regularizers as regularizers_mod
from .. import constraints as constraints_mod
from ..graph import Value
from ..graph import emit as _ops
from .base import InputSpec, Layer
from .core import apply_activation, reject_unsupported, set_constraints
from .int4_weights import Int4WeightsMixin, unpack_int4_graph
from .lora import LoraMixin
from .quantization import QuantizeMixin, int8_product, quantizable, quantization_config_arg, serialize_config

_FORMS = (  # (pattern, where the ellipsis is): "ab,bc->ac", "...b,bc->...c", "ab...,bc->ac..."
    (re.compile(r"^([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$"), None),
    (re.compile(r"^\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)$"), "left"),
    (re.compile(r"^([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]+)\.\.\.$"), "right"),
)


def _split(equation: str) -> tuple[str, str, str, str | None]:
    eq = equation.replace(" ", "")
    for pattern, elided in _FORMS:
        match = pattern.match(eq)
        if match:
            return match.group(1), match.group(2), match.group(3), elided
    raise ValueError(f"Invalid einsum equation '{equation}'. Equations must be in the form [X],[Y]->[Z], "
                     "...[X],[Y]->...[Z], or [X]...,[Y]->[Z]....")


def analyze_einsum(equation: str, bias_axes: str | None, input_shape: tuple,
                   output_shape: tuple) -> tuple[tuple, tuple | None, tuple, list[int], list[int]]:
    """``(kernel_shape, bias_shape, full_output_shape, kernel_input_axes, kernel_output_axes)``.

    ``output_shape`` gives the output's dims after the batch dim, elided dims excluded (Keras's
    ``EinsumDense(output_shape=...)``); the batch dim and elided dims come from the input.
    """
    in_spec, w_spec, out_spec, elided_side = _split(equation)
    input_shape = tuple(input_shape)
    elided = len(input_shape) - len(in_spec)
    if elided < 0 or (elided > 0 and elided_side is None):
        raise ValueError(f"Einsum equation '{equation}' does not match the input rank {len(input_shape)}. "
                         f"Received: input_shape={input_shape}")
    full = [input_shape[0], *((output_shape,) if isinstance(output_shape, int) else tuple(output_shape))]
    if elided_side == "left":
        full[1:1] = list(input_shape[1:elided])
        in_pos = {c: i + elided for i, c in enumerate(in_spec)}
        out_pos = {c: i + elided for i, c in enumerate(out_spec)}
    else:
        if elided_side == "right":
            full.extend(input_shape[len(input_shape) - elided:])
        in_pos = {c: i for i, c in enumerate(in_spec)}
        out_pos = {c: i for i, c in enumerate(out_spec)}
    if len(full) != len(out_spec) + (elided if elided_side else 0):
        raise ValueError(f"Einsum equation '{equation}': `output_shape` does not fit the output spec "
                         f"'{out_spec}' for input_shape={input_shape}. Received: output_shape={output_shape}")
    for c in in_spec:
        if c in out_pos and full[out_pos[c]] is not None and full[out_pos[c]] != input_shape[in_pos[c]]:
            raise ValueError(f"Input shape and output shape do not match at shared dimension '{c}'. Input shape is "
                             f"{input_shape[in_pos[c]]}, and output shape is {full[out_pos[c]]}.")
        if c in out_pos and full[out_pos[c]] is None:
            full[out_pos[c]] = input_shape[in_pos[c]]
    for c in out_spec:
        if c not in in_spec and c not in w_spec:
            raise ValueError(f"Dimension '{c}' was specified in the output '{out_spec}' but has no corresponding "
                             f"dim in the input spec '{in_spec}' or weight spec '{w_spec}'")
    kernel, k_in, k_out = [], [], []
    for i, c in enumerate(w_spec):
        if c in out_pos:
            kernel.append(full[out_pos[c]])
            k_out.append(i)
        elif c in in_pos:
            kernel.append(input_shape[in_pos[c]])
            k_in.append(i)
        else:
            raise ValueError(f"Weight dimension '{c}' did not have a match in either the input spec '{in_spec}' "
                             f"or the output spec '{out_spec}'. For this layer, the weight must be fully specified.")
    bias = None
    if bias_axes is not None:
        for c in bias_axes:
            if c not in out_spec:
                raise ValueError(f"Bias dimension '{c}' was requested, but is not part of the output spec "
                                 f"'{out_spec}'")
        first = min(out_spec.find(c) for c in bias_axes)
        bias = [full[out_pos[c]] if c in bias_axes else 1 for c in out_spec[first:]]
        if elided_side == "right":
            bias += [1] * elided
        bias = tuple(bias)
    return tuple(kernel), bias, tuple(full), k_in, k_out


@quantizable
class EinsumDense(QuantizeMixin, Int4WeightsMixin, LoraMixin, Layer):
    """``activation(einsum(equation, inputs, kernel) + bias)`` (Keras 3 ``keras.layers.EinsumDense``).

    Args:
        equation: ``"ab,bc->ac"``-style equation: input, kernel, output (``...`` allowed on the left of
            input and output, or on their right).
        output_shape: the output dims after the batch dim (an int or a tuple; ``None`` for a dim the input
            decides).
        activation: applied to the result.
        bias_axes: the output labels the bias spans (``None``: no bias).
        kernel_initializer / bias_initializer / kernel_regularizer / bias_regularizer: as ``Dense``.

    Example:
        >>> from onnxforge.layers import EinsumDense, Input
        >>> layer = EinsumDense("abc,cde->abde", output_shape=(None, 2, 4), bias_axes="de")
        >>> layer(Input(shape=(5, 3))).shape, layer.kernel.shape
        ((None, 5, 2, 4), (3, 2, 4))
    """

    def __init__(self, equation: str, output_shape: Any, activation: Any = None, bias_axes: str | None = None,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, kernel_constraint: Any = None,
                 bias_constraint: Any = None, lora_rank: Any = None, lora_alpha: Any = None,
                 gptq_unpacked_column_size: int | None = None, quantization_config: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        _split(str(equation))  # reject malformed equations now, as Keras does at build time
        set_constraints(self, kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        reject_unsupported(self.name, gptq_unpacked_column_size=gptq_unpacked_column_size)
        self.quantization_config = quantization_config_arg(self.name, quantization_config)
        self._init_lora(lora_rank, lora_alpha)
        self.equation = str(equation)
        self.partial_output_shape = (output_shape,) if isinstance(output_shape, int) else tuple(output_shape)
        self.bias_axes = bias_axes
        self.activation = activations_mod.get(activation)
        self.kernel_initializer = initializers_mod.get(kernel_initializer)
        self.bias_initializer = initializers_mod.get(bias_initializer)
        self.kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)

    _supports_int4 = True

    def _keras_saved_variables(self):    # Keras's EinsumDense.save_own_variables writes exactly these
        return [v for v in (getattr(self, "kernel", None), getattr(self, "bias", None),
                            getattr(self, "kernel_scale", None), getattr(self, "kernel_zero", None),
                            getattr(self, "g_idx", None)) if v is not None]

    # ------------------------------------------------------------------ int4 (Keras's weight-only mode)
    def _int4_layout(self, shape) -> tuple[int, int]:
        """Keras's 2-D view of the kernel: rows = the contracted axes' sizes multiplied, columns = the rest (the
        kernel is reshaped in its own axis order, as Keras does)."""
        reduced = set(self._quantization_info().kernel_reduced)
        rows = int(np.prod([d for i, d in enumerate(shape) if i in reduced], dtype=np.int64))
        return rows, int(np.prod([d for i, d in enumerate(shape) if i not in reduced], dtype=np.int64))

    def _int4_build(self, shape, block):
        rows, columns = self._int4_layout(shape)
        self._original_kernel_shape = tuple(shape)
        scale_shape = (columns,) if block == -1 else (-(-rows // block), columns)
        self._int4_weights((rows, (columns + 1) // 2), scale_shape, rows, block)

    def _int4_quantize(self, weight, block):
        w = np.asarray(weight.numpy(), dtype=np.float32)
        self._int4_quantize_matrix(weight, w.reshape(self._int4_layout(w.shape)), block)

    def _int4_call(self, inputs):
        """Keras's ``EinsumDense._int4_call`` (weight-only): the kernel unpacked and dequantized, reshaped back to
        its shape, then the float einsum."""
        b = inputs.builder
        rows, columns = self._int4_layout(self._original_kernel_shape)
        w = unpack_int4_graph(self.kernel.__onnx_value__(), columns)
        if getattr(self, "g_idx", None) is None:
            w = w / self.kernel_scale
        else:
            groups = b.op("Cast", [self.g_idx], to=onnx.TensorProto.INT64)
            zero = b.op("Cast", [b.op("Gather", [self.kernel_zero, groups], axis=0)], to=onnx.TensorProto.FLOAT)
            w = (w - zero) * b.op("Gather", [self.kernel_scale, groups], axis=0)
        w = b.op("Reshape", [w, _ops.ints(b, self._original_kernel_shape)], shape=self._original_kernel_shape)
        return einsum_product(self.equation, inputs, w, self._original_kernel_shape)

    # ------------------------------------------------------------------ int8 (layers/quantization.py)
    def _quantization_info(self) -> QuantizationInfo:
        info = self.__dict__.get("_qinfo")
        if info is None:
            info = self.__dict__["_qinfo"] = quantization_info(self.equation, self.input_spec.ndim)
        return info

    def _quantize_reduced_axes(self):
        return tuple(self._quantization_info().kernel_reduced)

    def _quantize_scale_layout(self, scale):
        info = self._quantization_info()
        return _layout_for_quant(scale, info.kernel_transpose, info.kernel_expand, info.kernel_squeeze)

    def _dequantize_scale_layout(self, scale):
        info = self._quantization_info()
        if info.kernel_squeeze:
            scale = np.expand_dims(scale, axis=tuple(info.kernel_squeeze))
        if info.kernel_expand:
            scale = np.squeeze(scale, axis=tuple(info.kernel_expand))
        return np.transpose(scale, _ops.inverse_perm(info.kernel_transpose)) if info.kernel_transpose else scale

    def _int8_call(self, inputs):
        """Keras's ``EinsumDense._int8_call`` before the bias (inputs quantized over the contracted axes)."""
        info = self._quantization_info()
        shape = tuple(self.kernel.shape)

        def align(x_scale):      # the inputs' scale laid out to divide the output (Keras's "input" adjustment)
            b = x_scale.builder
            if info.input_transpose:
                x_scale = _ops.transpose(x_scale, info.input_transpose)
            if info.input_expand:
                x_scale = b.op("Unsqueeze", [x_scale, _ops.ints(b, info.input_expand)])
            if info.input_squeeze:
                x_scale = b.op("Squeeze", [x_scale, _ops.ints(b, info.input_squeeze)])
            return x_scale

        def backward(dy, w):
            b = dy.builder
            scale = self.kernel_scale.__onnx_value__()
            if info.kernel_squeeze:
                scale = b.op("Unsqueeze", [scale, _ops.ints(b, info.kernel_squeeze)])
            if info.kernel_expand:
                scale = b.op("Squeeze", [scale, _ops.ints(b, info.kernel_expand)])
            if info.kernel_transpose:
                scale = _ops.transpose(scale, _ops.inverse_perm(info.kernel_transpose))
            return b.op("Einsum", [dy, w / scale], equation=info.gradient_equation)

        y = int8_product(inputs, self.kernel, self.kernel_scale, info.input_reduced,
                         lambda xq, w: einsum_product(self.equation, xq, w, shape), backward, align)
        if self.lora_enabled:
            lora = einsum_product(self.equation, inputs, self.lora_kernel_a, tuple(self.lora_kernel_a.shape))
            y = y + (self.lora_alpha / self.lora_rank) * (lora @ self.lora_kernel_b)
        return y

    def build(self, input_shape):
        kernel_shape, bias_shape, _, k_in, k_out = analyze_einsum(self.equation, self.bias_axes, tuple(input_shape),
                                                                  self.partial_output_shape)
        if any(d is None for d in kernel_shape):
            raise ValueError(f"EinsumDense {self.name!r}: the kernel shape {kernel_shape} is not fully known. "
                             f"Received: input_shape={tuple(input_shape)}")
        init = self.kernel_initializer
        if isinstance(init, initializers_mod.VarianceScaling) and (init.input_axes is None or init.output_axes is None):
            # Keras: the fans of an einsum kernel are its contracted and its output axes.
            init = copy.copy(init)
            init.input_axes, init.output_axes = k_in, k_out
        self.input_spec = InputSpec(ndim=len(input_shape))
        if self._check_build_mode():   # a quantized layer read back from its config
            if self.quantization_mode == "int4":
                self._int4_build(tuple(kernel_shape), self._int4_block())
            else:
                self._int8_build(tuple(kernel_shape))
        else:
            self.kernel = self.add_weight(shape=kernel_shape, initializer=init, name="kernel",
                                          regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = (self.add_weight(shape=bias_shape, initializer=self.bias_initializer, name="bias",
                                     regularizer=self.bias_regularizer,
                                     constraint=self.bias_constraint) if bias_shape is not None else None)
        self.built = True
        self._build_lora()

    def compute_output_shape(self, input_shape):
        return analyze_einsum(self.equation, self.bias_axes, tuple(input_shape), self.partial_output_shape)[2]

    def call(self, inputs, training=None):   # ``training`` accepted as Keras's Dense family
        if self.quantization_mode == "int8":
            y = self._int8_call(inputs)
        elif self.quantization_mode == "int4":
            y = self._int4_call(inputs)
        else:
            y = einsum_product(self.equation, inputs, self._lora_weight(), tuple(self.kernel.shape))
        if self.bias is not None:
            y = y + self.bias
        return apply_activation(self.activation, y)

    def _count_flops(self, input_shapes, output_shapes):
        out = int(np.prod([d or 1 for d in output_shapes[0][1:]]))
        contracted = int(np.prod(self._kernel_shape())) // max(1, int(np.prod([d or 1 for d in self._kernel_out()])))
        return 2 * out * contracted

    def _kernel_out(self) -> list[int]:
        _, w_spec, out_spec, _ = _split(self.equation)
        return [d for c, d in zip(w_spec, self._kernel_shape()) if c in out_spec]

    def _kernel_shape(self) -> tuple:
        """The kernel's logical shape (an int4 kernel is stored packed in 2-D)."""
        return self.__dict__.get("_original_kernel_shape") or tuple(self.kernel.shape)

    def get_config(self):
        return {**super().get_config(), "output_shape": list(self.partial_output_shape), "equation": self.equation,
                "activation": activations_mod.serialize(self.activation), "bias_axes": self.bias_axes,
                "kernel_initializer": initializers_mod.serialize(self.kernel_initializer),
                "bias_initializer": initializers_mod.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers_mod.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers_mod.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers_mod.serialize(self.activity_regularizer),
                "kernel_constraint": constraints_mod.serialize(self.kernel_constraint),
                "bias_constraint": constraints_mod.serialize(self.bias_constraint), "quantization_config": None,
                **serialize_config(self)}


def _dense_form(equation: str) -> tuple[int, int] | None:
    """``(contracted, kernel_free)`` label counts when ``equation`` is a reshaped matrix product: the input's
    trailing labels are the kernel's leading ones, in order, and the output is the input's free labels then
    the kernel's free labels."""
    in_spec, w_spec, out_spec, elided = _split(equation)
    if elided == "right":
        return None
    for n in range(1, min(len(in_spec), len(w_spec)) + 1):
        contracted = in_spec[len(in_spec) - n:]
        if w_spec[:n] != contracted:
            continue
        free_in, free_w = in_spec[:len(in_spec) - n], w_spec[n:]
        if out_spec == free_in + free_w and not set(contracted) & set(out_spec) and \
                len(set(in_spec + w_spec)) == len(free_in) + len(contracted) + len(free_w):
            return n, len(free_w)
    return None


def einsum_product(equation: str, x: Value, kernel: Any, kernel_shape: tuple) -> Value:
    """``einsum(equation, x, kernel)`` as a MatMul of reshaped operands where it is one, else ``Einsum``."""
    b = x.builder
    form = _dense_form(equation)
    if form is None:
        return b.op("Einsum", [x, kernel], equation=equation)
    n_contracted, n_free = form
    rank = len(x.shape)
    k = int(np.prod(kernel_shape[:n_contracted], dtype=np.int64))
    free_dims = list(kernel_shape[n_contracted:])
    if n_contracted > 1:
        x = b.op("Reshape", [x, _ops.ints(b, [0] * (rank - n_contracted) + [k])])
    if len(kernel_shape) != 2:
        kernel = b.op("Reshape", [kernel, _ops.ints(b, [k, int(np.prod(free_dims, dtype=np.int64))])])
    y = x @ kernel
    if n_free != 1:
        y = b.op("Reshape", [y, _ops.ints(b, [0] * (rank - n_contracted) + free_dims)])
    return y


class QuantizationInfo(NamedTuple):
    """How Keras's int8 ``EinsumDense`` lays out its scales (``_analyze_quantization_info``): the axes the
    inputs and the kernel are quantized over, the permutation / new axes / dropped axes that put each scale
    in the output's layout, and the equation of the inputs' gradient."""

    input_reduced: list[int]
    kernel_reduced: list[int]
    input_transpose: list[int]
    kernel_transpose: list[int]
    input_expand: list[int]
    kernel_expand: list[int]
    input_squeeze: list[int]
    kernel_squeeze: list[int]
    gradient_equation: str


def _full_specs(equation: str, ndim: int) -> tuple[str, str, str]:
    """The equation's three label strings with the ellipsis replaced by fresh labels for ``ndim`` inputs."""
    in_spec, w_spec, out_spec, elided_side = _split(equation)
    if elided_side is None:
        return in_spec, w_spec, out_spec
    fresh = sorted(set(string.ascii_letters) - set(in_spec + w_spec + out_spec))[:ndim - len(in_spec)]
    if elided_side == "left":
        # Keras prepends the i-th fresh label at each step, so the last one ends first.
        for label in fresh:
            in_spec, out_spec = label + in_spec, label + out_spec
    else:
        in_spec, out_spec = in_spec + "".join(fresh), out_spec + "".join(fresh)
    return in_spec, w_spec, out_spec


def quantization_info(equation: str, ndim: int) -> QuantizationInfo:
    """Keras 3's analysis of an ``EinsumDense`` equation for int8 quantization (same axes, same layouts)."""
    in_spec, w_spec, out_spec = _full_specs(equation, ndim)

    def side(spec: str) -> tuple[list[int], list[int], list[int], list[int]]:
        reduced = [i for i, c in enumerate(spec) if c not in out_spec]
        expand = [i for i, c in enumerate(out_spec) if c not in spec]
        transpose = [spec.index(c) for c in out_spec if c in spec]
        squeeze: list[int] = []
        index = None
        for original in reduced:
            if expand:
                index = expand.pop(0)
            else:   # as Keras: no free output slot, so the axis is squeezed and goes at the last index used
                squeeze.append(original)
            if index is None:
                raise NotImplementedError(f"EinsumDense equation {equation!r} cannot be int8-quantized: its output "
                                          f"{out_spec!r} has no axis to hold the scale of the contracted axes of "
                                          f"{spec!r} (Keras 3 cannot quantize it either).")
            transpose.insert(index, original)
        return reduced, transpose, expand, squeeze

    in_red, in_t, in_e, in_s = side(in_spec)
    w_red, w_t, w_e, w_s = side(w_spec)
    return QuantizationInfo(in_red, w_red, in_t, w_t, in_e, w_e, in_s, w_s, f"{out_spec},{w_spec}->{in_spec}")


def _layout_for_quant(scale: np.ndarray, transpose: list[int], expand: list[int], squeeze: list[int]) -> np.ndarray:
    if transpose:
        scale = np.transpose(scale, transpose)
    if expand:
        scale = np.expand_dims(scale, axis=tuple(expand))
    if squeeze:
        scale = np.squeeze(scale, axis=tuple(squeeze))
    return scale

"""Keras 3's int8 quantization of ``Dense``, ``EinsumDense``, ``Embedding`` and ``ReversibleEmbedding``
(``layer.quantize("int8")``, ``model.quantize("int8")``).

``quantize("int8")`` replaces the layer's float weight by an int8 weight (same name, ``kernel`` /
``embeddings``, frozen) and a float32 scale (``kernel_scale`` / ``embeddings_scale``), from a per-output-channel
abs-max quantization done once, in NumPy, exactly as Keras's ``abs_max_quantize(..., to_numpy=True)``:
``scale = 127 / (max|w| + 1e-7)``, ``q = clip(round(w * scale), -127, 127)``. The layer's policy becomes
``QuantizedDTypePolicy("int8", <its policy>)`` (``"int8_from_float32"``), which its config and ``.keras`` files
carry; a layer built under that policy (a file being loaded) creates the int8 weights directly.

In the graph, ``Dense`` and ``EinsumDense`` quantize their inputs per token as Keras does (abs-max over the
contracted axes, the same formula and epsilon), multiply the integer values, then divide by
``inputs_scale * kernel_scale``. The integer product is computed as a float ``MatMul`` / ``Einsum`` of the
int8 values cast to float: every product and partial sum is an integer below 2**24 (127 * 127 * 1040), so it is
exact for contractions up to 1040 elements (beyond, it may round the sum's last bit, as Keras's own cast of the
int32 sum to float32 does), and onnxruntime's CPU ``MatMulInteger`` for int8 x int8 measured 3-4x slower than
the float ``MatMul`` on this project's machine (``bench/int8_matmul.py``: 256x512x512, 10.6 ms vs 3.6 ms). The
weights stay int8 in every graph and file. Gradients follow Keras's custom gradient: the inputs get ``upstream @ dequantized_kernel.T``
(straight through the rounding), the int8 kernel and its scale get none; a LoRA update on top trains. The
replaced float weight leaves the layer (its name and path pass to the int8 one); a model that had compiled
programs or optimizer slots for it drops them (``TrainingMixin._drop_replaced_weights``).

``"int4"`` (Keras's weight-only mode) is computed for ``Dense``, ``EinsumDense`` (its kernel viewed in 2-D as Keras
does: contracted sizes by the rest) and ``Embedding``: values in [-8, 7] packed two per int8 byte, one scale per
output channel or, in groups of ``block_size`` (Keras's default 128), a scale and an int8 zero point per group;
the graph unpacks them in float32 (``unpack_int4_graph``). Not computed (refused by name): int4
``ReversibleEmbedding``, LoRA on int4 layers, ``float8``, ``gptq``, ``awq``, custom quantizer configs, compute
dtypes other than float32.

Example:
    >>> import numpy as np
    >>> from onnxforge.layers import Dense, Input
    >>> layer = Dense(3)
    >>> _ = layer(Input(shape=(4,)))
    >>> layer.quantize("int8")
    >>> [(w.path, str(w.dtype)) for w in layer.weights], layer.dtype_policy.name
    ([('dense/bias', 'float32'), ('dense/kernel', 'int8'), ('dense/kernel_scale', 'float32')], 'int8_from_float32')
"""
from __future__ import annotations

__all__ = ["QuantizeMixin", "abs_max_quantize_numpy", "abs_max_quantize_grouped_numpy", "quantizations",
           "replaced_weights", "quantize_inputs", "quantize_model", "quantization_config_arg", "serialize_config",
           "int8_product", "quantizable"]

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import dtype_policies
from ..quantizers import abs_max_quantize_grouped_numpy
from ..graph import Value, np_dtype
from ..graph import emit as _ops

#: Keras's ``backend.epsilon()``, the abs-max quantizers' default.
EPSILON = 1e-7

_QUANTIZATIONS = [0]
_REPLACED: set[int] = set()


def quantizations() -> int:
    """How many layers have been quantized in this process (models compare it, as ``lora_enablings``)."""
    return _QUANTIZATIONS[0]


def replaced_weights() -> set[int]:
    """The uids of the float weights ``quantize`` replaced in this process (see ``trainer/replaced_weights.py``)."""
    return set(_REPLACED)


def abs_max_quantize_numpy(w: np.ndarray, axis: Sequence[int] | int, value_range: tuple = (-127, 127),
                           epsilon: float = EPSILON) -> tuple[np.ndarray, np.ndarray]:
    """``(int8 values, scale)`` with ``scale = hi / (max|w| + epsilon)`` over ``axis`` (kept), as Keras's
    ``abs_max_quantize(..., to_numpy=True)`` computes them (in ``w``'s dtype)."""
    w = np.asarray(w)
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    scale = np.divide(value_range[1], np.add(np.max(np.abs(w), axis=axis, keepdims=True), epsilon))
    q = np.clip(np.round(np.multiply(w, scale)), value_range[0], value_range[1]).astype(np.int8)
    return q, scale.astype(w.dtype)


def quantize_inputs(x: Value, axes: Sequence[int]) -> tuple[Value, Value]:
    """Keras's per-token ``abs_max_quantize(x, axes)`` in the graph: ``(rounded values as floats, scale)``.

    The values stay in ``x``'s float type (they are integers in [-127, 127]); the scale keeps ``axes``.
    """
    b = x.builder
    rank = len(x.shape)
    axes = [a % rank for a in axes]
    peak = _ops.reduce("ReduceMax", b.op("Abs", [x], shape=x.shape), axes, keepdims=True)
    scale = b.op("Div", [_const(b, 127.0, x), b.op("Add", [peak, _const(b, EPSILON, x)], shape=peak.shape)],
                 shape=peak.shape)
    scaled = b.op("Round", [b.op("Mul", [x, scale], shape=x.shape)], shape=x.shape)
    return b.op("Clip", [scaled, _const(b, -127.0, x), _const(b, 127.0, x)], shape=x.shape), scale


def _const(b: Any, value: float, like: Value) -> Value:
    return b.const(np.asarray(value, dtype=np_dtype(like.dtype)))


def dequantized(kernel: Value, like: Value) -> Value:
    """The int8 ``kernel`` value cast to ``like``'s float type."""
    return kernel.builder.op("Cast", [kernel], to=int(like.dtype), shape=kernel.shape)


class QuantizeMixin:
    """Adds Keras 3's ``quantize`` / ``quantization_mode`` to a layer holding one weight (``_quantize_target``)
    that int8 quantization replaces, with its scale (``_quantize_scale``), quantized along the axes
    ``_quantize_reduced_axes()`` reduces."""

    _quantize_target = "kernel"
    _quantize_scale = "kernel_scale"
    #: Whether the layer computes Keras's weight-only ``"int4"`` mode too (``Dense``, ``EinsumDense``, ``Embedding``).
    _supports_int4 = False

    @property
    def quantization_mode(self) -> str | None:
        """The layer's quantization mode (``"int8"``), ``None`` when it is not quantized."""
        return getattr(self.dtype_policy, "quantization_mode", None)   # type: ignore[attr-defined]

    # ------------------------------------------------------------------ the per-layer parts
    def _quantize_reduced_axes(self) -> tuple[int, ...]:
        return (0,)

    def _quantize_scale_layout(self, scale: np.ndarray) -> np.ndarray:
        """The scale as the layer stores it (Keras squeezes the reduced axes away, or rearranges them)."""
        return np.squeeze(scale, axis=self._quantize_reduced_axes())

    def _dequantize_scale_layout(self, scale: np.ndarray) -> np.ndarray:
        """The stored scale reshaped to divide the int8 weight (the inverse of ``_quantize_scale_layout``)."""
        return np.expand_dims(scale, axis=self._quantize_reduced_axes())

    # ------------------------------------------------------------------ quantize()
    def quantize(self, mode: Any = None, type_check: bool = True, config: Any = None) -> None:
        """Quantize the layer's weight in place (Keras 3's ``layer.quantize``); only ``"int8"`` is computed.

        Args:
            mode: ``"int8"``; Keras's other modes (``"int4"``, ``"float8"``, ``"gptq"``, ``"awq"``) are refused
                by name.
            type_check: refuse subclasses, as Keras does (their ``call`` may not be the quantized one).
            config: a ``QuantizationConfig``; only the default (``None``) is supported.
        """
        name = getattr(self, "name", type(self).__name__)
        if isinstance(config, str):   # Keras's shortcut quantize(config="int8")
            mode, config = config, None
        if config is not None:
            config = quantization_config_arg(name, config)
            mode = config.mode if mode is None else mode
        if type_check and type(self) not in _QUANTIZABLE:
            raise NotImplementedError(f"Layer {type(self).__name__} does not have a `quantize()` method implemented "
                                      "(onnxforge, as Keras, quantizes Dense, EinsumDense and Embedding themselves, "
                                      "not subclasses).")
        if not getattr(self, "built", False):
            raise ValueError(f"Cannot quantize a layer that isn't yet built. Layer '{name}' (of type "
                             f"'{type(self).__name__}') is not built yet.")
        if self.quantization_mode is not None:
            raise ValueError(f"Layer '{name}' is already quantized with dtype_policy="
                             f"'{self.dtype_policy.name}'. Received: mode={mode}")   # type: ignore[attr-defined]
        if mode not in dtype_policies.QUANTIZATION_MODES:
            raise ValueError(f"Invalid quantization mode. Expected one of {dtype_policies.QUANTIZATION_MODES}. "
                             f"Received: mode={mode}")
        if mode != "int8" and not (mode == "int4" and self._supports_int4):
            supported = "'int8' and 'int4'" if self._supports_int4 else "'int8'"
            raise NotImplementedError(f"Layer {name!r}: quantization mode={mode!r} is not supported by onnxforge "
                                      f"for {type(self).__name__}; supported: {supported}.")
        if self.compute_dtype not in ("float16", "float32"):   # type: ignore[attr-defined]
            raise NotImplementedError(f"Layer {name!r}: int8 quantization computes in float32 in onnxforge. Received "
                                      f"compute_dtype={self.compute_dtype!r}")   # type: ignore[attr-defined]
        if self.compute_dtype == "float16":   # type: ignore[attr-defined]
            raise ValueError(f"Quantization mode='{mode}' doesn't work well with compute_dtype='float16'. Consider "
                             "loading model/layer with another dtype policy such as 'mixed_bfloat16' or "
                             "'mixed_float16' before calling `quantize()`.")
        weight = getattr(self, self._quantize_target)
        if mode == "int4":
            from ..quantizers import Int4QuantizationConfig
            config = config if config is not None else Int4QuantizationConfig()
            block = config.block_size if config.block_size not in (None, -1) else -1
            self._int4_quantize(weight, block)   # type: ignore[attr-defined]
            self.dtype_policy = dtype_policies.Int4DTypePolicy(f"int4/{block}",   # type: ignore[attr-defined]
                                                               self.dtype_policy.name)   # type: ignore
            self.quantization_config = config
            _QUANTIZATIONS[0] += 1
            return
        q, scale = abs_max_quantize_numpy(np.asarray(weight.numpy(), dtype=np.float32),
                                          self._quantize_reduced_axes())
        prefix = weight.path.rsplit("/", 1)[0]   # "mha/query" inside a MultiHeadAttention, else the layer's name
        self._drop_weight(weight)
        self._int8_build(tuple(weight.shape))
        self._keep_prefix(prefix)
        getattr(self, self._quantize_target).assign(q)
        getattr(self, self._quantize_scale).assign(self._quantize_scale_layout(scale))
        self.dtype_policy = dtype_policies.QuantizedDTypePolicy(mode, self.dtype_policy.name)  # type: ignore
        from ..quantizers import Int8QuantizationConfig
        self.quantization_config = config if config is not None else Int8QuantizationConfig()   # as Keras records it
        _QUANTIZATIONS[0] += 1

    def _int4_block(self) -> int:
        """The int4 group size (``-1``: one scale per output channel), as Keras finds it: the quantization
        config first, then the ``int4/<block>`` policy."""
        config = getattr(self, "quantization_config", None)
        block = getattr(config, "block_size", None) if config is not None \
            else getattr(self.dtype_policy, "block_size", None)   # type: ignore[attr-defined]
        return -1 if block in (None, -1) else int(block)

    def _keep_prefix(self, prefix: str) -> None:
        """Give the new weights the path prefix the replaced one had (``mha/query/kernel``, as Keras)."""
        if prefix != self.name:   # type: ignore[attr-defined]
            own = f"{self.name}/"   # type: ignore[attr-defined]
            for w in self.weights:   # type: ignore[attr-defined]
                if w.path.startswith(own):
                    w.path = f"{prefix}/{w.path[len(own):]}"

    def enable_lora(self, *args: Any, **kwargs: Any) -> None:
        if self.quantization_mode == "int4":
            raise NotImplementedError(f"Layer {self.name!r}: enable_lora on an int4-quantized layer is not "  # type: ignore
                                      "supported by onnxforge (int8 layers support it).")
        super().enable_lora(*args, **kwargs)   # type: ignore[misc]

    def _drop_weight(self, weight: Any, attr: str | None = None) -> None:
        """Forget the float weight held in ``attr`` (default the target): its name becomes free for the int8
        one, as after Keras's ``del``."""
        tracked = self._tracker()   # type: ignore[attr-defined]
        for group in (tracked.trainable, tracked.non_trainable):
            if any(v is weight for v in group):
                group[:] = [v for v in group if v is not weight]
        tracked._uids.discard(weight.uid)
        _REPLACED.add(weight.uid)
        self.__dict__.get("_weight_names", set()).discard(weight.path.rsplit("/", 1)[-1])
        self.__dict__.pop(attr or self._quantize_target, None)

    def _int8_build(self, shape: tuple[int, ...]) -> None:
        """Create the int8 weight of ``shape`` and its scale (zeros and ones; quantize() or a loaded file fills
        them)."""
        # A zero-stride view: the layout is found without allocating (a file's config may declare huge shapes).
        scale_shape = self._quantize_scale_layout(np.broadcast_to(np.float32(1), self._reduced_shape(shape))).shape
        with self._state_unlocked():   # type: ignore[attr-defined]
            weight = self.add_weight(shape=shape, initializer="zeros", name=self._quantize_target,  # type: ignore
                                     dtype="int8", trainable=False)
            setattr(self, self._quantize_target, weight)
            setattr(self, self._quantize_scale, self.add_weight(  # type: ignore[attr-defined]
                shape=scale_shape, initializer="ones", name=self._quantize_scale, trainable=False))

    def _reduced_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        reduced = set(self._quantize_reduced_axes())
        return tuple(1 if i in reduced else d for i, d in enumerate(shape))

    def _check_build_mode(self) -> bool:
        """In ``build``: whether the layer's policy asks for int8 weights (another mode is refused by name)."""
        mode = self.quantization_mode
        if mode is not None and mode != "int8" and not (mode == "int4" and self._supports_int4):
            raise NotImplementedError(f"Layer {self.name!r}: quantization mode={mode!r} (dtype policy "  # type: ignore
                                      f"{self.dtype_policy.name!r}) is not supported by onnxforge for "
                                      f"{type(self).__name__}.")
        if mode is not None and self.compute_dtype != "float32":   # type: ignore[attr-defined]
            raise NotImplementedError(f"Layer {self.name!r}: int8 quantization computes in float32 in onnxforge. "  # type: ignore
                                      f"Received: dtype policy {self.dtype_policy.name!r}")   # type: ignore
        return mode is not None

    # ------------------------------------------------------------------ serialization
    def dequantized_weight(self) -> np.ndarray:
        """The int8 weight divided by its scale, a float32 array (the weight the layer computes with)."""
        q = getattr(self, self._quantize_target).numpy()
        return np.divide(q.astype(np.float32), self._dequantize_scale_layout(getattr(self, self._quantize_scale)
                                                                              .numpy()))

    def _int8_saved(self) -> tuple[np.ndarray, np.ndarray]:
        """The (int8 weight, scale) a ``.keras`` file stores: with LoRA enabled, Keras dequantizes, adds the
        LoRA update, and quantizes the sum again."""
        weight, scale = getattr(self, self._quantize_target), getattr(self, self._quantize_scale)
        if not getattr(self, "lora_enabled", False):
            return weight.numpy(), scale.numpy()
        name_a, name_b = self._lora_factor_names   # type: ignore[attr-defined]
        delta = (float(self.lora_alpha) / float(self.lora_rank)) * np.matmul(   # type: ignore[attr-defined]
            getattr(self, name_a).numpy(), getattr(self, name_b).numpy())
        merged = self.dequantized_weight() + delta.reshape(weight.shape)
        q, new_scale = abs_max_quantize_numpy(merged.astype(np.float32), self._quantize_reduced_axes())
        return q, self._quantize_scale_layout(new_scale)

    def save_own_variables(self, store: Any) -> None:
        if self.quantization_mode is None:
            return super().save_own_variables(store)   # type: ignore[misc]
        if self.quantization_mode == "int4":
            raise NotImplementedError(f"Layer {self.name!r}: saving an int4 layer with LoRA enabled (Keras merges "  # type: ignore
                                      "and quantizes again) is not supported by onnxforge.")
        q, scale = self._int8_saved()
        weight, scale_var = getattr(self, self._quantize_target), getattr(self, self._quantize_scale)
        for i, variable in enumerate(self._keras_saved_variables()):   # type: ignore[attr-defined]
            store[str(i)] = q if variable is weight else scale if variable is scale_var else variable.numpy()

    def load_own_variables(self, store: Any) -> None:
        if self.quantization_mode is not None:
            check_int8_entries(self, store)
        super().load_own_variables(store)   # type: ignore[misc]

    # Only a LoRA layer needs its own I/O (the merged weight); the loaders' default path checks the rest.
    save_own_variables._overrides_only_if = "lora_enabled"   # type: ignore[attr-defined]
    load_own_variables._overrides_only_if = "lora_enabled"   # type: ignore[attr-defined]


def check_int8_entries(layer: Any, store: Any) -> None:
    """Refuse a stored tensor that is not int8 where ``layer`` keeps an int8 weight (a float array would be
    silently truncated by the assignment)."""
    for i, variable in enumerate(layer._keras_saved_variables()):
        if str(variable.dtype) == "int8" and str(i) in store:
            got = np.asarray(store[str(i)]).dtype
            if got != np.int8:
                raise ValueError(f"Layer {layer.name!r}: the stored value of its int8 weight {variable.path!r} "
                                 f"(entry {i}) has dtype {got}; expected int8 (a quantized layer's weight).")


_QUANTIZABLE: set[type] = set()


def quantizable(cls: type) -> type:
    """Mark ``cls`` as quantizing itself (``type_check`` refuses its subclasses, as Keras's ``type(self) is``)."""
    _QUANTIZABLE.add(cls)
    return cls


def int8_product(x: Value, kernel: Any, kernel_scale: Any, input_axes: Sequence[int], forward: Any,
                 backward: Any, align_scale: Any = None) -> Value:
    """Keras's int8 ``matmul`` / ``einsum`` with its custom gradient, as one opaque region of the graph.

    Args:
        x: the float inputs.
        kernel / kernel_scale: the layer's int8 weight and float scale (Variables).
        input_axes: the axes the inputs are quantized over (the contracted ones).
        forward: ``(quantized x, float kernel) -> product`` (the integer product, in floats).
        backward: ``(upstream, dequantized kernel) -> the inputs' gradient``.
        align_scale: the inputs' scale rearranged to divide the product (``None``: as it is).
    """
    from ..ops.custom_gradients import custom_gradient

    @custom_gradient
    def product(x: Value, kernel: Value, kernel_scale: Value) -> Any:
        xq, x_scale = quantize_inputs(x, input_axes)
        y = forward(xq, dequantized(kernel, x))
        if align_scale is not None:
            x_scale = align_scale(x_scale)
        y = y / (x_scale * kernel_scale)

        def grad(upstream: Value) -> tuple:
            return backward(upstream, dequantized(kernel, upstream)), None, None
        return y, grad

    return product(x, kernel, kernel_scale)


def _leaves(layer: Any) -> list[Any]:
    """``layer``'s sub-layers depth first (itself included), as Keras's ``_flatten_layers``."""
    out, seen = [], set()

    def walk(item: Any) -> None:
        if id(item) in seen:
            return
        seen.add(id(item))
        out.append(item)
        subs = item.layers if hasattr(type(item), "layers") else item._flat_sublayers()
        for sub in subs:
            walk(sub)
    walk(layer)
    return out


def quantize_model(model: Any, mode: Any = None, config: Any = None, filters: Any = None,
                   type_check: bool = True) -> None:
    """Keras 3's ``Model.quantize``: ``quantize(mode)`` on each leaf layer the filters select; a layer that
    cannot be quantized (``NotImplementedError``) is skipped with a warning, as Keras does."""
    import re
    import warnings

    if isinstance(config, str):   # Keras's shortcut: quantize(config="int8")
        mode, config = config, None
    if filters is not None and not isinstance(filters, (str, list, tuple)) and not callable(filters):
        raise ValueError(f"The `filters` argument must be a regex string, a list of regex strings, or a callable. "
                         f"Received: {type(filters)}")
    if config is not None:
        config = quantization_config_arg(model.name, config)
        mode = config.mode if mode is None else mode
    if mode not in dtype_policies.QUANTIZATION_MODES:
        raise ValueError(f"Invalid quantization mode. Expected one of {dtype_policies.QUANTIZATION_MODES}. "
                         f"Received: mode={mode}")
    if mode not in ("int8", "int4"):
        # Every layer would refuse it and be skipped with a warning: say it once, loudly.
        raise NotImplementedError(f"Model {model.name!r}: quantize() is not supported by onnxforge for "
                                  f"mode={mode!r}; the supported modes are 'int8' (Dense, EinsumDense, Embedding, "
                                  "ReversibleEmbedding) and 'int4' (Dense, EinsumDense, Embedding).")

    def selected(layer: Any) -> bool:
        if filters is None:
            return True
        if isinstance(filters, str):
            return bool(re.search(filters, layer.name))
        if isinstance(filters, (list, tuple)):
            return any(re.search(p, layer.name) for p in filters)
        return bool(filters(layer))

    chosen = [layer for layer in _leaves(model) if selected(layer) and len(_leaves(layer)) == 1]
    if mode == "int4":
        # Keras quantizes ReversibleEmbedding to int4 too: skipping it would leave a different model.
        lacking = [layer.name for layer in chosen if isinstance(layer, QuantizeMixin) and not layer._supports_int4]
        if lacking:
            raise NotImplementedError(f"Model {model.name!r}: quantization mode='int4' is supported by onnxforge for "
                                      f"Dense, EinsumDense and Embedding layers; these layers would be left "
                                      f"unquantized: {lacking}. Select the others with `filters=`, or use mode='int8'.")
    changed = False
    for layer in chosen:
        try:
            layer.quantize(mode, type_check=type_check, config=config)
            changed = True
        except NotImplementedError as e:
            warnings.warn(str(e), stacklevel=3)
        except AttributeError:
            pass
    if changed:
        # The programs built so far compute with the float weights: build them again on next use.
        model.__dict__["_programs"] = {}


def quantization_config_arg(layer: str, config: Any) -> Any:
    """A layer's ``quantization_config=`` argument: ``None``, or Keras's default int8 config (what Keras writes
    in the config of a layer it quantized: ``Int8QuantizationConfig`` with the per-token ``AbsMaxQuantizer``),
    given as the object or its serialized dict. Custom quantizers, int4, float8, GPTQ and AWQ configs are
    refused by name."""
    from .. import quantizers

    if config is None:
        return None
    try:
        found = quantizers.deserialize(config)
    except (ValueError, TypeError) as e:
        raise NotImplementedError(f"Layer {layer!r}: quantization_config is not supported by onnxforge ({e}). "
                                  f"Received: quantization_config={config!r}") from None
    if not (quantizers.is_default_int8_config(found) or quantizers.is_default_int4_config(found)):
        raise NotImplementedError(f"Layer {layer!r}: only the default quantization configs are supported by "
                                  "onnxforge (Int8QuantizationConfig() with the per-token AbsMaxQuantizer, "
                                  "Int4QuantizationConfig(block_size=...) without custom quantizers). "
                                  f"Received: quantization_config={config!r}")
    return found


def serialize_config(layer: Any) -> dict:
    """``{"quantization_config": <serialized>}`` for a layer that has one (Keras writes it once quantized)."""
    from .. import quantizers

    config = getattr(layer, "quantization_config", None)
    return {} if config is None else {"quantization_config": quantizers.serialize(config)}

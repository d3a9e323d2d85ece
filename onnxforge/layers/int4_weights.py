"""Keras's int4 weight-only quantization, shared by Dense, EinsumDense and Embedding: the packed weights, their
scales and group zero points (created in Keras's order, so paths and files match), quantizing a float weight
into them, and unpacking the nibbles inside the graph.

Example:
    >>> import numpy as np
    >>> from onnxforge import keras
    >>> layer = keras.layers.Dense(4)
    >>> layer.build((None, 8))
    >>> layer.quantize("int4")   # Keras's default: groups of 128 input rows, one group here
    >>> [(w.path, tuple(w.shape), str(w.dtype)) for w in layer.weights if "kernel" in w.path]
    [('dense/kernel', (8, 2), 'int8'), ('dense/kernel_scale', (1, 4), 'float32'), ('dense/kernel_zero', (1, 4), 'int8')]
"""
from __future__ import annotations

__all__ = ["Int4WeightsMixin", "unpack_int4_graph"]

from typing import Any

import numpy as np

from ..graph import Value
from ..graph import emit as _ops
from ..quantizers import abs_max_quantize_grouped_numpy, pack_int4


class Int4WeightsMixin:
    """The int4 weights of a layer whose ``QuantizeMixin`` names them (``_quantize_target`` and its scale)."""

    _quantize_target: str
    _quantize_scale: str

    def _int4_weights(self, packed_shape: tuple[int, int], scale_shape: tuple[int, ...], grouped: int,
                      block: int) -> None:
        """Create Keras's int4 weights in its order: the packed int8 weight, its scale and, for ``block`` != -1, an
        int8 zero point per group and ``g_idx``, the group of each of the ``grouped`` quantized rows."""
        target, scale = self._quantize_target, self._quantize_scale
        with self._state_unlocked():   # type: ignore[attr-defined]
            add = self.add_weight  # type: ignore[attr-defined]
            setattr(self, target, add(shape=packed_shape, initializer="zeros", name=target, dtype="int8",
                                      trainable=False))
            setattr(self, scale, add(shape=scale_shape, initializer="ones", name=scale, trainable=False))
            if block != -1:
                setattr(self, f"{target}_zero", add(shape=scale_shape, initializer="zeros", name=f"{target}_zero",
                                                    dtype="int8", trainable=False))
                self.g_idx = add(shape=(grouped,), name="g_idx", dtype="float32", trainable=False,
                                 initializer=lambda shape, dtype=None: (np.arange(shape[0]) // block).astype(
                                     dtype or "float32"))

    def _int4_quantize_matrix(self, weight: Any, matrix: np.ndarray, block: int) -> None:
        """Replace ``weight`` by Keras's int4 weights of ``matrix`` (its 2-D rows-by-columns view): abs-max per
        column, or per group of ``block`` rows with a zero point, packed two values per byte along columns."""
        from .quantization import abs_max_quantize_numpy

        if block == -1:
            q, scale = abs_max_quantize_numpy(matrix, 0, (-8, 7))
            scale, zero = np.squeeze(scale, axis=0), None
        else:
            q, scale, zero = abs_max_quantize_grouped_numpy(matrix, block)
        prefix = weight.path.rsplit("/", 1)[0]
        shape = tuple(weight.shape)
        self._drop_weight(weight)  # type: ignore[attr-defined]
        self._int4_build(shape, block)  # type: ignore[attr-defined]
        self._keep_prefix(prefix)  # type: ignore[attr-defined]
        getattr(self, self._quantize_target).assign(pack_int4(q, axis=-1)[0])
        getattr(self, self._quantize_scale).assign(scale)
        if zero is not None:
            getattr(self, f"{self._quantize_target}_zero").assign(zero)


def unpack_int4_graph(packed: Value, length: int) -> Value:
    """Keras's ``unpack_int4(packed, length, axis=-1)`` in the graph, as floats: each int8 byte holds two signed
    int4 values, the low nibble first. Computed in float32 (exact for these small integers)."""
    b = packed.builder
    f32 = 1   # onnx.TensorProto.FLOAT
    v = b.op("Cast", [packed], to=f32, shape=packed.shape)
    byte = b.op("Where", [b.op("Less", [v, _f(b, 0.0)]), v + 256.0, v])        # the unsigned byte, 0..255
    high = b.op("Floor", [byte / 16.0])
    low = byte - high * 16.0

    def signed(n: Value) -> Value:
        return b.op("Where", [b.op("Greater", [n, _f(b, 7.0)]), n - 16.0, n])
    rows, packed_cols = packed.shape
    both = b.op("Concat", [b.op("Unsqueeze", [signed(low), _ops.ints(b, [-1])]),
                           b.op("Unsqueeze", [signed(high), _ops.ints(b, [-1])])], axis=-1)
    flat = b.op("Reshape", [both, _ops.ints(b, [rows, 2 * packed_cols])], shape=(rows, 2 * packed_cols))
    if 2 * packed_cols == length:
        return flat
    return b.op("Slice", [flat, _ops.ints(b, [0]), _ops.ints(b, [length]), _ops.ints(b, [1])],
                shape=(rows, length))


def _f(b: Any, value: float) -> Value:
    return b.const(np.asarray(value, dtype=np.float32))

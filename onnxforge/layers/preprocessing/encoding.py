"""Categorical encodings: ``CategoryEncoding`` and ``Discretization`` (bucketing, with Keras's quantile
``adapt()``); ``Hashing``, which ONNX's standard operators cannot express, runs on arrays (``.hashing``).

Counting and one-hot codes are comparisons against a constant range (``Equal``) reduced with
``ReduceMax`` / ``ReduceSum``; bucketing counts the boundaries at or below each value.
"""
from __future__ import annotations

__all__ = ["CategoryEncoding", "Discretization", "encode_categorical", "quantile_boundaries"]

from typing import Any

import numpy as np
import onnx

from ...graph.shape_inference import fill_shapes
from ...graph.value import onnx_dtype
from ...graph import Value
from ...graph import emit as _ops
from ..base import Layer
from .adapt_data import batches

_MODES = ("one_hot", "multi_hot", "count")


def encode_categorical(indices: Value, mode: str, depth: int, dtype: int) -> Value:
    """Keras's ``encode_categorical_inputs`` for integer ``indices``: ``one_hot`` adds a ``depth`` axis
    (replacing a trailing axis of 1; a rank-1 input is one token per example), ``multi_hot`` / ``count``
    reduce the second axis (a rank-1 input is one example: Keras gives one ``(depth,)`` vector for it,
    eagerly and in a model; a scalar is that one-token example, as inside ``Dataset.map``). Values outside
    ``[0, depth)`` encode to zeros."""
    b = indices.builder
    if mode == "int":
        return indices
    x = indices
    if x.dtype != onnx.TensorProto.INT64:
        x = b.op("Cast", [x], to=onnx.TensorProto.INT64, shape=x.shape)
    if len(x.shape) == 0:
        # Keras ups a scalar to one example of one token: (depth,), or (1, depth) one-hot.
        x = b.op("Unsqueeze", [x, _ops.ints(b, [0])], shape=(1,))
    rank = len(x.shape)
    if rank == 1 and mode != "one_hot":
        hot = b.op("Cast", [b.op("Equal", [b.op("Unsqueeze", [x, _ops.ints(b, [1])]),
                                           _ops.ints(b, list(range(depth)))])], to=dtype)
        return _combine(hot, 0, mode)
    if rank == 1:
        # The shape is annotated so the one_hot test below sees the trailing 1 and squeezes it back:
        # Keras one-hot encodes a rank-1 input to (N, depth), as it does an (N, 1) one.
        x = b.op("Unsqueeze", [x, _ops.ints(b, [1])], shape=(*x.shape, 1))
        rank = 2
    if mode == "one_hot" and x.shape is not None and x.shape[-1] == 1:
        x = b.op("Squeeze", [x, _ops.ints(b, [rank - 1])])
        rank -= 1
    hot = b.op("Cast", [b.op("Equal", [b.op("Unsqueeze", [x, _ops.ints(b, [rank])]),
                                       _ops.ints(b, list(range(depth)))])], to=dtype)
    if mode == "one_hot":
        return hot
    return _combine(hot, 1, mode)


def _combine(hot: Any, axis: int, mode: str) -> Any:
    """The counts of each index over ``axis``, or for ``multi_hot`` whether there is one: the sign of the count,
    0 over no tokens at all (``ReduceMax`` gave -inf there: a batch of empty strings through TextVectorization)."""
    total = _ops.reduce("ReduceSum", hot, [axis], keepdims=False)
    return hot.builder.op("Sign", [total]) if mode == "multi_hot" else total


def _encoded_shape(input_shape: tuple, mode: str, depth: int) -> tuple:
    if mode == "int":
        return tuple(input_shape)
    if len(input_shape) == 0:
        input_shape = (1,)
    if len(input_shape) == 1:
        return (input_shape[0], depth) if mode == "one_hot" else (depth,)
    if mode == "one_hot":
        return (*input_shape[:-1], depth) if input_shape[-1] == 1 else (*input_shape, depth)
    return (input_shape[0], *input_shape[2:], depth)


class CategoryEncoding(Layer):
    """Encodes integer ids in ``[0, num_tokens)`` as ``one_hot``, ``multi_hot`` (default) or ``count``
    vectors (Keras 3's ``CategoryEncoding``).

    Example:
        >>> from onnxforge.layers import CategoryEncoding, Input
        >>> CategoryEncoding(num_tokens=4)(Input(shape=(3,), dtype="int64")).shape
        (None, 4)
    """

    _autocast = False
    _reads_ids = True   # see Sequential._keeps_dtype

    def __init__(self, num_tokens: int | None = None, output_mode: str = "multi_hot", sparse: bool = False,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode not in _MODES:
            raise ValueError(f"Unknown arg for output_mode: {output_mode}")
        if num_tokens is None:
            raise ValueError("num_tokens must be set to use this layer. If the number of tokens is not known "
                             "beforehand, use the IntegerLookup layer instead.")
        if num_tokens < 1:
            raise ValueError(f"`num_tokens` must be >= 1. Received: num_tokens={num_tokens}.")
        if sparse:
            raise NotImplementedError(f"CategoryEncoding {self.name!r}: sparse outputs are not supported by "
                                      "onnxforge. Received: sparse=True")
        self.num_tokens, self.output_mode, self.sparse = int(num_tokens), output_mode, False

    def call(self, inputs, count_weights=None):
        dtype = onnx_dtype(self.compute_dtype)
        if count_weights is not None:
            if self.output_mode != "count":
                raise ValueError("`count_weights` is not used when `output_mode` is not `'count'`. "
                                 f"Received `count_weights={count_weights}`.")
            b = inputs.builder
            hot = encode_categorical(inputs, "one_hot", self.num_tokens, dtype)
            weights = b.op("Unsqueeze", [count_weights, _ops.ints(b, [-1])])
            return _ops.reduce("ReduceSum", hot * weights, [1], keepdims=False)
        return encode_categorical(inputs, self.output_mode, self.num_tokens, dtype)

    def compute_output_shape(self, input_shape):
        return _encoded_shape(tuple(input_shape), self.output_mode, self.num_tokens)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens, "output_mode": self.output_mode}

    def _eager_program_key(self) -> tuple:
        # Equal encodings share compiled eager programs (EagerExecutor._cache_of): one made per Dataset.map row.
        return (type(self), repr(sorted((k, repr(v)) for k, v in self.get_config().items() if k != "name")))


# ---------------------------------------------------------------------------------- quantile summaries
def _summarize(values: np.ndarray, epsilon: float) -> np.ndarray:
    """A ``(2, n)`` summary of sorted ``values``: about ``1 / epsilon`` evenly spaced values and their weights."""
    values = np.sort(np.reshape(values, [-1]))
    step = max(values.size / (1.0 / epsilon), 1)  # Keras's arithmetic, so the picked values are the same
    picked = values[int(step - 1)::int(step)]
    return np.stack([picked, np.full_like(picked, step)])


def _compress(summary: np.ndarray, epsilon: float) -> np.ndarray:
    """Re-bin a summary at ``epsilon`` spacing by interpolating its cumulative weights."""
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum = summary[1].cumsum()
    fraction = cum / cum[-1]
    bins = np.interp(percents, fraction, summary[0])
    cum = np.interp(percents, fraction, cum)
    return np.stack((bins, cum - np.concatenate(([0], cum[:-1])))).astype("float32")


def _merge(a: np.ndarray, b: np.ndarray, epsilon: float) -> np.ndarray:
    merged = np.concatenate((a, b), axis=1)
    return _compress(merged[:, np.argsort(merged[0])], epsilon)


def quantile_boundaries(data: Any, num_bins: int, epsilon: float, layer: str = "Discretization") -> list[float]:
    """Keras's approximate quantile boundaries of ``data`` (an array or iterable of batches)."""
    summary = np.array([[], []], dtype="float32")
    for batch in batches(data, layer):
        summary = _merge(_summarize(np.asarray(batch, "float32"), epsilon), summary, epsilon)
    return _compress(summary, 1.0 / num_bins)[0, :-1].tolist()


class Discretization(Layer):
    """Buckets values by ``bin_boundaries`` (bucket ``i`` holds ``boundaries[i-1] <= x < boundaries[i]``),
    or by ``num_bins`` quantiles learned with ``adapt()`` (Keras 3's ``Discretization``).

    Example:
        >>> from onnxforge.layers import Discretization, Input
        >>> Discretization(bin_boundaries=[0.0, 1.0])(Input(shape=(3,))).dtype
        'int32'
    """

    _autocast = False

    def __init__(self, bin_boundaries: Any = None, num_bins: int | None = None, epsilon: float = 0.01,
                 output_mode: str = "int", sparse: bool = False, dtype: Any = None, name: str | None = None,
                 **kwargs: Any):
        super().__init__(name=name, dtype=dtype, **kwargs)
        if sparse:
            raise NotImplementedError(f"Discretization {self.name!r}: sparse outputs are not supported by onnxforge.")
        if output_mode not in ("int", *_MODES):
            raise ValueError(f"Invalid value for argument `output_mode`. Expected one of ('int', 'one_hot', "
                             f"'multi_hot', 'count'). Received: output_mode={output_mode}")
        if num_bins is not None and num_bins < 0:
            raise ValueError(f"`num_bins` must be greater than or equal to 0. Received: `num_bins={num_bins}`")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError("Both `num_bins` and `bin_boundaries` should not be set. Received: "
                             f"`num_bins={num_bins}` and `bin_boundaries={bin_boundaries}`")
        if num_bins is None and bin_boundaries is None:
            raise ValueError("You need to set either `num_bins` or `bin_boundaries`.")
        self.bin_boundaries = None if bin_boundaries is None else [float(v) for v in bin_boundaries]
        self.num_bins, self.epsilon, self.output_mode, self.sparse = num_bins, float(epsilon), output_mode, False

    def adapt(self, data: Any, steps: int | None = None) -> None:
        """Learn ``num_bins`` quantile boundaries from ``data``."""
        if self.num_bins is None:
            raise ValueError("Cannot adapt a Discretization layer that has been initialized with `bin_boundaries`, "
                             "use `num_bins` instead.")
        self.bin_boundaries = quantile_boundaries(data, self.num_bins, self.epsilon, f"Discretization {self.name!r}")

    def _depth(self) -> int:
        return len(self.bin_boundaries) + 1 if self.bin_boundaries is not None else int(self.num_bins)

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise ValueError("You need to either pass the `bin_boundaries` argument at construction time or call "
                             "`adapt(dataset)` before you can start using the `Discretization` layer.")
        b = inputs.builder
        start = len(b.nodes)
        x = inputs if inputs.is_float else b.op("Cast", [inputs], to=onnx.TensorProto.FLOAT, shape=inputs.shape)
        rank = len(x.shape)
        bounds = b.const(np.asarray(self.bin_boundaries, np.float32), x.dtype)
        above = b.op("GreaterOrEqual", [b.op("Unsqueeze", [x, _ops.ints(b, [rank])]), bounds])
        indices = _ops.reduce("ReduceSum", b.op("Cast", [above], to=onnx.TensorProto.INT64), [rank], keepdims=False)
        if self.output_mode == "int":
            # Keras 3 gives bucket indices as int32 (its ``output_dtype``), eagerly and symbolically.
            return b.op("Cast", [indices], to=onnx.TensorProto.INT32)
        fill_shapes(b, start)  # the encoding reads the rank
        dtype = onnx_dtype(self.compute_dtype)
        return encode_categorical(indices, self.output_mode, self._depth(), dtype)

    def _output_dtype(self, input_dtypes):
        return "int32" if self.output_mode == "int" else self.compute_dtype

    def compute_output_shape(self, input_shape):
        return _encoded_shape(tuple(input_shape), self.output_mode, self._depth())

    def get_config(self):
        config = super().get_config()
        config.pop("trainable")  # Keras's Discretization config has no `trainable`
        return {**config, "bin_boundaries": self.bin_boundaries, "num_bins": self.num_bins,
                "epsilon": self.epsilon, "output_mode": self.output_mode, "sparse": self.sparse}

    @classmethod
    def from_config(cls, config: dict) -> Discretization:
        config = dict(config)
        config.pop("trainable", None)
        if config.get("bin_boundaries") is not None and config.get("num_bins") is not None:
            bounds = config.pop("bin_boundaries")
            layer = cls(**config)
            layer.bin_boundaries = [float(v) for v in bounds]
            return layer
        return cls(**config)

"""``HashedCrossing``: Keras 3's feature cross by the hashing trick, with TensorFlow's bins bit for bit.

Keras (TensorFlow backend) bins ``FingerprintCat64`` chained over the crossed values, each value entering
as its 64 bits (integers) or its FarmHash ``Fingerprint64`` (strings), then ``mod num_bins``
(``tf.sparse.cross_hashed``). Integer crosses compile to ONNX (``uint64`` ``Mul`` / ``BitwiseXor`` /
``BitShift`` / ``Mod``, see :mod:`.farmhash`); strings cannot be read byte by byte by ONNX's standard
operators, so a string cross runs only on arrays (eagerly, as in a data pipeline) and is refused inside a
model with a clear error.
"""
from __future__ import annotations

__all__ = ["HashedCrossing"]

from typing import Any

import numpy as np
import onnx

from ...eager_tensor import as_eager
from ...graph import Value
from ...graph.value import onnx_dtype
from ..base import Layer
from ..keras_tensor import KerasTensor
from .encoding import encode_categorical
from .farmhash import cross_hash, emit_cross_hash

_NO_BINS = 2 ** 63 - 1   # num_bins=0: TensorFlow takes the hash modulo the largest int64


def _is_string_dtype(dtype: Any) -> bool:
    if isinstance(dtype, np.dtype):
        return dtype.kind in "USO"
    return dtype in ("string", onnx.TensorProto.STRING)


def _is_int_dtype(dtype: Any) -> bool:
    if isinstance(dtype, np.dtype):
        return dtype.kind in "iu"
    if isinstance(dtype, str):
        return dtype.startswith(("int", "uint"))
    return dtype in (onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64,
                     onnx.TensorProto.UINT8, onnx.TensorProto.UINT16, onnx.TensorProto.UINT32,
                     onnx.TensorProto.UINT64)


class HashedCrossing(Layer):
    """Crosses two or more categorical features (integers or strings) into ``num_bins`` hash bins, as
    ``hash(concatenate(features)) % num_bins`` (Keras 3's ``keras.layers.HashedCrossing``).

    Inputs are a list or tuple of equally shaped tensors of shape ``()``, ``(batch,)`` or ``(batch, 1)``.
    ``output_mode="int"`` returns the bins (int64, the input's shape); ``"one_hot"`` returns
    ``(batch, num_bins)`` float vectors. Bins equal Keras's on the TensorFlow backend.

    Args:
        num_bins: the number of hash bins (``0``: no bucketing, ``int`` mode only, as TensorFlow).
        output_mode: ``"int"`` or ``"one_hot"``.
        sparse: not supported (``True`` raises).

    Raises:
        NotImplementedError: crossing string features inside a model (ONNX cannot fingerprint strings);
            call the layer on arrays instead, in the data pipeline.

    Example:
        >>> import numpy as np
        >>> from onnxforge.layers import HashedCrossing
        >>> layer = HashedCrossing(num_bins=5)
        >>> layer((np.array(["A", "B", "A", "B", "A"]), np.array([101, 101, 101, 102, 102]))).tolist()
        [1, 4, 1, 1, 3]
    """

    _autocast = False
    _reads_ids = True   # see Sequential._keeps_dtype

    def __init__(self, num_bins: int, output_mode: str = "int", sparse: bool = False, name: str | None = None,
                 dtype: Any = None, **kwargs: Any):
        if output_mode == "int" and dtype is None:
            dtype = "int64"
        super().__init__(name=name, dtype=dtype, **kwargs)
        if output_mode not in ("int", "one_hot"):
            raise ValueError("Invalid value for argument `output_mode`. Expected one of ('int', 'one_hot'). "
                             f"Received: output_mode={output_mode}")
        if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 0:
            raise ValueError(f"`num_bins` must be a non-negative integer. Received: num_bins={num_bins!r}")
        if num_bins == 0 and output_mode == "one_hot":
            raise ValueError("`num_bins` must be positive with output_mode='one_hot'. Received: num_bins=0")
        if sparse:
            raise NotImplementedError(f"HashedCrossing {self.name!r}: sparse outputs are not supported by "
                                      "onnxforge. Received: sparse=True")
        self.num_bins, self.output_mode, self.sparse = int(num_bins), output_mode, False

    # ------------------------------------------------------------------ checks (Keras's messages)
    @staticmethod
    def _check_structure(inputs: Any) -> None:
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"`HashedCrossing` should be called on a list or tuple of inputs. Received: "
                             f"inputs={inputs}")
        if len(inputs) < 2:
            raise ValueError(f"`HashedCrossing` should be called on at least two inputs. Received: inputs={inputs}")

    @staticmethod
    def _check_shapes_and_dtypes(inputs: Any, shapes: list[tuple], dtypes: list[Any]) -> None:
        first = tuple(shapes[0])
        if len(first) > 2 or (len(first) == 2 and first[-1] != 1):
            raise ValueError("All `HashedCrossing` inputs should have shape `()`, `(batch_size)` or "
                             f"`(batch_size, 1)`. Received: inputs={inputs}")
        if any(len(s) != len(first) or any(a is not None and b is not None and a != b for a, b in zip(s, first))
               for s in shapes[1:]):
            raise ValueError(f"All `HashedCrossing` inputs should have equal shape. Received: inputs={inputs}")
        if not all(_is_int_dtype(d) or _is_string_dtype(d) for d in dtypes):
            raise ValueError(f"All `HashedCrossing` inputs should have an integer or string dtype. Received: "
                             f"inputs={inputs}")

    def _refuse_strings(self, dtypes: list[Any]) -> None:
        if any(_is_string_dtype(d) for d in dtypes):
            raise NotImplementedError(
                f"HashedCrossing {self.name!r}: crossing string features inside a model needs FarmHash "
                "fingerprints of the strings, which ONNX's standard operators cannot compute. Call the layer on "
                "arrays (in the data pipeline, as Keras recommends), or map the strings to integers first "
                "(StringLookup) and cross those.")

    # ------------------------------------------------------------------ calling
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        inputs = args[0] if args else kwargs.get("inputs")
        self._check_structure(inputs)
        if not any(isinstance(x, (KerasTensor, Value)) for x in inputs):
            return self._host_call([np.asarray(x) for x in inputs])
        symbolic = [x for x in inputs if isinstance(x, KerasTensor)]
        if symbolic:
            self._check_shapes_and_dtypes(inputs, [tuple(x.shape) for x in symbolic],
                                          [x.dtype for x in symbolic])
            self._refuse_strings([x.dtype for x in symbolic])
        return super().__call__(*args, **kwargs)

    def _host_call(self, arrays: list[np.ndarray]) -> Any:
        """Arrays: TensorFlow's hash computed in Python (strings included), no graph needed."""
        arrays = [a.astype(object) if a.dtype.kind in "US" else a for a in arrays]
        self._check_shapes_and_dtypes(arrays, [a.shape for a in arrays], [a.dtype for a in arrays])
        if any(a.shape != arrays[0].shape for a in arrays[1:]):
            raise ValueError(f"All `HashedCrossing` inputs should have equal shape. Received: inputs={arrays}")
        bins = cross_hash(arrays, self.num_bins or _NO_BINS)
        if self.output_mode == "int":
            return as_eager(bins)
        flat = bins.reshape(-1) if bins.ndim else bins.reshape(1)
        hot = (flat[:, None] == np.arange(self.num_bins)[None, :]).astype(self.compute_dtype)
        return as_eager(hot)

    def call(self, inputs: Any) -> Value:
        self._check_structure(inputs)
        self._check_shapes_and_dtypes(inputs, [tuple(x.shape or ()) for x in inputs], [x.dtype for x in inputs])
        self._refuse_strings([x.dtype for x in inputs])
        bins = emit_cross_hash(list(inputs), self.num_bins or _NO_BINS)
        if self.output_mode == "int":
            return bins
        if not inputs[0].shape:
            bins = bins.builder.op("Reshape", [bins, bins.builder.const(np.asarray([1], np.int64))], shape=(1,))
        else:
            bins.shape = tuple(inputs[0].shape)
        return encode_categorical(bins, "one_hot", self.num_bins, onnx_dtype(self.compute_dtype))

    def _output_dtype(self, input_dtypes: list[str | None]) -> str:
        return "int64" if self.output_mode == "int" else self.compute_dtype

    def compute_output_shape(self, input_shape: Any) -> tuple:
        if len(input_shape) < 2 or not all(isinstance(s, (tuple, list)) for s in input_shape):
            raise ValueError(f"Expected as input a list/tuple of 2 tensors. Received input_shape={input_shape}")
        first = tuple(input_shape[0])
        if first and input_shape[1] and first[-1] != tuple(input_shape[1])[-1]:
            raise ValueError(f"Expected the two input tensors to have identical shapes. Received "
                             f"input_shape={input_shape}")
        if self.output_mode == "int":
            return first
        if not first:
            return (self.num_bins,)
        return first + (self.num_bins,) if first[-1] != 1 else first[:-1] + (self.num_bins,)

    def get_config(self) -> dict:
        return {"num_bins": self.num_bins, "output_mode": self.output_mode, "sparse": self.sparse,
                "name": self.name, "dtype": self.dtype}

"""Symbolic values: a name in a graph with its element type and (possibly symbolic) shape."""
from __future__ import annotations

__all__ = ["Value", "Dim", "Shape", "FLOAT_TYPES", "np_dtype", "onnx_dtype", "broadcast_shapes"]

from typing import TYPE_CHECKING, Any, Union

import numpy as np
import onnx

if TYPE_CHECKING:
    from .builder import GraphBuilder

#: One dimension: a static size, a symbolic name (``"batch"``) or ``None`` when nothing is known.
Dim = Union[int, str, None]
#: A shape: a tuple of dims, or ``None`` when even the rank is unknown.
Shape = Union[tuple, None]

FLOAT_TYPES = frozenset(
    {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
)


def np_dtype(elem_type: int) -> np.dtype:
    """The numpy dtype of an ONNX element type."""
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


def onnx_dtype(dtype: Any) -> int:
    """The ONNX element type of a numpy dtype (or anything ``np.dtype`` accepts)."""
    if isinstance(dtype, str) and dtype == "string":
        return onnx.TensorProto.STRING
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def broadcast_shapes(*shapes: Shape) -> Shape:
    """The numpy-broadcast shape of ``shapes``; ``None`` if a rank is unknown, a dim ``None`` where unknown.

    Example:
        >>> broadcast_shapes(("batch",), ())
        ('batch',)
        >>> broadcast_shapes(("batch", 1), (3,))
        ('batch', 3)
    """
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out: list = []
    for k in range(rank):
        dims = {s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0} - {1}
        out.append(dims.pop() if len(dims) == 1 else (1 if not dims else None))
    return tuple(out)


class Value:
    """A tensor in a graph under construction.

    ``Value`` objects support arithmetic operators that emit ONNX nodes into their builder, so gradient
    rules and layers read like the math: ``dy * (1 - y * y)``. Python scalars are converted to constants
    of the value's own dtype.

    Example:
        >>> from onnxforge.graph import GraphBuilder
        >>> import onnx
        >>> b = GraphBuilder()
        >>> x = b.input("x", onnx.TensorProto.FLOAT, ("batch", 3))
        >>> y = x * 2.0 + 1.0
        >>> y.dtype == onnx.TensorProto.FLOAT
        True
    """

    __slots__ = ("name", "dtype", "shape", "builder")

    def __init__(self, name: str, dtype: int | None, shape: Shape, builder: GraphBuilder | None = None):
        self.name = name
        self.dtype = dtype
        self.shape = None if shape is None else tuple(shape)
        self.builder = builder

    def __repr__(self) -> str:
        dtype = onnx.TensorProto.DataType.Name(self.dtype) if self.dtype else "?"
        return f"Value({self.name!r}, {dtype}, {self.shape})"

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_TYPES

    def static_shape(self) -> tuple[int, ...] | None:
        """The shape if every dim is a known int, else ``None``."""
        if self.shape is None or not all(isinstance(d, int) for d in self.shape):
            return None
        return self.shape

    # Arithmetic: each emits one node. Kept to the ops the rules use constantly.
    def _bin(self, op: str, other: Any, reverse: bool = False) -> Value:
        assert self.builder is not None, f"{self!r} is not attached to a builder"
        if hasattr(other, "__onnx_value__"):
            other = other.__onnx_value__()
        a, b = (other, self) if reverse else (self, other)
        return self.builder.op(op, [a, b])

    def __add__(self, o: Any) -> Value:
        return self._bin("Add", o)

    def __radd__(self, o: Any) -> Value:
        return self._bin("Add", o, True)

    def __sub__(self, o: Any) -> Value:
        return self._bin("Sub", o)

    def __rsub__(self, o: Any) -> Value:
        return self._bin("Sub", o, True)

    def __mul__(self, o: Any) -> Value:
        return self._bin("Mul", o)

    def __rmul__(self, o: Any) -> Value:
        return self._bin("Mul", o, True)

    def __truediv__(self, o: Any) -> Value:
        return self._bin("Div", o)

    def __rtruediv__(self, o: Any) -> Value:
        return self._bin("Div", o, True)

    def __neg__(self) -> Value:
        assert self.builder is not None
        return self.builder.op("Neg", [self])

    def __matmul__(self, o: Any) -> Value:
        return self._bin("MatMul", o)

    # Comparisons give bool tensors (as in Keras), so ``if x > 0:`` reaches ``__bool__``'s explanation.
    def __gt__(self, o: Any) -> Value:
        return self._bin("Greater", o)

    def __ge__(self, o: Any) -> Value:
        return self._bin("GreaterOrEqual", o)

    def __lt__(self, o: Any) -> Value:
        return self._bin("Less", o)

    def __le__(self, o: Any) -> Value:
        return self._bin("LessOrEqual", o)

    def __bool__(self) -> bool:
        # Python control flow on a symbolic value cannot be traced into a graph.
        raise TypeError(
            f"The truth value of symbolic tensor {self.name!r} is not known while building the graph. "
            "Use graph ops instead of Python branching (for example ops.where(cond, a, b))."
        )

    # Host conversions: a symbolic value has no number yet. Each error says what to write instead.
    def _no_value(self, what: str) -> TypeError:
        return TypeError(
            f"{what} needs the value of symbolic tensor {self.name!r}, which is not known while the graph is "
            "being built (inside a traced train_step or layer call). Write the computation with "
            "onnxforge.ops (ops.mean, ops.where, ops.sqrt, ...) so it becomes part of the graph, and return "
            "values you want to see on the host from train_step (they come back as numpy arrays)."
        )

    def __float__(self) -> float:
        raise self._no_value("float()")

    def __int__(self) -> int:
        raise self._no_value("int()")

    def __index__(self) -> int:
        raise self._no_value("Using a tensor as a Python integer")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise self._no_value("Converting to a numpy array")

    _UFUNC_OPS = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "true_divide": "Div", "divide": "Div",
                  "matmul": "MatMul", "greater": "Greater", "less": "Less", "greater_equal": "GreaterOrEqual",
                  "less_equal": "LessOrEqual"}

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # ``ndarray * value`` lands here: emit the node (the array becomes a constant) rather than letting
        # numpy build an object array of per-element nodes. Other numpy functions cannot run symbolically.
        op = self._UFUNC_OPS.get(ufunc.__name__)
        if method == "__call__" and op is not None and len(inputs) == 2 and not kwargs:
            assert self.builder is not None
            return self.builder.op(op, list(inputs))
        raise self._no_value(f"numpy.{ufunc.__name__}")

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        raise self._no_value(f"numpy.{func.__name__}")

"""Symbolic values: a name in a graph with its element type and (possibly symbolic) shape."""
from __future__ import annotations

__all__ = ["Value", "Dim", "Shape", "FLOAT_TYPES", "np_dtype", "onnx_dtype", "broadcast_shapes", "matmul_shape"]

from typing import TYPE_CHECKING, Any, Union

import numpy as np
import onnx

from .dtypes import result_type
from .element_type import ElementType, element_type
from .traced_shape import TracedShape, refined_shape, traced_shape

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
    if np.dtype(dtype).kind == "S":   # NumPy bytes (``.numpy()`` of a string tensor), fed decoded as text
        return onnx.TensorProto.STRING
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def broadcast_shapes(*shapes: Shape) -> Shape:
    """The numpy-broadcast shape of ``shapes``; ``None`` if a rank is unknown, a dim ``None`` where unknown.

    Example:
        >>> broadcast_shapes(("batch",), ())
        ('batch',)
        >>> broadcast_shapes(("batch", 1), (3,))
        ('batch', 3)
        >>> broadcast_shapes((None, None, None), (None, 16))
        (None, None, 16)
    """
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out: list = []
    for k in range(rank):
        dims = {s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0} - {1}
        # A known size wins over unknown or symbolic ones (each is 1 or that size if the program is valid),
        # as Keras infers it: (None, None, None) + (None, 16) is (None, None, 16) (keras.io video transformer).
        known = {d for d in dims if isinstance(d, (int, np.integer))}
        out.append(known.pop() if len(known) == 1 else dims.pop() if len(dims) == 1 else (1 if not dims else None))
    return tuple(out)


def matmul_shape(a: Shape, b: Shape) -> Shape:
    """The shape of ``a @ b`` (NumPy's matmul rules); ``None`` if a rank is unknown.

    Example:
        >>> matmul_shape(("batch", 4, 3), (3, 5))
        ('batch', 4, 5)
        >>> matmul_shape((3,), (3, 5))
        (5,)
    """
    if a is None or b is None or len(a) == 0 or len(b) == 0:
        return None
    a2 = (1, *a) if len(a) == 1 else tuple(a)
    b2 = (*b, 1) if len(b) == 1 else tuple(b)
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    if batch is None:
        return None
    out = [*batch, a2[-2], b2[-1]]
    if len(b) == 1:
        out.pop(-1)
    if len(a) == 1:
        out.pop(-2 if len(b) != 1 else -1)
    return tuple(out)


def _shape_of(x: Any) -> Shape:
    if isinstance(x, Value):
        return x.shape
    return tuple(np.shape(x))


def _is_tensor_operand(x: Any) -> bool:
    """Whether ``==`` with ``x`` compares elementwise: a value, a number, an array, a Variable read in a trace.
    Anything else (``None``, strings, tuples) keeps Python's identity comparison."""
    return isinstance(x, (Value, bool, int, float, np.generic, np.ndarray)) or hasattr(x, "__onnx_value__")


def _is_float_operand(x: Any) -> bool:
    if isinstance(x, Value):
        return x.is_float
    if hasattr(x, "__onnx_value__"):
        return x.__onnx_value__().is_float
    return np.asarray(x).dtype.kind == "f"


def _promote(a: Value, c: Any) -> tuple[Any, Any]:
    """Operands of the type Keras's promotion gives (``dtypes.result_type``): float16 + float32 -> float32,
    int32 + int64 -> int64, an integer or bool tensor meeting a float tensor or a Python float becomes float,
    a bool meeting an integer becomes that integer (a Python int: int32). Other Python numbers and arrays
    take the tensor's type, which the builder does for constants."""
    if isinstance(c, Value):
        if a.dtype is None or c.dtype is None or a.dtype == c.dtype:
            return a, c
        if a.weak != c.weak:   # a Python int's stand-in meets a tensor: it takes the tensor's type
            strong = c if a.weak else a
            to = result_type([strong.dtype], weak=[int])
        else:
            to = result_type([a.dtype, c.dtype])
        return _cast(a, to), _cast(c, to)
    if a.dtype is not None and isinstance(c, (bool, int, float, np.bool_, np.integer, np.floating)):
        kind = bool if isinstance(c, (bool, np.bool_)) else float if isinstance(c, (float, np.floating)) else int
        return _cast(a, result_type([a.dtype], weak=[kind])), c
    return a, c


def _python_mod(b: Any, a: Any, c: Any) -> Value:
    """``a % c`` with Python's sign convention (the divisor's), for int and float operands."""
    shape = broadcast_shapes(_shape_of(a), _shape_of(c))
    if not any(isinstance(v, Value) and v.is_float for v in (a, c)):
        return b.op("Mod", [a, c], shape=shape)   # integer Mod (fmod=0) already follows the divisor's sign
    r = b.op("Mod", [a, c], fmod=1, shape=shape)  # C's fmod: the dividend's sign
    wrong_sign = b.op("And", [b.op("Not", [b.op("Equal", [r, 0.0])]), b.op("Less", [b.op("Mul", [r, c]), 0.0])])
    return b.op("Where", [wrong_sign, b.op("Add", [r, c], shape=shape), r], shape=shape)


def _weak_if(out: Value, a: Value, other: Any) -> Value:
    """``out`` marked weak where Keras would still hold a Python int: integer arithmetic of a weak value with
    another one or with a Python int (``ops.shape(x)[0] * 2``)."""
    if a.weak and (isinstance(other, Value) and other.weak or isinstance(other, int) and not isinstance(other, bool)) \
            and out.dtype == a.dtype:
        out.weak = True
    return out


def _cast(v: Value, to: int) -> Value:
    if v.dtype == to:
        return v
    assert v.builder is not None
    return v.builder.op("Cast", [v], to=to, shape=v.shape)


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

    __slots__ = ("name", "_dtype", "_shape", "builder", "is_sequence", "weak")

    def __init__(self, name: str, dtype: int | None, shape: Shape, builder: GraphBuilder | None = None,
                 sequence: bool = False):
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.builder = builder
        #: A sequence of tensors (``dtype`` is then its elements' type, ``shape`` ``None``).
        self.is_sequence = sequence
        #: An int64 scalar standing for a Python int (a run-time dim of ``ops.shape``, where Keras has an int):
        #: it takes the type of the tensors it meets, as a Python int does (``x + ops.shape(x)[0]`` stays int32).
        self.weak = False

    def __repr__(self) -> str:
        dtype = onnx.TensorProto.DataType.Name(self.dtype) if self.dtype else "?"
        if self.is_sequence:
            return f"Value({self.name!r}, sequence of {dtype})"
        return f"Value({self.name!r}, {dtype}, {self.shape})"

    @property
    def dtype(self) -> ElementType | None:
        """The ONNX element type: an ``int`` that also equals Keras's dtype name (``x.dtype == "float32"``,
        ``x.dtype.name``), as user code inside a traced ``call()`` compares it (``graph/element_type.py``)."""
        return self._dtype

    @dtype.setter
    def dtype(self, elem_type: int | None) -> None:
        self._dtype = element_type(elem_type)

    @property
    def shape(self) -> TracedShape | None:
        """The dims (a ``tuple``; ``None`` for an unknown rank), with ``tf.TensorShape``'s ``as_list()`` /
        ``rank`` for user code in a traced ``call()`` (``graph/traced_shape.py``)."""
        return self._shape

    @shape.setter
    def shape(self, dims: Shape) -> None:
        self._shape = traced_shape(dims)

    def set_shape(self, shape: Any) -> None:
        """TensorFlow's ``Tensor.set_shape``: the dims this value does not know yet taken from ``shape`` (fixres's
        ``image.set_shape([None, None, channels])`` after a ``tf.slice`` of traced sizes).

        Raises:
            ValueError: ``shape`` contradicts a known dim or the rank.
        """
        self.shape = refined_shape(self._shape, shape)

    def get_shape(self) -> TracedShape | None:
        """TensorFlow's ``Tensor.get_shape``: the same as ``shape``."""
        return self.shape

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def ndim(self) -> int | None:
        """The rank, as Keras tensors call it (``None`` when unknown)."""
        return self.rank

    @property
    def T(self) -> Value:  # noqa: N802 - the NumPy / Keras name
        """The transpose with all axes reversed (ONNX Transpose's default order)."""
        assert self.builder is not None
        return self.builder.op("Transpose", [self], shape=None if self.shape is None else self.shape[::-1])

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_TYPES

    def to_tensor(self, default_value: Any = None, name: str | None = None, shape: Any = None) -> Value:
        """The value itself: where TensorFlow hands back a ``RaggedTensor`` whose rows are all the same length
        (``tf.strings.unicode_split`` of one string), onnxforge has a dense tensor, and the ``.to_tensor()``
        programs call on it has nothing to pad."""
        return self

    def static_shape(self) -> tuple[int, ...] | None:
        """The shape if every dim is a known int, else ``None``."""
        if self.shape is None or not all(isinstance(d, int) for d in self.shape):
            return None
        return self.shape

    # Operators: each emits one node (two where dtypes must be promoted) and annotates the static shape, so
    # ``LayerNormalization()(inputs + attn)`` sees the same shape as ``ops.add(inputs, attn)`` gives.
    def _bin(self, op: str, other: Any, reverse: bool = False) -> Value:
        a, c = self._operands(other, reverse)
        if op == "Add" and self.dtype == onnx.TensorProto.STRING:
            op = "StringConcat"   # ``+`` joins strings, as TensorFlow's does
        shapes = [_shape_of(a), _shape_of(c)]
        shape = matmul_shape(*shapes) if op == "MatMul" else broadcast_shapes(*shapes)
        return _weak_if(self.builder.op(op, [a, c], shape=shape), self, other)

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
        if not self.is_float and self.dtype is not None and not _is_float_operand(o):
            return self._as_float()._bin("Div", o)   # true division of integers gives floats (NumPy, Keras)
        return self._bin("Div", o)

    def __rtruediv__(self, o: Any) -> Value:
        if not self.is_float and self.dtype is not None and not _is_float_operand(o):
            return self._as_float()._bin("Div", o, True)
        return self._bin("Div", o, True)

    def __pow__(self, o: Any) -> Value:
        return self._bin("Pow", o)

    def __rpow__(self, o: Any) -> Value:
        return self._bin("Pow", o, True)

    def __mod__(self, o: Any) -> Value:
        return self._mod(o, False)

    def __rmod__(self, o: Any) -> Value:
        return self._mod(o, True)

    def _mod(self, o: Any, reverse: bool) -> Value:
        a, c = self._operands(o, reverse)
        return _weak_if(_python_mod(self.builder, a, c), self, o)

    def __floordiv__(self, o: Any) -> Value:
        return self._floordiv(o, False)

    def __rfloordiv__(self, o: Any) -> Value:
        return self._floordiv(o, True)

    def _floordiv(self, o: Any, reverse: bool) -> Value:
        b = self.builder
        a, c = self._operands(o, reverse)
        shape = broadcast_shapes(_shape_of(a), _shape_of(c))
        if any(isinstance(v, Value) and v.is_float for v in (a, c)):
            return b.op("Floor", [b.op("Div", [a, c], shape=shape)], shape=shape)
        # Integer Div truncates toward zero; Python floors: a // c = (a - a mod c) / c, an exact division.
        return _weak_if(b.op("Div", [b.op("Sub", [a, _python_mod(b, a, c)], shape=shape), c], shape=shape), self, o)

    def _operands(self, o: Any, reverse: bool) -> tuple[Any, Any]:
        assert self.builder is not None, f"{self!r} is not attached to a builder"
        if hasattr(o, "__onnx_value__"):
            o = o.__onnx_value__()
        a, c = _promote(self, o)
        return (c, a) if reverse else (a, c)

    def __matmul__(self, o: Any) -> Value:
        return self._bin("MatMul", o)

    def __rmatmul__(self, o: Any) -> Value:
        return self._bin("MatMul", o, True)

    def __neg__(self) -> Value:
        assert self.builder is not None
        return self.builder.op("Neg", [self], shape=self.shape)

    def __pos__(self) -> Value:
        return self

    def __abs__(self) -> Value:
        assert self.builder is not None
        return self.builder.op("Abs", [self], shape=self.shape)

    def __invert__(self) -> Value:
        assert self.builder is not None
        if self.dtype == onnx.TensorProto.BOOL:
            return self.builder.op("Not", [self], shape=self.shape)
        return self.builder.op("BitwiseNot", [self], shape=self.shape)

    def _logical(self, op: str, o: Any, reverse: bool = False) -> Value:
        bitwise = {"And": "BitwiseAnd", "Or": "BitwiseOr", "Xor": "BitwiseXor"}
        if self.dtype != onnx.TensorProto.BOOL:
            op = bitwise[op]
        return self._bin(op, o, reverse)

    def __and__(self, o: Any) -> Value:
        return self._logical("And", o)

    def __rand__(self, o: Any) -> Value:
        return self._logical("And", o, True)

    def __or__(self, o: Any) -> Value:
        return self._logical("Or", o)

    def __ror__(self, o: Any) -> Value:
        return self._logical("Or", o, True)

    def __xor__(self, o: Any) -> Value:
        return self._logical("Xor", o)

    def __rxor__(self, o: Any) -> Value:
        return self._logical("Xor", o, True)

    def __getitem__(self, key: Any) -> Value:
        from .indexing import getitem

        return getitem(self, key)

    def __iter__(self) -> Any:
        first = self.shape[0] if self.shape else None
        if not isinstance(first, int):
            raise TypeError(f"Cannot iterate over symbolic tensor {self.name!r} of shape {self.shape}: its first "
                            "dimension is not known while tracing. Index it (x[:, 0]) instead; a Python `for i in "
                            "tf.range(n)` with n known only at run time needs AutoGraph, which converts it inside "
                            "a tf.function unless the loop has break / continue / return: else write it with "
                            "tf.while_loop (a TensorArray may be one of its loop variables).")
        return iter([self[i] for i in range(first)])

    def _as_float(self) -> Value:
        assert self.builder is not None
        return self.builder.op("Cast", [self], to=onnx.TensorProto.FLOAT, shape=self.shape)

    # Comparisons give bool tensors (as in Keras), so ``if x > 0:`` reaches ``__bool__``'s explanation.
    # ``==`` and ``!=`` too: ``mask = y_true != 0`` in a loss must be a tensor, not Python's ``True``. Hashing
    # stays identity, so values remain dict keys and set members (both look at identity before ``==``);
    # the compiler compares values by name, never with ``==`` or list membership (``x in [a, b]`` would
    # reach ``__bool__`` and fail loudly). Operands that are no tensor (``None``, strings) compare by identity.
    __hash__ = object.__hash__

    def __eq__(self, o: Any) -> Any:
        return self._bin("Equal", o) if _is_tensor_operand(o) else NotImplemented

    def __ne__(self, o: Any) -> Any:
        return self._not(self._bin("Equal", o)) if _is_tensor_operand(o) else NotImplemented

    @staticmethod
    def _not(v: Value) -> Value:
        assert v.builder is not None
        return v.builder.op("Not", [v], shape=v.shape)

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
            "Use graph ops instead of Python branching (for example ops.where(cond, a, b), ops.cond / "
            "ops.while_loop / ops.fori_loop, or tf.cond / tf.while_loop: ONNX If / Loop). Inside a tf.function, onnxforge's AutoGraph converts `if` / `while` / `for` "
            "statements on tensors, but not one with break / continue / return inside a loop, nor code outside a "
            "tf.function."
        )

    # Host conversions: a symbolic value has no number yet. Each error says what to write instead.
    def _no_value(self, what: str) -> TypeError:
        return TypeError(
            f"{what} needs the value of symbolic tensor {self.name!r}, which is not known while the graph is "
            "being built (inside a traced train_step or layer call). Write the computation with "
            "onnxforge.ops (ops.mean, ops.where, ops.sqrt, ...) so it becomes part of the graph, and return "
            "values you want to see on the host from train_step (they come back as numpy arrays)."
        )

    def _known(self, what: str) -> np.ndarray:
        # A value computed from constants only has its number now (graph/folding.py): a size that TensorFlow
        # code derives from an array the model holds (``tf.reduce_max(edges[:, 0]) + 1``).
        from .folding import known_value

        value = known_value(self)
        if value is None:
            raise self._no_value(what)
        return value

    def __float__(self) -> float:
        return float(self._known("float()"))

    def __int__(self) -> int:
        return int(self._known("int()"))

    def __index__(self) -> int:
        value = self._known("Using a tensor as a Python integer")
        if value.dtype.kind not in "iub" or value.size != 1:
            raise TypeError(f"Only an integer scalar tensor can be a Python integer. Received: tensor "
                            f"{self.name!r} of dtype {value.dtype} and shape {value.shape}")
        return int(value.reshape(()))

    def numpy(self) -> np.ndarray:
        """The value, where constants alone decide it; otherwise the host-conversion refusal (a ``TypeError``),
        which an eager layer call answers by running ``call`` on eager tensors (layers/eager_call.py)."""
        return self._known(".numpy()")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self._known("Converting to a numpy array")
        return value if dtype is None else value.astype(dtype)

    _UFUNC_OPS = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "true_divide": "Div", "divide": "Div",
                  "matmul": "MatMul", "power": "Pow", "greater": "Greater", "less": "Less", "greater_equal": "GreaterOrEqual",
                  "less_equal": "LessOrEqual", "equal": "Equal"}

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # ``ndarray * value`` lands here: emit the node (the array becomes a constant) rather than letting
        # numpy build an object array of per-element nodes. Other numpy functions cannot run symbolically.
        op = self._UFUNC_OPS.get(ufunc.__name__)
        if ufunc.__name__ == "not_equal" and method == "__call__" and len(inputs) == 2 and not kwargs:
            return self._not(self.__array_ufunc__(np.equal, method, *inputs))
        if method == "__call__" and op is not None and len(inputs) == 2 and not kwargs:
            return self._bin(op, inputs[1]) if inputs[0] is self else self._bin(op, inputs[0], reverse=True)
        raise self._no_value(f"numpy.{ufunc.__name__}")

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        raise self._no_value(f"numpy.{func.__name__}")

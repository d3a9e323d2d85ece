"""What every op of ``onnxforge.ops`` shares: finding the graph, turning arguments into graph values,
shape tensors with symbolic dims, and the eager fallback that runs an op once with onnxruntime.

An op runs *symbolically* when any argument is a graph ``Value``, or when a trace is
active (inside a compiled ``train_step`` or a layer's ``call``): it emits nodes and returns ``Value``s.
Otherwise it runs *eagerly*: numpy arrays become the inputs of a small graph, compiled once per argument
signature and run by onnxruntime (``onnxforge.eager``), and the result comes back as ``EagerTensor``s
(numpy arrays with ``.numpy()``), so ``ops.sigmoid(np.zeros(2))`` works like ``keras.ops``; a ``Variable``
stands for its graph value in a trace and for its current value outside one.
"""
from __future__ import annotations

__all__ = ["symbolic", "builder_of", "as_value", "promote", "shape_tensor", "static_dims", "dtype_enum",
           "record_dim", "fill_const", "int_const", "symbol_size"]

import functools
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from ..graph.shape_inference import fill_shapes
from ..graph import FLOAT_TYPES, GraphBuilder, Value, np_dtype, onnx_dtype, protos
from ..graph.dtypes import result_type
from ..variables import Variable, tape_follows

_INT64 = onnx.TensorProto.INT64
_FLOAT = onnx.TensorProto.FLOAT

# builder -> {name of a scalar int64 Value made by ops.shape: the symbolic dim it measures ("batch")}
_dims: weakref.WeakKeyDictionary[GraphBuilder, dict[str, Any]] = weakref.WeakKeyDictionary()


# ------------------------------------------------------------------------------------------ structure
def _leaves(x: Any) -> list[Any]:
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in _leaves(item)]
    if isinstance(x, dict):
        return [leaf for item in x.values() for leaf in _leaves(item)]
    return [x]


def _map(fn: Callable[[Any], Any], x: Any) -> Any:
    if isinstance(x, list):
        return [_map(fn, i) for i in x]
    if isinstance(x, tuple):
        return tuple(_map(fn, i) for i in x)
    if isinstance(x, dict):
        return {k: _map(fn, v) for k, v in x.items()}
    return fn(x)


def _active_trace() -> Any:
    from ..tracing import current_trace

    try:
        return current_trace()
    except RuntimeError:
        return None


def builder_of(*args: Any) -> GraphBuilder | None:
    """The graph the arguments live in: the first ``Value``'s builder, else the active trace's, else ``None``."""
    leaves = _leaves(args)
    for leaf in leaves:
        if isinstance(leaf, Value):
            return leaf.builder
    ctx = _active_trace()
    return ctx.b if ctx is not None else None


# ------------------------------------------------------------------------------------------ dtypes
def dtype_enum(dtype: Any) -> int:
    """An ONNX element type from ``"float32"``, a numpy dtype or an ONNX enum."""
    if isinstance(dtype, int) and not isinstance(dtype, bool):
        return dtype
    try:
        return onnx_dtype(np.dtype(getattr(dtype, "name", dtype)))
    except TypeError:
        raise ValueError(f"Invalid dtype: {dtype!r}. Expected a dtype name such as 'float32' or 'int64'.") from None


def python_numbers(x: Any) -> bool:
    """Whether ``x`` is a Python number or a (nested) list / tuple of them only: what Keras types by its own
    defaults (int32, floatx, bool) rather than by NumPy's (int64, float64)."""
    if isinstance(x, (list, tuple)):
        return all(python_numbers(i) for i in x)
    return isinstance(x, (bool, int, float))


def _host_array(x: Any, dtype: int | None) -> np.ndarray:
    if dtype is not None:
        return np.asarray(x, dtype=np_dtype(dtype))
    array = np.asarray(x)
    if array.dtype == np.float64:
        return array.astype(np.float32)   # Keras's floatx for Python and float64 numbers
    if array.dtype.kind in "iu" and python_numbers(x):
        # Keras's default int for Python ints is int32 (``convert_to_tensor(1)``); one outside its range gets
        # int64, as Keras's torch backend gives it.
        fits = not array.size or (-2 ** 31 <= array.min() and array.max() < 2 ** 31)
        return array.astype(np.int32 if fits else np.int64)
    return array


def as_value(x: Any, b: GraphBuilder, like: Value | None = None, dtype: Any = None) -> Value:
    """``x`` as a graph value: Values pass, Variables are read through the trace, numbers and arrays
    become constants (of ``dtype``, else of ``like``'s float type for Python numbers, else Keras's defaults:
    float32 for Python floats, int32 for Python ints, an array's own type otherwise)."""
    if isinstance(x, Value):
        return x if dtype is None or x.dtype == dtype_enum(dtype) else cast_value(x, dtype_enum(dtype))
    if hasattr(x, "__onnx_value__"):
        return as_value(x.__onnx_value__(), b, like, dtype)
    if isinstance(x, (list, tuple)) and _holds_tensor(x):
        return _pack(x, b, dtype)
    if dtype is not None:
        return b.const(_host_array(x, dtype_enum(dtype)))
    if like is not None and like.dtype is not None and not isinstance(x, np.ndarray):
        array = np.asarray(x)
        if like.dtype in FLOAT_TYPES or array.dtype.kind in "iub":
            return b.const(np.asarray(x, dtype=np_dtype(like.dtype)))
    if like is not None and like.dtype in FLOAT_TYPES and isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return b.const(x.astype(np_dtype(like.dtype)))   # a float64 array meets a float32 tensor: Keras casts
    return b.const(_host_array(x, None))


def _holds_tensor(x: Any) -> bool:
    return any(isinstance(leaf, Value) or hasattr(leaf, "__onnx_value__") for leaf in _leaves(x))


def _pack(items: list | tuple, b: GraphBuilder, dtype: Any) -> Value:
    """A list of tensors (and numbers) as one tensor, stacked on a new first axis, as Keras's
    ``convert_to_tensor`` reads ``[t0, t1]``: an eager call receives each array of such a list (a replay
    buffer's ``[np.int64(2), 0, ...]``) as a graph value of its own."""
    parts = [_pack(i, b, dtype) if isinstance(i, (list, tuple)) else i for i in items]
    if dtype is not None:
        values = [as_value(p, b, dtype=dtype) for p in parts]
    else:
        values = promote(b, *parts)
        if values and values[0].dtype == onnx.TensorProto.DOUBLE:
            values = [cast_value(v, onnx.TensorProto.FLOAT) for v in values]   # float64 lists read as floatx
    axis = int_const(b, [0])
    return b.op("Concat", [b.op("Unsqueeze", [v, axis]) for v in values], axis=0)


def cast_value(x: Value, to: int) -> Value:
    if x.dtype == to:
        return x
    return x.builder.op("Cast", [x], to=to, shape=x.shape)


def _weak_kind(x: Any) -> type | None:
    """The Python number type of an operand that takes the type of the tensors it meets (Python and NumPy
    scalars, float64 arrays: onnxforge reads those in the float type they meet), else ``None``
    for a tensor or array, whose own type takes part in the promotion."""
    if isinstance(x, Value):
        return int if x.weak else None   # a dim of ops.shape stands for a Python int
    if isinstance(x, np.ndarray) and x.dtype != np.float64:
        return None
    if isinstance(x, (list, tuple)) and python_numbers(x):
        return None   # a list is a tensor of its own in Keras (int32, floatx or bool), not a weak number
    kind = np.asarray(x).dtype.kind
    return bool if kind == "b" else int if kind in "iu" else float if kind == "f" else None


def promote(b: GraphBuilder, *xs: Any) -> list[Value]:
    """Graph values of the one type Keras's promotion gives them (``keras.backend.result_type``): tensors and
    arrays by the promotion lattice (int32 + int64 -> int64, bool + int32 -> int32, int + float -> float),
    Python numbers taking the tensors' type unless their kind is above it (int32 * 0.5 -> floatx)."""
    values = [x.__onnx_value__() if hasattr(x, "__onnx_value__") else x for x in xs]
    kinds = [_weak_kind(v) for v in values]
    if all(k is not None for k in kinds):   # numbers only: the constants they become meet as tensors
        return promote(b, *[cast_value(v, onnx.TensorProto.INT32) if isinstance(v, Value) else as_value(v, b)
                            for v in values])
    strong = [v.dtype if isinstance(v, Value) else onnx_dtype(_host_array(v, None).dtype)
              for v, k in zip(values, kinds) if k is None]
    if None in strong:   # a value of unknown type: constants follow the first tensor, as they always did
        like = next(v for v in values if isinstance(v, Value))
        return [as_value(v, b, like) for v in values]
    from ..backend_config import floatx

    target = result_type(strong, weak=[k for k in kinds if k is not None], weak_float=dtype_enum(floatx()))
    return [cast_value(v, target) if isinstance(v, Value) else as_value(v, b, dtype=target) for v in values]


# ------------------------------------------------------------------------------------------ shapes
def int_const(b: GraphBuilder, values: Sequence[int]) -> Value:
    return b.const(np.asarray(list(values), np.int64))


def record_dim(v: Value, symbol: Any) -> None:
    """Remember that the scalar ``v`` measures the symbolic dim ``symbol`` (for later shape annotations)."""
    if symbol is not None:
        _dims.setdefault(v.builder, {})[v.name] = symbol


def _dim_symbol(v: Value) -> Any:
    return _dims.get(v.builder, {}).get(v.name)


def shape_tensor(b: GraphBuilder, shape: Any) -> tuple[Value, tuple | None]:
    """A 1-D int64 shape tensor from a tuple of ints and scalar ``Value``s (``ops.shape(x)[0]``), or from
    a 1-D int tensor; with the static shape annotation it implies (symbolic dims by name when known)."""
    if isinstance(shape, Value):
        return cast_value(shape, _INT64), None
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    dims = list(shape)
    if all(isinstance(d, (int, np.integer)) for d in dims):
        if any(int(d) < 0 for d in dims):
            raise ValueError(f"A shape must have non-negative dimensions. Received: shape={tuple(shape)}")
        return int_const(b, [int(d) for d in dims]), tuple(int(d) for d in dims)
    pieces, static = [], []
    for d in dims:
        if isinstance(d, (int, np.integer)):
            pieces.append(int_const(b, [int(d)]))
            static.append(int(d))
        elif isinstance(d, Value):
            d = cast_value(d, _INT64)
            pieces.append(b.op("Reshape", [d, int_const(b, [1])], shape=(1,)))
            static.append(_dim_symbol(d))
        elif isinstance(d, str) and symbol_size(b, d) is not None:
            # x.shape[0] inside a trace is the symbol "batch": its size is read from an input carrying it.
            pieces.append(b.op("Reshape", [symbol_size(b, d), int_const(b, [1])], shape=(1,)))
            static.append(d)
        else:
            raise TypeError(f"A shape holds ints and scalar tensors (such as ops.shape(x)[0]). Received: "
                            f"shape={tuple(shape)!r} with an entry of type {type(d).__name__}")
    return b.op("Concat", pieces, axis=0, shape=(len(dims),)), tuple(static)


def symbol_size(b: GraphBuilder, symbol: str) -> Value | None:
    """The int64 scalar size of the symbolic dim ``symbol`` (``"batch"``), read from the first graph input
    that carries it, or ``None`` when no input does."""
    for v in b.inputs:
        if v.shape is not None and symbol in v.shape:
            axis = v.shape.index(symbol)
            size = b.op("Gather", [b.op("Shape", [v]), b.const(np.asarray(axis, np.int64))], axis=0, dtype=_INT64,
                        shape=())
            record_dim(size, symbol)
            return size
    return None


def static_dims(shape: Any) -> tuple | None:
    """The static part of a shape argument (ints, or ``None`` for symbolic entries)."""
    if isinstance(shape, Value):
        return None
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) if isinstance(d, (int, np.integer)) else _dim_symbol(d) if isinstance(d, Value) else
                 d if isinstance(d, str) else None for d in shape)


def fill_const(b: GraphBuilder, shape: Any, value: float, dtype: int) -> Value:
    """``ConstantOfShape``: a tensor of ``shape`` filled with ``value``."""
    tensor, static = shape_tensor(b, shape)
    fill = protos.tensor_from_array(np.asarray([value], dtype=np_dtype(dtype)), "value")
    return b.op("ConstantOfShape", [tensor], value=fill, dtype=dtype, shape=static)


# ------------------------------------------------------------------------------------------ running
# The functional API's symbolic tensor (``KerasTensor``) and what records an op called on one as a node of the
# functional graph (``layers.operators.op_call``) belong to the layers, which sit above the ops: onnxforge.layers
# registers both here when imported.
_FUNCTIONAL: list[tuple[type, Callable[..., Any]]] = []


def register_functional_tensor(tensor_type: type, op_call: Callable[..., Any]) -> None:
    """Called by ``onnxforge.layers``: ops given a ``tensor_type`` argument become ``op_call(op, args, kwargs)``."""
    _FUNCTIONAL[:] = [(tensor_type, op_call)]


def is_functional_tensor(x: Any) -> bool:
    """Whether ``x`` is a functional-API symbolic tensor (a ``KerasTensor``)."""
    return bool(_FUNCTIONAL) and isinstance(x, _FUNCTIONAL[0][0])


def _has_keras_tensor(*args: Any) -> bool:
    return any(is_functional_tensor(leaf) for leaf in _leaves(args))


def _run_eagerly(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """Run ``fn`` on arrays now: compiled once per signature and run by onnxruntime (``onnxforge.eager``)."""
    from ..tracing import eager_executor

    return eager_executor().run_function(fn, args, kwargs)


def symbolic(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Make ``fn`` (written on graph values) an op: symbolic inside a graph, eager on numpy arrays.

    After emitting, every new value gets the shape ONNX infers for it: the gradient rules need ranks.
    """
    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Any:
        b = builder_of(args, kwargs)
        if b is None:
            if _has_keras_tensor(args, kwargs):
                # ``ops.expand_dims(keras.Input(...), -1)``: a node of the functional graph, as in Keras 3.
                return _FUNCTIONAL[0][1](op, args, kwargs)
            # Outside a trace a Variable is its current value (``ops.sum(layer.kernel)``), as in Keras; while an
            # eager GradientTape follows it, the program reads the Variable itself so the tape can link it.
            args, kwargs = _map(lambda x: x.numpy() if isinstance(x, Variable) and not tape_follows(x) else x,
                                (args, kwargs))
            if any(np.iscomplexobj(leaf) for leaf in _leaves((args, kwargs)) if isinstance(leaf, np.ndarray)):
                # onnxruntime has no complex kernels: two real runs, where that is exact
                from .complex_arrays import run_split

                return run_split(fn.__name__.lstrip("_"), fn, args, kwargs, _run_eagerly)
            return _run_eagerly(fn, args, kwargs)
        start = len(b.nodes)
        out = fn(*args, **kwargs)
        fill_shapes(b, start)
        return out

    # A public op may delegate to a private symbolic one after normalising its arguments (``svd`` to ``_svd``);
    # the functional API then records the private one, so a saved config names it: the mark lets
    # ``layers.operators.is_public_op`` resolve exactly these, and no other private name, from a file.
    op.graph_op = True
    return op

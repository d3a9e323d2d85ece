"""Python operators on functional-API tensors: ``inputs + attn``, ``x * 0.5``, ``-x``, ``x[:, 0]``, ``a @ b``.

Keras 3 records each operator applied to a ``KerasTensor`` as an operation node of the functional graph
(``keras.ops.Add``, ``keras.ops.GetItem``, ...). onnxforge records a ``TensorOperator`` layer node that
applies the same Python operator to the traced graph values, so the output spec (shape and dtype) is the
one the graph computes, with NumPy broadcasting, and the model traces, trains and serializes like any other
layer graph. Operators never autocast: like Keras's ops, they compute in their operands' types.

Example:
    >>> from onnxforge.layers import Input
    >>> x = Input(shape=(4, 6))
    >>> (x + 1.0).shape, (x[:, 0] * x[:, 1]).shape, (x @ Input(shape=(6, 2))).shape
    ((None, 4, 6), (None, 6), (None, 4, 2))
"""
from __future__ import annotations

__all__ = ["TensorOperator", "OpCall", "op_call", "is_public_op", "OPERATORS", "KERAS_OP_CLASSES", "encode_index", "decode_index",
           "keras_op_entry_to_operator", "operator_entry_to_keras_op"]

import operator
import sys
from typing import Any

import numpy as np
import onnx

from ..ops._util import register_functional_tensor
from .base import Layer, auto_name

def _as_bool(x: Any) -> Any:
    from ..graph import Value

    if isinstance(x, Value) and x.dtype != onnx.TensorProto.BOOL:
        return x.builder.op("Cast", [x], to=onnx.TensorProto.BOOL, shape=x.shape)
    return x if isinstance(x, Value) else np.asarray(x, dtype=bool)


def _logical(fn: Any) -> Any:
    # Keras's ``&``, ``|``, ``^``, ``~`` on symbolic tensors are logical ops: operands become bools.
    return lambda *args: fn(*[_as_bool(a) for a in args])


#: Keras's op names (``keras.ops.<name>``) -> the Python operator applied to graph values.
OPERATORS: dict[str, Any] = {
    "add": operator.add, "subtract": operator.sub, "multiply": operator.mul, "true_divide": operator.truediv,
    "floor_divide": operator.floordiv, "mod": operator.mod, "power": operator.pow, "matmul": operator.matmul,
    "negative": operator.neg, "absolute": operator.abs, "logical_not": _logical(operator.invert),
    "greater": operator.gt, "greater_equal": operator.ge, "less": operator.lt, "less_equal": operator.le,
    "logical_and": _logical(operator.and_), "logical_or": _logical(operator.or_),
    "logical_xor": _logical(operator.xor), "get_item": operator.getitem,
    "equal": operator.eq, "not_equal": operator.ne,
}
#: Keras's op classes (``keras.src.ops.numpy``, what Keras writes in functional configs) -> op names.
KERAS_OP_CLASSES: dict[str, str] = {
    "Add": "add", "Subtract": "subtract", "Multiply": "multiply", "TrueDivide": "true_divide",
    "Divide": "true_divide", "FloorDivide": "floor_divide", "Mod": "mod", "Power": "power", "Matmul": "matmul",
    "Negative": "negative", "Absolute": "absolute", "LogicalNot": "logical_not", "Greater": "greater",
    "GreaterEqual": "greater_equal", "Less": "less", "LessEqual": "less_equal", "LogicalAnd": "logical_and",
    "LogicalOr": "logical_or", "LogicalXor": "logical_xor", "GetItem": "get_item",
    "Equal": "equal", "NotEqual": "not_equal",
}
_OP_TO_KERAS = {op: cls for cls, op in KERAS_OP_CLASSES.items() if cls != "Divide"}


def encode_index(key: Any) -> Any:
    """An index (ints, slices, ``...``, ``None``, int lists) in Keras's JSON form (``__slice__``, ...)."""
    if isinstance(key, tuple):
        return {"class_name": "__tuple__", "config": {"value": [encode_index(k) for k in key]}}
    if isinstance(key, slice):
        return {"class_name": "__slice__", "config": {"start": encode_index(key.start),
                                                      "stop": encode_index(key.stop),
                                                      "step": encode_index(key.step)}}
    if key is Ellipsis:
        return {"class_name": "__ellipsis__", "config": {}}
    if isinstance(key, (np.integer, np.ndarray)):
        return key.tolist()
    if key is None or isinstance(key, (int, list)):
        return key
    raise TypeError(f"Only integers, slices, ellipsis, None and integer lists can index a functional-API "
                    f"tensor. Received: {key!r} of type {type(key).__name__}")


def decode_index(config: Any) -> Any:
    """The inverse of ``encode_index``."""
    if isinstance(config, dict):
        kind, inner = config.get("class_name"), config.get("config") or {}
        if kind == "__tuple__":
            return tuple(decode_index(k) for k in inner["value"])
        if kind == "__slice__":
            return slice(decode_index(inner.get("start")), decode_index(inner.get("stop")),
                         decode_index(inner.get("step")))
        if kind == "__ellipsis__":
            return Ellipsis
        raise ValueError(f"Unknown index entry in a TensorOperator config: {config!r}")
    return config


_SLOT = {"class_name": "__tensor__", "config": {}}


def _encode_operand(x: Any) -> Any:
    if isinstance(x, (np.ndarray, np.generic)):
        return {"class_name": "__numpy__", "config": {"value": np.asarray(x).tolist(), "dtype": str(x.dtype)}}
    if x is None or isinstance(x, (bool, int, float)):
        return x
    raise TypeError(f"A functional-API tensor can be combined with tensors, Python numbers and NumPy arrays. "
                    f"Received: {x!r} of type {type(x).__name__}")


def _decode_operand(x: Any) -> Any:
    if isinstance(x, dict) and x.get("class_name") == "__numpy__":
        return np.asarray(x["config"]["value"], dtype=x["config"]["dtype"])
    return x


class TensorOperator(Layer):
    """One Python operator applied to symbolic tensors in a functional model.

    The node's arguments are its tensors only; constants (``2.0`` in ``2.0 * x``, NumPy arrays) live in the
    layer's config, so the model's config stays JSON.

    Args:
        op: the Keras op name, a key of ``OPERATORS`` (``"add"``, ``"get_item"``, ...).
        operands: the operator's arguments in order, a ``{"class_name": "__tensor__"}`` slot where a call
            argument goes (default: every argument is a call argument).
        index: for ``"get_item"``, the index in Keras's JSON form (see ``encode_index``).
        **kwargs: base layer arguments (``name``).
    """

    _autocast = False       # an operator computes in its operands' types (Keras ops do not autocast)
    supports_masking = False   # Keras 3: `x * 2` on a masked KerasTensor has no mask

    def __init__(self, op: str, operands: list | None = None, index: Any = None, **kwargs: Any):
        if op not in OPERATORS:
            raise ValueError(f"Unknown tensor operator {op!r}. Expected one of {sorted(OPERATORS)}. "
                             f"Received: op={op!r}")
        kwargs.setdefault("name", auto_name(op))
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.op = op
        self.operands = operands
        self.index = index
        self._key = decode_index(index) if op == "get_item" else None

    def call(self, *args: Any) -> Any:
        if self.operands is not None:
            tensors = iter(args)
            args = tuple(next(tensors) if o == _SLOT else _decode_operand(o) for o in self.operands)
        if self.op == "get_item":
            return args[0][self._key]
        return OPERATORS[self.op](*args)

    def get_config(self) -> dict:
        config = {**super().get_config(), "op": self.op}
        if self.operands is not None:
            config["operands"] = self.operands
        if self.op == "get_item":
            config["index"] = self.index
        return config


def apply(op: str, *args: Any) -> Any:
    """``op`` applied to ``args`` (at least one a KerasTensor) as a new ``TensorOperator`` node."""
    from .keras_tensor import KerasTensor

    if all(isinstance(a, KerasTensor) for a in args):
        return TensorOperator(op)(*args)
    operands = [_SLOT if isinstance(a, KerasTensor) else _encode_operand(a) for a in args]
    return TensorOperator(op, operands=operands)(*[a for a in args if isinstance(a, KerasTensor)])


def get_item(x: Any, key: Any) -> Any:
    return TensorOperator("get_item", index=encode_index(key))(x)


# ------------------------------------------------------------------------------------------ keras.ops calls
def _encode_arg(x: Any) -> Any:
    """A non-tensor argument of an op call in JSON form (tuples and NumPy arrays tagged)."""
    if isinstance(x, tuple):
        return {"class_name": "__tuple__", "config": {"value": [_encode_arg(i) for i in x]}}
    if isinstance(x, list):
        return [_encode_arg(i) for i in x]
    if isinstance(x, dict):
        if x.get("class_name") == "__tensor__":
            return x
        return {"class_name": "__dict__", "config": {k: _encode_arg(v) for k, v in x.items()}}
    if isinstance(x, np.generic):
        return x.item()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, np.ndarray):
        return _encode_operand(x)
    dtype_name = getattr(x, "name", None)
    if isinstance(dtype_name, str) and isinstance(x, np.dtype):
        return dtype_name
    raise TypeError(f"A keras.ops call on functional-API tensors takes tensors, Python numbers, strings, "
                    f"tuples, lists and NumPy arrays. Received: {x!r} of type {type(x).__name__}")


def _decode_arg(x: Any, tensors: Any) -> Any:
    if isinstance(x, list):
        return [_decode_arg(i, tensors) for i in x]
    if isinstance(x, dict):
        kind = x.get("class_name")
        if kind == "__tensor__":
            return next(tensors)
        if kind == "__tuple__":
            return tuple(_decode_arg(i, tensors) for i in x["config"]["value"])
        if kind == "__dict__":
            return {k: _decode_arg(v, tensors) for k, v in x["config"].items()}
        if kind == "__numpy__":
            return _decode_operand(x)
    return x


def is_public_op(fn: Any) -> bool:
    """Whether ``fn`` is an op of ``onnxforge.ops`` (or an activation) a saved config may name: a function its
    defining module lists in ``__all__``, or a graph op (``ops._util.symbolic``) defined in a public op module
    (``linalg_spectral._svd``, which ``svd`` records). A file's config names ops by path, and a path may reach
    any attribute of those modules, so other helpers (``_util.register_functional_tensor``, which rewires
    every later functional call) and names the modules import must not resolve."""
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__name__", None) or ""
    if isinstance(fn, type) or not callable(fn):
        return False
    if not (module.startswith("onnxforge.ops.") or module in tuple(f"onnxforge.{m}" for m in _TOP_LEVEL_OP_MODULES)):
        return False
    if any(part.startswith("_") for part in module.split(".")):
        return False
    if name.startswith("_"):
        return getattr(fn, "graph_op", False) is True and getattr(sys.modules.get(module), name, None) is fn
    return name in getattr(sys.modules.get(module), "__all__", ())


def _resolve_op(path: str) -> Any:
    """``"numpy.expand_dims"`` (under ``onnxforge.ops``) or ``"activations.softmax"`` (under ``onnxforge``);
    only public ops (see :func:`is_public_op`): the path comes from a file."""
    import importlib

    module, _, name = str(path).rpartition(".")
    unknown = ValueError(f"Unknown keras.ops function {path!r} in an OpCall config.")
    # Module names never start with "_"; a private name must be a graph op, which is_public_op checks.
    if not isinstance(path, str) or not all(part.isidentifier() and not part.startswith("__")
                                            for part in path.split(".")) \
            or any(part.startswith("_") for part in module.split(".")):
        raise unknown
    package = "onnxforge" if module in _TOP_LEVEL_OP_MODULES else "onnxforge.ops"
    try:
        fn = getattr(importlib.import_module(f"{package}.{module}" if module else package), name)
    except (ImportError, AttributeError):
        raise unknown from None
    if not is_public_op(fn):
        raise unknown
    return fn


# Modules outside onnxforge.ops whose functions also become OpCall nodes on functional-API tensors.
_TOP_LEVEL_OP_MODULES = ("activations",)


class OpCall(Layer):
    """One ``keras.ops`` function applied to functional-API tensors (``ops.expand_dims(inputs, -1)``).

    Keras 3 records such a call as an operation node of the functional graph; onnxforge records this layer,
    whose call applies the same op to the traced graph values. The tensors are the node's arguments; every
    other argument (axes, shapes, numbers) is kept, in JSON form, in the config.

    Args:
        op: the op's path under ``onnxforge.ops`` (``"numpy.expand_dims"``, ``"nn.softmax"``).
        args: the positional arguments, a ``{"class_name": "__tensor__"}`` slot where a tensor goes.
        kwargs: the keyword arguments, likewise.
        **kw: base layer arguments (``name``).
    """

    _autocast = False     # keras.ops compute in their operands' types
    supports_masking = False

    def __init__(self, op: str, args: list | None = None, kwargs: dict | None = None, **kw: Any):
        self._fn = _resolve_op(op)
        kw.setdefault("name", auto_name(op.rpartition(".")[2]))
        kw.setdefault("autocast", False)
        super().__init__(**kw)
        self.op, self.op_args, self.op_kwargs = op, list(args or []), dict(kwargs or {})

    def call(self, *tensors: Any) -> Any:
        it = iter(tensors)
        args = _decode_arg(self.op_args, it)
        kwargs = {k: _decode_arg(v, it) for k, v in self.op_kwargs.items()}
        return self._fn(*args, **kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "op": self.op, "args": self.op_args, "kwargs": self.op_kwargs}


def op_path(fn: Any) -> str:
    """The name an ``OpCall`` config gives ``fn`` (``"numpy.expand_dims"``; see ``_resolve_op``)."""
    module = fn.__module__.rpartition(".")[2] if fn.__module__.startswith("onnxforge.ops.") else ""
    # A module split out of another records its ops under the old name, so that saved configs keep
    # loading in older versions (``numpy_shapes.reshape`` is written ``numpy.reshape``).
    module = getattr(sys.modules.get(fn.__module__), "OPCALL_MODULE", module)
    if fn.__module__ in tuple(f"onnxforge.{m}" for m in _TOP_LEVEL_OP_MODULES):
        module = fn.__module__.rpartition(".")[2]
    return f"{module}.{fn.__name__}" if module else fn.__name__


def op_call(fn: Any, args: tuple, kwargs: dict) -> Any:
    """``fn(*args, **kwargs)`` with KerasTensors among the arguments, as a new ``OpCall`` node."""
    from .keras_tensor import KerasTensor, flatten

    path = op_path(fn)
    tensors: list[KerasTensor] = []

    def slot(x: Any) -> Any:
        if isinstance(x, KerasTensor):
            tensors.append(x)
            return dict(_SLOT)
        if isinstance(x, (list, tuple)):
            items = [slot(i) for i in x]
            return items if isinstance(x, list) else tuple(items)
        if isinstance(x, dict):
            return {k: slot(v) for k, v in x.items()}
        return x

    enc_args = _encode_arg([slot(a) for a in args])
    enc_kwargs = {k: _encode_arg(slot(v)) for k, v in kwargs.items()}
    assert len(tensors) == len([t for t in flatten((args, kwargs)) if isinstance(t, KerasTensor)])
    return OpCall(path, enc_args, enc_kwargs)(*tensors)


# ------------------------------------------------------------------------------------------ Keras configs
def _is_tensor_config(x: Any) -> bool:
    return isinstance(x, dict) and x.get("class_name") == "__keras_tensor__"


def _keras_key_to_index(key: Any) -> Any:
    """Keras's serialized GetItem key (a tuple is written as a list) as ``encode_index`` data."""
    if isinstance(key, list):
        return {"class_name": "__tuple__", "config": {"value": [_keras_key_to_index(k) for k in key]}}
    return key


def _index_to_keras_key(index: Any) -> Any:
    if isinstance(index, dict) and index.get("class_name") == "__tuple__":
        return [_index_to_keras_key(k) for k in index["config"]["value"]]
    return index


def keras_op_entry_to_operator(entry: dict) -> str | None:
    """Turn, in place, a Keras op node of a functional config (``{"module": "keras.src.ops.numpy",
    "class_name": "Add", ...}``) into the ``TensorOperator`` entry onnxforge reads; the problem as text if
    the op has no counterpart (``None`` when converted)."""
    op = KERAS_OP_CLASSES.get(entry.get("class_name", ""))
    config = entry.get("config") or {}
    if op is None:
        return f"op {config.get('name', '?')!r}: Keras op {entry.get('class_name')} has no onnxforge counterpart"
    nodes = entry.get("inbound_nodes") or []
    operands = None
    index = None
    for node in nodes:
        args = list(node.get("args") or [])
        if op == "get_item":
            index = _keras_key_to_index(args[1]) if len(args) > 1 else node.get("kwargs", {}).get("key")
            node["args"] = args[:1]
        else:
            slots = [_SLOT if _is_tensor_config(a) else a for a in args]
            if any(s != _SLOT for s in slots):
                operands = slots
            node["args"] = [a for a in args if _is_tensor_config(a)]
        node["kwargs"] = {}
    entry.update(module="keras.layers", class_name="TensorOperator", registered_name=None)
    entry["config"] = {"name": config.get("name") or entry.get("name"), "op": op,
                       **({"operands": operands} if operands is not None else {}),
                       **({"index": index} if op == "get_item" else {})}
    return None


def operator_entry_to_keras_op(entry: dict) -> None:
    """The inverse: a ``TensorOperator`` entry written as the Keras op node Keras 3 reads, in place."""
    config = entry.get("config") or {}
    op = config.get("op")
    cls = _OP_TO_KERAS.get(op)
    if cls is None:
        return
    for node in entry.get("inbound_nodes") or []:
        tensors = iter(node.get("args") or [])
        if op == "get_item":
            node["args"] = [next(tensors), _index_to_keras_key(config.get("index"))]
        elif config.get("operands") is not None:
            node["args"] = [next(tensors) if o == _SLOT else o for o in config["operands"]]
    entry.update(module="keras.src.ops.numpy", class_name=cls, registered_name=cls)
    entry["config"] = {"name": config.get("name")}
    entry.pop("build_config", None)


def _register() -> None:
    from .keras_tensor import KerasTensor

    register_functional_tensor(KerasTensor, op_call)


_register()

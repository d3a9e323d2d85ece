"""Symbolic tensors of the functional API and the nodes that connect layers into a graph.

A ``KerasTensor`` carries only a static shape (``None`` for the batch or an unknown dim), a dtype name and
its history: the layer, the node index and the output index that produced it. Calling a layer on
KerasTensors records a ``Node``; a ``Model`` is the graph of nodes between its inputs and outputs. No ONNX
is emitted here: that happens when a model is traced (see ``onnxforge.tracing``).
"""
from __future__ import annotations

__all__ = ["KerasTensor", "Node", "flatten", "map_structure", "is_shape", "standardize_dtype"]

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..graph.size_limits import check_tensor
from ..graph.element_type import dtype_name
from ..backend_config import floatx

if TYPE_CHECKING:
    from .base import Layer

_tensor_ids = itertools.count()


def standardize_dtype(dtype: Any) -> str:
    """A dtype as its numpy name (``"float32"``); ``None`` means ``floatx()`` like Keras."""
    if dtype is None:
        return floatx()
    if isinstance(dtype, str) and dtype in ("string", "str") or dtype is str or dtype is bytes or \
            (isinstance(dtype, np.dtype) and dtype.kind in "OUS"):
        return "string"  # text tensors (ONNX STRING); numpy holds them as str objects
    if isinstance(dtype, int) and not isinstance(dtype, bool):  # an ONNX element type
        return dtype_name(dtype)
    if dtype == "bfloat16" or getattr(dtype, "name", None) == "bfloat16":
        return "bfloat16"
    return np.dtype(dtype).name


# ----------------------------------------------------------------- structures
def flatten(structure: Any) -> list:
    """The leaves of nested lists / tuples / dicts (dict values in key order), left to right."""
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    if isinstance(structure, dict):
        return [leaf for key in sorted(structure) for leaf in flatten(structure[key])]
    return [structure]


def map_structure(fn: Callable[[Any], Any], structure: Any) -> Any:
    """``fn`` applied to every leaf, keeping lists, tuples and dicts."""
    if isinstance(structure, list):
        return [map_structure(fn, s) for s in structure]
    if isinstance(structure, tuple):
        items = [map_structure(fn, s) for s in structure]
        # A namedtuple keeps its class (tf.image.combined_non_max_suppression's result), as Keras's tree does.
        return type(structure)(*items) if hasattr(structure, "_fields") else tuple(items)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    return fn(structure)


def is_shape(obj: Any) -> bool:
    """Whether ``obj`` is one shape (a tuple/list of ints and ``None``) rather than a list of shapes."""
    return isinstance(obj, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer)) for d in obj)


# ----------------------------------------------------------------- tensors
def _is_constant(x: Any) -> bool:
    """A number or an array, which operators on KerasTensors keep as constants."""
    return isinstance(x, (bool, int, float, np.generic, np.ndarray))


class KerasHistory(NamedTuple):
    layer: Any
    node_index: int
    tensor_index: int


def _itemsize(dtype: Any) -> int:
    try:
        return int(np.dtype(dtype).itemsize)
    except TypeError:      # strings, bfloat16 names numpy lacks
        return 4


class KerasTensor:
    """A symbolic tensor of the functional API: a shape, a dtype and where it came from.

    Example:
        >>> from onnxforge.layers import Input, Dense
        >>> x = Input(shape=(3,))
        >>> y = Dense(4)(x)
        >>> y.shape, y.dtype
        ((None, 4), 'float32')
    """

    def __init__(self, shape: Any, dtype: Any = None, name: str | None = None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = standardize_dtype(dtype)
        uid = next(_tensor_ids)
        self.name = name or ("keras_tensor" if uid == 0 else f"keras_tensor_{uid}")
        self._keras_history: KerasHistory | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __bool__(self) -> bool:
        raise TypeError("A symbolic KerasTensor has no truth value: it only describes a shape and dtype.")

    # Python operators record a TensorOperator node (Keras 3 records an op node), with NumPy broadcasting
    # and constants: ``inputs + attn``, ``x * 0.5``, ``1.0 - x``, ``x[:, 0]``, ``a @ b``.
    __array_ufunc__ = None  # ``ndarray + KerasTensor`` defers to __radd__ instead of looping in numpy

    def _op(self, op: str, *args: Any) -> KerasTensor:
        from .operators import apply

        return apply(op, *args)

    def __add__(self, o: Any) -> KerasTensor:
        return self._op("add", self, o)

    def __radd__(self, o: Any) -> KerasTensor:
        return self._op("add", o, self)

    def __sub__(self, o: Any) -> KerasTensor:
        return self._op("subtract", self, o)

    def __rsub__(self, o: Any) -> KerasTensor:
        return self._op("subtract", o, self)

    def __mul__(self, o: Any) -> KerasTensor:
        return self._op("multiply", self, o)

    def __rmul__(self, o: Any) -> KerasTensor:
        return self._op("multiply", o, self)

    def __truediv__(self, o: Any) -> KerasTensor:
        return self._op("true_divide", self, o)

    def __rtruediv__(self, o: Any) -> KerasTensor:
        return self._op("true_divide", o, self)

    def __floordiv__(self, o: Any) -> KerasTensor:
        return self._op("floor_divide", self, o)

    def __rfloordiv__(self, o: Any) -> KerasTensor:
        return self._op("floor_divide", o, self)

    def __mod__(self, o: Any) -> KerasTensor:
        return self._op("mod", self, o)

    def __rmod__(self, o: Any) -> KerasTensor:
        return self._op("mod", o, self)

    def __pow__(self, o: Any) -> KerasTensor:
        return self._op("power", self, o)

    def __rpow__(self, o: Any) -> KerasTensor:
        return self._op("power", o, self)

    def __matmul__(self, o: Any) -> KerasTensor:
        return self._op("matmul", self, o)

    def __rmatmul__(self, o: Any) -> KerasTensor:
        return self._op("matmul", o, self)

    def __neg__(self) -> KerasTensor:
        return self._op("negative", self)

    def __pos__(self) -> KerasTensor:
        return self

    def __abs__(self) -> KerasTensor:
        return self._op("absolute", self)

    def __invert__(self) -> KerasTensor:
        return self._op("logical_not", self)

    def __and__(self, o: Any) -> KerasTensor:
        return self._op("logical_and", self, o)

    def __rand__(self, o: Any) -> KerasTensor:
        return self._op("logical_and", o, self)

    def __or__(self, o: Any) -> KerasTensor:
        return self._op("logical_or", self, o)

    def __ror__(self, o: Any) -> KerasTensor:
        return self._op("logical_or", o, self)

    def __xor__(self, o: Any) -> KerasTensor:
        return self._op("logical_xor", self, o)

    def __rxor__(self, o: Any) -> KerasTensor:
        return self._op("logical_xor", o, self)

    # ``!=`` records a not_equal node, as Keras 3's KerasTensor does. ``==`` between two KerasTensors stays
    # identity, as in Keras 3 (models look tensors up in lists while they are built); ``==`` with a number or
    # an array records an equal node (Keras 3 answers ``False`` there, which no one writing
    # ``inputs == 0`` means). Hashing stays identity either way.
    __hash__ = object.__hash__

    def __eq__(self, o: Any) -> Any:
        return self._op("equal", self, o) if _is_constant(o) else NotImplemented

    def __ne__(self, o: Any) -> Any:
        return self._op("not_equal", self, o) if isinstance(o, KerasTensor) or _is_constant(o) else NotImplemented

    @property
    def T(self) -> KerasTensor:  # noqa: N802 - the NumPy name
        """The transpose with all axes reversed (``ops.transpose``)."""
        from ..ops import transpose

        return transpose(self)

    def __gt__(self, o: Any) -> KerasTensor:
        return self._op("greater", self, o)

    def __ge__(self, o: Any) -> KerasTensor:
        return self._op("greater_equal", self, o)

    def __lt__(self, o: Any) -> KerasTensor:
        return self._op("less", self, o)

    def __le__(self, o: Any) -> KerasTensor:
        return self._op("less_equal", self, o)

    def __getitem__(self, key: Any) -> KerasTensor:
        from .operators import get_item

        return get_item(self, key)

    def __iter__(self) -> Any:
        if not self.shape or self.shape[0] is None:
            raise TypeError(f"Cannot iterate over symbolic tensor {self.name} of shape {self.shape}: its first "
                            "dimension is not known. Index it (x[:, 0]) or use ops.unstack with a known size.")
        return iter([self[i] for i in range(self.shape[0])])


def _own_containers(structure: Any) -> Any:
    """``structure`` with its lists, dicts and plain tuples rebuilt (leaves shared); other values as they are."""
    if isinstance(structure, list):
        return [_own_containers(s) for s in structure]
    if isinstance(structure, dict):
        return type(structure)((k, _own_containers(v)) for k, v in structure.items())
    if type(structure) is tuple:
        return tuple(_own_containers(s) for s in structure)
    return structure


class Node:
    """One call of a layer on symbolic tensors: its arguments and the tensors it produced.

    ``args`` / ``kwargs`` keep the call's structure (a merge layer gets a list); KerasTensors among them are
    the node's inputs.
    """

    def __init__(self, layer: Layer, args: tuple, kwargs: dict, outputs: Any):
        self.layer = layer
        # The node keeps containers of its own: a program that edits the list a call returned (keras.io's FCN
        # does ``x[-1] = dense_convs(x[-1])`` on a sub-model's outputs) must not rewire the recorded graph.
        self.args = _own_containers(args)
        self.kwargs = _own_containers(kwargs)
        self.outputs = _own_containers(outputs)
        self.input_tensors = [t for t in flatten((args, kwargs)) if isinstance(t, KerasTensor)]
        self.output_tensors = [t for t in flatten(outputs) if isinstance(t, KerasTensor)]
        for t in self.output_tensors:    # a loaded config's sizes (RepeatVector(10**9)) stop here, before a run
            check_tensor(t.shape, _itemsize(t.dtype), f"layer {getattr(layer, 'name', '?')!r}'s output")
        self.is_input = not self.input_tensors
        index = len(layer._inbound_nodes)
        layer._inbound_nodes.append(self)
        for k, t in enumerate(self.output_tensors):
            t._keras_history = KerasHistory(layer, index, k)

    @property
    def parent_nodes(self) -> list[Node]:
        parents = []
        for t in self.input_tensors:
            layer, node_index, _ = t._keras_history
            parents.append(layer._inbound_nodes[node_index])
        return parents

    def __repr__(self) -> str:
        return f"<Node {self.layer.name} inputs={[t.name for t in self.input_tensors]}>"

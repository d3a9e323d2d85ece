"""``tf.function``'s object and ``get_concrete_function``: one traced signature as a callable.

``Function`` is the compiled function ``tf.function`` returns (``trainer.compiled_function``) with
TensorFlow's introspection: ``get_concrete_function(*args)`` traces for tensors, ``tf.TensorSpec``s (a
``None`` dim is unknown to the traced code and any size fits it) and Python values, and returns a
``ConcreteFunction``, which runs that trace only: it takes the tensor arguments (positionally or by name;
the Python values are part of the trace) and refuses a tensor of another dtype or shape with
``tf.errors.InvalidArgumentError``. Its ``graph`` is the traced ONNX graph (``as_graph_def().node`` lists
nodes with ``name``, ``input`` and ``op_type``). A later call of the ``Function`` whose tensors fit a spec
trace reuses it, as TensorFlow does. ``experimental_get_tracing_count()`` counts traces.

Example:
    >>> import numpy as np, onnxforge as tf
    >>> double = tf.function(lambda a: a + a)
    >>> c = double.get_concrete_function(tf.TensorSpec(shape=[None], dtype=tf.float32))
    >>> c(np.array([1.0, 2.0], np.float32)).tolist(), c.structured_input_signature
    ([2.0, 4.0], ((TensorSpec(shape=(None,), dtype=tf.float32, name='a'),), {}))
"""
from __future__ import annotations

__all__ = ["Function", "ConcreteFunction"]

import inspect
from typing import Any

import numpy as np
import onnx

from ..eager_tensor import is_text
from ..graph import np_dtype
from ..layers.host_inputs import host_arrays
from ..layers.keras_tensor import map_structure
from ..trainer.compiled_function import (CompiledFunction, _fits, _function_input, _is_array, _is_spec, _leaves,
                                         _signature)
from ..utils.tensor_spec import TensorSpec
from ..trace_state import active_trace
from .autograph import convert
from .errors import InvalidArgumentError


class Function(CompiledFunction):
    """``tf.function(fn)``: see the module docstring and ``trainer.compiled_function``. With
    ``reduce_retracing`` (``experimental_relax_shapes``) an array of a new shape whose rank and dtype match an
    earlier trace's is traced once with the differing dims unknown, and that trace serves every such shape."""

    reduce_retracing = False
    #: Whether Python ``if`` / ``while`` / ``for`` on tensors are converted (``autograph``; tf.function's
    #: ``autograph=`` argument).
    autograph = True
    _converted: Any = None

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        bound = super().__get__(obj, objtype)
        if bound is not self:
            bound.reduce_retracing, bound.autograph = self.reduce_retracing, self.autograph
        return bound

    def _autograph_function(self) -> Any:
        if self._converted is None:
            self._converted = convert(self.python_function) if self.autograph else self.python_function
        return self._converted

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if active_trace() is not None and not self._run_eagerly():   # inlined in another trace
            return self._autograph_function()(*args, **kwargs)
        return super().__call__(*args, **kwargs)

    def _trace(self, tree: Any) -> Any:
        original = self.python_function
        self.python_function = self._autograph_function()
        try:
            return super()._trace(tree)
        finally:
            self.python_function = original

    def trace_arguments(self, tree: Any) -> tuple[Any, Any]:
        if self.reduce_retracing and not any(_is_spec(x) for x in _leaves(tree)):
            relaxed = self._relaxed(tree)
            if relaxed is not None:
                return super().trace_arguments(relaxed)
        return super().trace_arguments(tree)

    def _relaxed(self, tree: Any) -> Any:
        """``tree`` with its arrays as specs that also cover an earlier trace's arrays, when they differ only in
        dims (TensorFlow's ``reduce_retracing``); ``None`` when the tree has a trace or no such neighbour."""
        key = _signature(tree)
        if key in self._traces or self._spec_trace(tree) is not None:
            return None
        leaves = _leaves(tree)
        for old in self._traces:
            if old[0] != key[0] or len(old[1]) != len(leaves):
                continue
            dims = []
            for was, now, x in zip(old[1], key[1], leaves):
                if was == now:
                    dims.append(None)
                elif was[0] == now[0] == "array" and was[2] == now[2] and len(was[1]) == len(now[1]):
                    dims.append(tuple(a if a == b else None for a, b in zip(was[1], now[1])))
                else:
                    break
            else:
                it = iter(dims)
                return map_structure(lambda x: _relax_leaf(x, next(it)), tree)
        return None

    def get_concrete_function(self, *args: Any, **kwargs: Any) -> ConcreteFunction:
        """The trace for these arguments (tensors, ``tf.TensorSpec``s, Python values), made now if needed."""
        _, tree = self._arguments(args, kwargs)
        traced, tree = self.trace_arguments(tree)
        return ConcreteFunction(self, traced, tree)

    def experimental_get_tracing_count(self) -> int:
        """How many times the Python function has been traced."""
        return self.tracing_count


def _relax_leaf(x: Any, dims: Any) -> Any:
    if dims is None:
        return x
    return TensorSpec(dims, "string" if x.dtype.kind in "OUS" else x.dtype.name)


def _parameters(fn: Any) -> list[str]:
    try:
        return [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return []


def _spec_of(x: Any, name: str | None) -> Any:
    if _is_spec(x):
        return TensorSpec(x.shape, x.dtype, name=name)
    if _is_array(x):
        return TensorSpec(x.shape, "string" if x.dtype.kind in "OUS" else x.dtype.name, name=name)
    return x


class FunctionGraph:
    """``ConcreteFunction.graph``: the traced ONNX graph, with the TensorFlow ``FuncGraph`` methods tutorials
    print it with."""

    def __init__(self, model: onnx.ModelProto):
        self._model = model

    def as_graph_def(self) -> onnx.GraphProto:
        """The ONNX graph (its ``node`` list: each with ``name``, ``input``, ``output`` and ``op_type``)."""
        return self._model.graph

    def get_operations(self) -> list[onnx.NodeProto]:
        return list(self._model.graph.node)

    @property
    def inputs(self) -> list[str]:
        return [i.name for i in self._model.graph.input]

    @property
    def outputs(self) -> list[str]:
        return [o.name for o in self._model.graph.output]


class ConcreteFunction:
    """One trace of a ``Function`` (see the module docstring)."""

    def __init__(self, owner: Function, traced: Any, tree: Any):
        self._owner, self._traced, self._tree = owner, traced, tree
        names = _parameters(owner.python_function)
        args, kwargs = tree
        self._slots: list[tuple[Any, str]] = []   # (position or keyword, parameter name) of each tensor argument
        for i, a in enumerate(args):
            if any(_is_array(x) or _is_spec(x) for x in _leaves(a)):
                self._slots.append((i, names[i] if i < len(names) else f"arg_{i}"))
        for k, a in kwargs.items():
            if any(_is_array(x) or _is_spec(x) for x in _leaves(a)):
                self._slots.append((k, k))

    @property
    def structured_input_signature(self) -> tuple[tuple, dict]:
        """The arguments traced: a ``TensorSpec`` named after its parameter for each tensor, Python values as
        given."""
        names = dict((slot, name) for slot, name in self._slots)
        args, kwargs = self._tree
        return (tuple(map_structure(lambda x, n=names.get(i): _spec_of(x, n), a) for i, a in enumerate(args)),
                {k: map_structure(lambda x, n=k: _spec_of(x, n), a) for k, a in kwargs.items()})

    @property
    def structured_outputs(self) -> Any:
        """What the function returns, each tensor as a ``TensorSpec`` of the traced output."""
        outs = {o.name: o for o in self._traced.step.runner.model.graph.output}
        names = self._traced.step.runner.outputs

        def spec(slot: Any) -> Any:
            if slot.kind != "output":
                return slot.payload
            t = outs[names[slot.payload]].type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim] \
                if t.HasField("shape") else None
            return TensorSpec(dims, np.dtype(np_dtype(t.elem_type)).name)
        return map_structure(spec, self._traced.template)

    @property
    def graph(self) -> FunctionGraph:
        return FunctionGraph(self._traced.step.runner.model)

    @property
    def name(self) -> str:
        return getattr(self._owner.python_function, "__name__", "function")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) > len(self._slots):
            raise TypeError(f"ConcreteFunction {self.name}: takes {len(self._slots)} tensor arguments "
                            f"({[n for _, n in self._slots]}). Received {len(args)} positional arguments")
        given = list(args)
        for _, name in self._slots[len(args):]:
            if name not in kwargs:
                raise TypeError(f"ConcreteFunction {self.name}: missing the tensor argument {name!r}")
            given.append(kwargs.pop(name))
        if kwargs:
            raise TypeError(f"ConcreteFunction {self.name}: unexpected arguments {sorted(kwargs)}")
        arrays = []
        for (slot, name), value in zip(self._slots, given):
            want = self._tree[0][slot] if isinstance(slot, int) else self._tree[1][slot]
            got = _leaves(map_structure(lambda x: np.asarray(x) if isinstance(x, np.generic) else x,
                                        host_arrays(value)))
            pattern = _leaves(want)
            if len(got) != len(pattern):
                raise TypeError(f"ConcreteFunction {self.name}: argument {name!r} has {len(got)} tensors, the "
                                f"trace {len(pattern)}")
            for p, x in zip(pattern, got):
                spec = p if _is_spec(p) else _spec_of(p, None)
                x = np.asarray(x)
                if spec.numpy_dtype().kind == "O" and is_text(x):   # a string spec: text, as ONNX strings
                    x = np.array([t.decode() if isinstance(t, bytes) else str(t) for t in x.flat],
                                 object).reshape(x.shape)
                    fits = spec.shape is None or (len(spec.shape) == x.ndim and all(
                        d is None or d == n for d, n in zip(spec.shape, x.shape)))
                else:
                    x = _function_input(x)   # the conversions a call of the Function makes
                    fits = _fits(spec, x)
                if not fits:
                    raise InvalidArgumentError(
                        f"ConcreteFunction {self.name}: argument {name!r} was traced for {spec!r}. Received a "
                        f"{x.dtype.name} tensor of shape {x.shape}")
                arrays.append(x)
        return self._owner.run_traced(self._traced, arrays)

    def pretty_printed_signature(self) -> str:
        args, kwargs = self.structured_input_signature
        return f"{self.name}({', '.join(repr(a) for a in args)}{', ' if kwargs and args else ''}" \
               f"{', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"

    def __repr__(self) -> str:
        return f"<ConcreteFunction {self.pretty_printed_signature()}>"

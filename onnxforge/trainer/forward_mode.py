"""``keras.ops.jvp`` (registered into ``ops.forward_mode``): a Jacobian-vector product by two reverse passes.

With ``out = fun(*primals)`` recorded on an inner tape, ``g(u) = J^T u`` is the inner gradient seeded with
``u``; an outer tape watching ``u`` then gives ``d <g(u), t> / du = J t``. The seeds ``u`` are zeros made by a
node (``ConstantOfShape`` of the output's shape), not a constant, so the outer tape can differentiate with
respect to them; ``J t`` does not depend on their value. On arrays the whole computation is one compiled
function (``tf.function``), traced once per call; inside a trace it emits its ops in place.

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> x, t = np.array([1.0, 2.0], np.float32), np.array([1.0, 0.0], np.float32)
    >>> np.asarray(ops.jvp(lambda a: a * a, (x,), (t,))[1]).tolist()
    [2.0, 0.0]
"""
from __future__ import annotations

__all__ = ["jvp"]

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from .. import ops
from ..gradient_tape import GradientTape
from ..graph import Value
from ..layers.keras_tensor import KerasTensor
from ..ops.forward_mode import register_jvp
from .compiled_function import compile_function


def _leaves(tree: Any) -> list[Any]:
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in _leaves(tree[key])]
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _leaves(item)]
    return [tree]


def _rebuild(tree: Any, leaves: list[Any]) -> Any:
    """``tree``'s structure with ``leaves`` (consumed from the front) in place of its leaves."""
    if isinstance(tree, dict):
        return {key: _rebuild(tree[key], leaves) for key in sorted(tree)}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_rebuild(item, leaves) for item in tree)
    return leaves.pop(0)


def _zeros_node(x: Value) -> Value:
    """Zeros shaped and typed like ``x`` from a node (an outer tape cannot watch a constant initializer)."""
    b = x.builder
    zeros = b.op("ConstantOfShape", [b.op("Shape", [x])], dtype=onnx.TensorProto.FLOAT, shape=x.shape)
    return zeros if x.dtype == onnx.TensorProto.FLOAT else b.op("CastLike", [zeros, x], shape=x.shape)


def _jvp_graph(fun: Callable[..., Any], primals: tuple, tangents: tuple, has_aux: bool) -> tuple:
    with GradientTape(persistent=True) as outer:
        with GradientTape() as inner:
            for p in primals:
                inner.watch(p)
            result = fun(*primals)
        out, aux = result if has_aux else (result, None)
        outputs = [ops.convert_to_tensor(o) for o in _leaves(out)]
        seeds = [_zeros_node(o) for o in outputs]
        for seed in seeds:
            outer.watch(seed)
        pulled = inner.gradient(outputs, list(primals), output_gradients=seeds, unconnected_gradients="zero")
        total = None
        for g, t in zip(pulled, tangents):
            term = ops.sum(g * ops.cast(t, g.dtype))
            total = term if total is None else total + term
    pushed = outer.gradient(total, seeds, unconnected_gradients="zero")
    tangents_out = _rebuild(out, list(pushed))
    return (out, tangents_out, aux) if has_aux else (out, tangents_out)


def _host(x: Any) -> Any:
    if isinstance(x, Value):
        return x
    a = np.asarray(x)
    return a.astype(np.float32) if a.dtype == np.float64 and not isinstance(x, np.ndarray) else a


def _shape(x: Any) -> tuple:
    """The static shape (``None`` for a dimension known only at run time)."""
    return tuple(x.shape) if isinstance(x, Value) and x.shape is not None else tuple(np.shape(x))


def jvp(fun: Callable[..., Any], primals: Any, tangents: Any, has_aux: bool = False) -> tuple:
    """See ``ops.forward_mode.jvp``."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: `primals` and `tangents` must be tuples or lists of tensors. Received: "
                        f"primals={type(primals).__name__}, tangents={type(tangents).__name__}")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: `tangents` needs one tensor per primal. Received {len(primals)} primals and "
                         f"{len(tangents)} tangents")
    if any(isinstance(x, KerasTensor) for x in (*primals, *tangents)):
        raise NotImplementedError("jvp on functional-model tensors cannot be written in a model config (it takes a "
                                  "Python function); call it inside a layer's call() or a Lambda layer instead.")
    primals, tangents = tuple(_host(p) for p in primals), tuple(_host(t) for t in tangents)
    for p, t in zip(primals, tangents):
        known = [(a, b) for a, b in zip(_shape(p), _shape(t)) if isinstance(a, int) and isinstance(b, int)]
        if len(_shape(p)) != len(_shape(t)) or any(a != b for a, b in known):
            raise ValueError(f"jvp: each tangent must have its primal's shape. Received primal shape "
                             f"{_shape(p)} and tangent shape {_shape(t)}")
    run = compile_function(lambda p, t: _jvp_graph(fun, p, t, has_aux), keep_dtypes=True)
    return run(primals, tangents)


register_jvp(jvp)

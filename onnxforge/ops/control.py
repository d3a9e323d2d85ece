"""``keras.ops`` core utilities beyond ``cast`` / ``cond``: ``scatter`` / ``scatter_update`` /
``slice_update``, loops (``fori_loop``, ``while_loop``, ``scan``, ``map``, ``vectorized_map``) and
``switch``, ``dtype`` and ``saturate_cast``.

Loops whose trip count is known while tracing (a Python int, a static size, a condition on arrays) run at
trace time and are unrolled into the graph, which is what Keras's own backends do under ``jit`` for short
static loops, and gives the same values and gradients. A condition, bound or index on a traced tensor, or a
first axis known only at run time, becomes one ONNX ``Loop`` / ``If`` / ``Scan`` (``traced_flow.py``).

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.fori_loop(0, 3, lambda i, x: x + i, np.float32(0.0)).tolist()
    3.0
    >>> ops.scatter(np.array([[0], [2]]), np.array([5.0, 6.0]), (4,)).tolist()
    [5.0, 0.0, 6.0, 0.0]
"""
from __future__ import annotations

__all__ = ["scatter", "scatter_update", "slice_update", "fori_loop", "while_loop", "scan", "map",
           "vectorized_map", "switch", "dtype", "saturate_cast", "associative_scan"]

import builtins
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..graph import FLOAT_TYPES, Value, np_dtype, protos
from ..variables import Variable
from ._arrays_util import emit
from ._util import (as_value, builder_of, cast_value, dtype_enum, fill_const, int_const, is_functional_tensor,
                    shape_tensor, symbolic)
from .traced_flow import is_traced, lowering


def _tree_map(fn: Callable[..., Any], *trees: Any) -> Any:
    first = trees[0]
    if isinstance(first, (list, tuple)):
        items = [_tree_map(fn, *parts) for parts in zip(*trees)]
        return type(first)(items) if isinstance(first, tuple) else items
    if isinstance(first, dict):
        return {k: _tree_map(fn, *(t[k] for t in trees)) for k in first}
    return fn(*trees)


def _leaves(tree: Any) -> list[Any]:
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _leaves(item)]
    if isinstance(tree, dict):
        return [leaf for k in tree for leaf in _leaves(tree[k])]
    return [tree]


# ------------------------------------------------------------------------------------------ scatter
@symbolic
def scatter(indices: Any, values: Any, shape: Any) -> Value:
    """A zero tensor of ``shape`` with ``values`` added at ``indices`` (``(n, rank)`` or ``(n, k)`` for
    slices); repeated indices accumulate, as in Keras."""
    b = builder_of(indices, values, shape)
    vals = as_value(values, b)
    idx = cast_value(as_value(indices, b), 7)
    zeros = fill_const(b, shape, 0, vals.dtype)
    return emit(b, "ScatterND", [zeros, idx, vals], reduction="add")


@symbolic
def scatter_update(inputs: Any, indices: Any, updates: Any, reduction: str | None = None) -> Value:
    """``inputs`` with the entries (or slices) at ``indices`` replaced by ``updates``, or combined with them by
    ``reduction`` (``"add"``, ``"mul"``, ``"max"``, ``"min"``: repeated indices all count, as in Keras)."""
    if reduction not in (None, "add", "mul", "max", "min"):
        raise ValueError(f"Unsupported reduction: {reduction!r}. Expected None, 'add', 'mul', 'max' or 'min'.")
    b = builder_of(inputs, indices, updates)
    v = as_value(inputs, b)
    idx = cast_value(as_value(indices, b), 7)
    return emit(b, "ScatterND", [v, idx, as_value(updates, b, like=v)], reduction=reduction or "none")


@symbolic
def slice_update(inputs: Any, start_indices: Any, updates: Any) -> Value:
    """``inputs`` with the block starting at ``start_indices`` replaced by ``updates``."""
    b = builder_of(inputs, start_indices, updates)
    v = as_value(inputs, b)
    u = as_value(updates, b, like=v)
    starts = list(start_indices) if isinstance(start_indices, (list, tuple)) else None
    static = (starts is not None and builtins.all(isinstance(s, (int, np.integer)) for s in starts)
              and v.shape is not None and u.shape is not None
              and builtins.all(isinstance(d, int) for d in (*v.shape, *u.shape)))
    if static:
        # Pad the update to the full shape and pick it inside the block: Pad and Where have gradient rules.
        before = [int(s) for s in starts]
        after = [n - s - m for n, s, m in zip(v.shape, before, u.shape)]
        pads = int_const(b, before + after)
        padded = emit(b, "Pad", [u, pads])
        mask = np.zeros(v.shape, np.bool_)
        mask[tuple(builtins.slice(s, s + m) for s, m in zip(before, u.shape))] = True
        return emit(b, "Where", [as_value(mask, b), padded, v])
    # Dynamic starts: scatter the update's entries to their shifted coordinates.
    u_shape = emit(b, "Shape", [u])
    coords = emit(b, "Transpose", [emit(b, "NonZero", [emit(b, "ConstantOfShape", [u_shape],
                                                            value=_one_bool_tensor())])], perm=[1, 0])
    start_vec = shape_tensor(b, starts if starts is not None else start_indices)[0]
    index = emit(b, "Reshape", [coords + start_vec, emit(b, "Concat", [u_shape, int_const(b, [-1])], axis=0)])
    return emit(b, "ScatterND", [v, index, u])


def _one_bool_tensor() -> Any:
    return protos.tensor_from_array(np.ones(1, np.bool_), "value")


# ------------------------------------------------------------------------------------------ loops
def _static_int(value: Any, what: str, op: str) -> int:
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return int(value)
    raise TypeError(f"ops.{op}: {what} must be an int or an integer tensor. Received: {what}={value!r}. A "
                    "Python int unrolls the loop into the graph; a traced tensor makes one ONNX Loop.")


def fori_loop(lower: Any, upper: Any, body_fun: Callable[[Any, Any], Any], init_val: Any) -> Any:
    """``for i in range(lower, upper): val = body_fun(i, val)``; returns ``val``. Python bounds unroll the
    loop into the graph; a traced bound (``ops.shape(x)[0]``, a count computed from the data) makes one ONNX
    ``Loop`` whose counter ``i`` has the bound's integer type (int32 for Python ints)."""
    if not (is_traced(lower) or is_traced(upper)):
        lo, hi = _static_int(lower, "lower", "fori_loop"), _static_int(upper, "upper", "fori_loop")
        val = init_val
        for i in range(lo, hi):
            val = body_fun(i, val)
        return val
    b = builder_of(lower, upper)
    bounds = [as_value(x, b) if is_traced(x) else None for x in (lower, upper)]
    kinds = [v.dtype for v in bounds if v is not None and v.dtype is not None and v.dtype.is_integer]
    counter = kinds[0] if kinds else dtype_enum("int32")
    lo, hi = (cast_value(v if v is not None else as_value(np.asarray(int(x)), b), counter)
              for v, x in zip(bounds, (lower, upper)))
    _, val = while_loop(lambda i, v: emit(b, "Less", [as_value(i, b), hi]),
                        lambda i, v: (i + as_value(np.asarray(1, np_dtype(counter)), b), body_fun(i, v)),
                        (lo, init_val))
    return val


def while_loop(cond: Callable[..., Any], body: Callable[..., Any], loop_vars: Any,
               maximum_iterations: int | None = None) -> Any:
    """``while cond(*vars): vars = body(*vars)``, at most ``maximum_iterations`` times; returns the final
    loop variables in ``loop_vars``' structure. A condition known while tracing unrolls the loop; one on a
    traced tensor (a trip count that depends on the data) makes one ONNX ``Loop`` from there on. Several
    loop variables come back as a tuple, as Keras returns them (``tf.while_loop`` keeps a list a list)."""
    out = run_while(cond, body, loop_vars, maximum_iterations, None, "ops.while_loop")
    return tuple(out) if isinstance(loop_vars, (list, tuple)) else out


def run_while(cond: Callable[..., Any], body: Callable[..., Any], loop_vars: Any, maximum_iterations: Any,
              shape_invariants: Any, op: str) -> Any:
    """``while_loop`` with ``tf.while_loop``'s ``shape_invariants`` (``op`` names the caller in errors): both
    ``ops.while_loop`` and ``tf.while_loop`` run here."""
    single = not isinstance(loop_vars, (list, tuple))
    state = [loop_vars] if single else list(loop_vars)
    invariants = [shape_invariants] if single and shape_invariants is not None else shape_invariants
    traced_limit = is_traced(maximum_iterations)
    limit = (None if maximum_iterations is None or traced_limit
             else _static_int(maximum_iterations, "maximum_iterations", op.split(".")[-1]))

    def step(values: list[Any]) -> list[Any]:
        out = body(*values)
        out = [out] if single or not isinstance(out, (list, tuple)) else list(out)
        if len(out) != len(values):
            raise ValueError(f"{op}: body must return {len(values)} loop variables. Received: {out!r}")
        return out

    steps = 0
    while limit is None or steps < limit:
        keep = cond(*state)
        if is_traced(keep) or traced_limit:
            # The condition (or the bound) is known only when the program runs: one ONNX Loop from here on.
            b = builder_of(keep, maximum_iterations)
            keep = as_value(keep, b) if is_traced(keep) else b.const(np.bool_(bool(np.asarray(keep))))
            left = maximum_iterations if limit is None else limit - steps
            try:
                state = lowering()["while"](cond, step, state, keep, left, invariants)
            except (NotImplementedError, TypeError, ValueError) as e:
                # graph_flow names tf.while_loop; an ops.while_loop / fori_loop user sees the op they called.
                prefix = "tf.while_loop:"
                if op == "tf.while_loop" or not str(e).startswith(prefix):
                    raise
                raise type(e)(f"{op}:{str(e)[len(prefix):]}") from e
            break
        if is_functional_tensor(keep):
            raise TypeError(f"{op} on a functional-API tensor (keras.Input or a layer output) is not supported: "
                            f"the condition returned {keep!r}. Call it inside a layer's call(), where it becomes "
                            "an ONNX Loop.")
        if not bool(np.asarray(keep)):
            break
        state, steps = step(state), steps + 1
    if single:
        return state[0]
    if hasattr(loop_vars, "_fields"):
        return type(loop_vars)(*state)
    return tuple(state) if isinstance(loop_vars, tuple) else state


def _length(xs: Any, length: Any, op: str) -> int | None:
    """The static size of the first axis of ``xs`` (or ``length``); ``None`` where it is known only at run time
    on traced tensors (the loop then becomes an ONNX ``Scan``)."""
    if length is not None:
        if is_traced(length):
            raise TypeError(f"ops.{op}: length must be a Python int, as in Keras and JAX. Received: "
                            f"length={length!r}; pass xs to scan over a first axis of run-time size.")
        return _static_int(length, "length", op)
    leaves = _leaves(xs)
    if not leaves or leaves[0] is None:
        raise ValueError(f"ops.{op} needs xs or length. Received: xs={xs!r}, length={length!r}")
    n = getattr(leaves[0], "shape", None)
    n = n[0] if n else None
    if isinstance(n, (int, np.integer)):
        return int(n)
    if builtins.all(is_traced(leaf) for leaf in leaves):
        return None
    raise ValueError(f"ops.{op} maps over the first axis of xs, which has no size here. Received a first axis "
                     f"of size {n!r} for xs={xs!r}.")


def _index(tree: Any, i: int) -> Any:
    def take(x: Any) -> Any:
        if isinstance(x, Value) or hasattr(x, "__onnx_value__"):
            b = builder_of(x)
            v = as_value(x, b)
            return emit(b, "Gather", [v, as_value(np.int64(i), b)], axis=0)
        return np.asarray(x)[i]

    return _tree_map(take, tree)


def _stack(items: list[Any]) -> Any:
    def join(*leaves: Any) -> Any:
        b = builder_of(*leaves)
        if b is None:
            return np.stack([np.asarray(x) for x in leaves])
        values = [as_value(x, b) for x in leaves]
        return emit(b, "Concat", [emit(b, "Unsqueeze", [v, int_const(b, [0])]) for v in values], axis=0)

    return _tree_map(join, *items)


def scan(f: Callable[[Any, Any], Any], init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False, unroll: Any = 1) -> tuple[Any, Any]:
    """``carry, y = f(carry, x)`` over the first axis of ``xs``; returns the final carry and the stacked
    ``y``s (JAX's ``lax.scan`` semantics, as Keras). A static length is unrolled into the graph; a traced
    ``xs`` whose first axis is known only at run time (the batch) makes one ONNX ``Scan``."""
    n = _length(xs, length, "scan")
    if n is None:
        return lowering()["scan"](f, init, xs, reverse)
    order = range(n - 1, -1, -1) if reverse else range(n)
    carry, ys = init, []
    for i in order:
        carry, y = f(carry, None if xs is None else _index(xs, i))
        ys.append(y)
    if reverse:
        ys.reverse()
    if not ys or builtins.all(y is None for y in _leaves(ys[0])):
        return carry, None
    return carry, _stack(ys)


def map(f: Callable[[Any], Any], xs: Any) -> Any:  # noqa: A001 (Keras's name)
    """``f`` applied to each slice of ``xs`` along its first axis, the results stacked (an ONNX ``Scan`` over
    a traced first axis of run-time size, as ``scan``)."""
    if _length(xs, None, "map") is None:
        return lowering()["scan"](lambda carry, x: (carry, f(x)), (), xs)[1]
    n = _length(xs, None, "map")
    return _stack([f(_index(xs, i)) for i in range(n)])


def vectorized_map(function: Callable[[Any], Any], elements: Any) -> Any:
    """``function`` applied to each slice of ``elements`` along axis 0 (unrolled over a static size, else
    ``map``'s ``Scan``)."""
    if _length(elements, None, "vectorized_map") is None:
        return map(function, elements)
    n = _length(elements, None, "vectorized_map")
    return _stack([function(_index(elements, i)) for i in range(n)])


def associative_scan(f: Callable[[Any, Any], Any], elems: Any, reverse: bool = False, axis: int = 0) -> Any:
    """Inclusive scan of the associative ``f`` along ``axis``, computed sequentially: unrolled over a static
    size, one ONNX ``Scan`` over a traced axis of run-time size."""
    if axis != 0:
        from .arrays import moveaxis

        moved = _tree_map(lambda x: moveaxis(x, axis, 0), elems)
        out = associative_scan(f, moved, reverse, 0)
        return _tree_map(lambda x: moveaxis(x, 0, axis), out)
    n = _length(elems, None, "associative_scan")
    if n is None:
        return _associative_scan_traced(f, elems, reverse)
    order = list(range(n - 1, -1, -1)) if reverse else list(range(n))
    acc, outs = None, {}
    for i in order:
        item = _index(elems, i)
        acc = item if acc is None else f(acc, item)
        outs[i] = acc
    return _stack([outs[i] for i in range(n)])


def _associative_scan_traced(f: Callable[[Any, Any], Any], elems: Any, reverse: bool) -> Any:
    """The running ``f`` as a ``scan`` whose carry starts at the first element (the last when ``reverse``),
    that element prepended (appended) to the stacked results."""
    edge = -1 if reverse else 0
    first = _tree_map(lambda x: x[edge], elems)
    rest = _tree_map(lambda x: x[:-1] if reverse else x[1:], elems)
    _, ys = scan(lambda acc, x: (f(acc, x),) * 2, first, rest, reverse=reverse)
    head = _stack([first])
    return _tree_map(lambda h, y: _concat([y, h] if reverse else [h, y]), head, ys)


def _concat(parts: list[Any]) -> Value:
    b = builder_of(*parts)
    return emit(b, "Concat", [as_value(p, b) for p in parts], axis=0)


def switch(index: Any, branches: Sequence[Callable[..., Any]], *operands: Any) -> Any:
    """``branches[index](*operands)``, ``index`` clamped to the branches as in Keras. A traced ``index``
    makes a chain of ONNX ``If`` nodes, so only the branch selected runs (its gradients only, too)."""
    if not branches:
        raise ValueError(f"ops.switch needs at least one branch. Received: branches={branches!r}")
    if not is_traced(index):
        i = builtins.min(builtins.max(int(np.asarray(index)), 0), len(branches) - 1)
        return branches[i](*operands)
    b = builder_of(index)
    idx = cast_value(as_value(index, b), 7)

    def pick(k: int) -> Any:
        # index <= k for the first k that holds: below 0 gives branch 0, beyond the end the last branch.
        if k == len(branches) - 1:
            return branches[k](*operands)
        taken = emit(b, "LessOrEqual", [idx, as_value(np.int64(k), b)])
        return lowering()["cond"](taken, lambda: branches[k](*operands), lambda: pick(k + 1))

    return pick(0)


# ------------------------------------------------------------------------------------------ dtypes
def dtype(x: Any) -> str:
    """The Keras dtype name of ``x`` (``"float32"``, ``"int64"``, ...)."""
    if isinstance(x, Value):
        return np.dtype(np_dtype(x.dtype)).name if x.dtype is not None else "float32"
    if isinstance(x, Variable):   # its own dtype, inside a trace or not (an eager tf.matmul of Variables)
        return np.dtype(x.dtype).name
    if hasattr(x, "__onnx_value__"):
        return dtype(x.__onnx_value__())
    if is_functional_tensor(x):  # a KerasTensor
        return x.dtype
    return np.asarray(x).dtype.name


@symbolic
def saturate_cast(x: Any, dtype: Any) -> Value:  # noqa: A002
    """Cast with out-of-range values clipped to the target type's limits (no wrap-around)."""
    b = builder_of(x)
    v = as_value(x, b)
    target = np.dtype(np_dtype(dtype_enum(dtype)))
    if target.kind in "iu" and v.dtype in FLOAT_TYPES:
        info = np.iinfo(target)
        v = emit(b, "Clip", [v, as_value(float(info.min), b, like=v), as_value(float(info.max), b, like=v)])
    elif target.kind == "f" and v.dtype in FLOAT_TYPES:
        info = np.finfo(target)
        v = emit(b, "Clip", [v, as_value(float(info.min), b, like=v), as_value(float(info.max), b, like=v)])
    return cast_value(v, dtype_enum(dtype))

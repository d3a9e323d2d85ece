"""``keras.ops.vectorize``: a function of scalars (or of core-shaped slices, given a gufunc ``signature``)
applied over every element of broadcast inputs, as ``numpy.vectorize`` does.

The inputs' loop dims are broadcast together and flattened; ``pyfunc`` is called once per position, eagerly
on arrays or traced into the graph on graph values (one copy of its nodes per position, so the loop dims must
be static there: a dynamic batch is refused with the alternative to use), and the results are stacked back
into the loop shape followed by each output's core shape. ``excluded`` positions and keywords reach ``pyfunc``
unchanged (NumPy's meaning; Keras 3.15's TensorFlow backend ignores the argument).

Example:
    >>> import numpy as np
    >>> from onnxforge import ops
    >>> ops.vectorize(lambda a, b: a + b)(np.array([1, 2, 3, 4]), 2).tolist()
    [3, 4, 5, 6]
    >>> mv = ops.vectorize(lambda m, v: ops.matmul(m, v), signature="(m,n),(n)->(m)")
    >>> mv(np.ones((2, 3, 4), np.float32), np.ones((4,), np.float32)).shape
    TensorShape([2, 3])
"""
from __future__ import annotations

__all__ = ["vectorize"]

import functools
import re
from collections.abc import Callable
from typing import Any

import numpy as np

_DIMS = r"\((?:\w+(?:,\s*\w+)*)?\)"
_SIGNATURE = re.compile(rf"^\s*{_DIMS}(?:,\s*{_DIMS})*\s*->\s*{_DIMS}(?:,\s*{_DIMS})*\s*$")


def _parse(signature: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    if not isinstance(signature, str) or not _SIGNATURE.match(signature):
        raise ValueError(f"vectorize: signature must be a generalized ufunc signature such as '(m,n),(n)->(m)'. "
                         f"Received: signature={signature!r}")
    ins, outs = signature.split("->")

    def dims(part: str) -> list[tuple[str, ...]]:
        return [tuple(d.strip() for d in group.split(",") if d.strip()) for group in re.findall(r"\((.*?)\)", part)]
    return dims(ins), dims(outs)


def vectorize(pyfunc: Callable[..., Any], *, excluded: Any = None, signature: str | None = None) -> Callable[..., Any]:
    """``pyfunc`` vectorized over its inputs' broadcast leading (loop) dims.

    Args:
        pyfunc: a function of scalar tensors (or of slices shaped by ``signature``'s core dims).
        excluded: positions (ints) and keyword names (strs) passed to ``pyfunc`` unchanged.
        signature: a generalized ufunc signature, e.g. ``"(m,n),(n)->(m)"``.

    Returns:
        The vectorized function.

    Example:
        >>> import numpy as np
        >>> from onnxforge import ops
        >>> ops.vectorize(lambda x: x * x)(np.arange(3.0, dtype=np.float32)).tolist()
        [0.0, 1.0, 4.0]
    """
    if not callable(pyfunc):
        raise ValueError(f"Expected argument `pyfunc` to be a callable. Received: pyfunc={pyfunc}")
    excluded = set(excluded or ())
    if any(not isinstance(e, (int, str)) or isinstance(e, bool) for e in excluded):
        raise TypeError(f"vectorize: excluded holds argument positions (int) and names (str). "
                        f"Received: excluded={excluded!r}")
    parsed = _parse(signature) if signature is not None else None

    @functools.wraps(pyfunc)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        fixed = {i: a for i, a in enumerate(args) if i in excluded}
        moving = [a for i, a in enumerate(args) if i not in excluded]
        static_kwargs = {k: v for k, v in kwargs.items() if k in excluded}
        moving_kwargs = {k: v for k, v in kwargs.items() if k not in excluded}
        if moving_kwargs:
            raise TypeError(f"vectorize: keyword arguments are passed unchanged only when excluded; vectorize "
                            f"over them by passing them by position. Received keywords {sorted(moving_kwargs)}")
        core_in, core_out = parsed if parsed is not None else ([()] * len(moving), None)
        if len(core_in) != len(moving):
            raise TypeError(f"vectorize: the signature {signature!r} takes {len(core_in)} vectorized arguments. "
                            f"Received {len(moving)}.")
        return _apply(pyfunc, fixed, moving, static_kwargs, core_in, core_out)

    return wrapped


def _apply(pyfunc: Callable[..., Any], fixed: dict[int, Any], moving: list[Any], kwargs: dict,
           core_in: list[tuple[str, ...]], core_out: list[tuple[str, ...]] | None) -> Any:
    from . import broadcast_to, convert_to_tensor, reshape, stack

    tensors = [convert_to_tensor(a) for a in moving]
    shapes = [tuple(t.shape) for t in tensors]
    sizes: dict[str, Any] = {}
    loops = []
    for k, (shape, core) in enumerate(zip(shapes, core_in)):
        if len(shape) < len(core):
            raise ValueError(f"vectorize: argument {k} has rank {len(shape)}, fewer than its core dims {core}.")
        for name, d in zip(core, shape[len(shape) - len(core):]):
            if sizes.setdefault(name, d) != d:
                raise ValueError(f"vectorize: inconsistent size for core dimension {name!r}: {d} vs {sizes[name]}")
        loops.append(shape[:len(shape) - len(core)])
    if any(not isinstance(d, (int, np.integer)) for s in loops for d in s):
        raise ValueError(f"vectorize needs static loop dims inside a graph (the function is traced once per "
                         f"element). Received argument shapes {shapes}. For a dynamic batch, write the function on "
                         f"whole tensors, or use keras.ops.map / vectorized_map over a static size.")
    loop = tuple(np.broadcast_shapes(*loops)) if loops else ()
    n = int(np.prod(loop, dtype=np.int64))
    if n == 0:
        raise ValueError(f"vectorize cannot call the function on inputs of size 0 (loop shape {loop}).")
    flat = []
    for t, shape, core in zip(tensors, shapes, core_in):
        core_shape = tuple(shape[len(shape) - len(core):])
        if tuple(shape) != loop + core_shape:
            t = broadcast_to(t, loop + core_shape)
        flat.append(reshape(t, (n, *core_shape)))
    results = []
    for i in range(n):
        items = iter([t[i] for t in flat])
        call = [fixed[k] if k in fixed else next(items) for k in range(len(fixed) + len(flat))]
        results.append(pyfunc(*call, **kwargs))
    several = isinstance(results[0], tuple)
    if core_out is not None and len(core_out) > 1 and not several:
        raise TypeError(f"vectorize: the signature names {len(core_out)} outputs; the function returned one.")
    columns = list(zip(*results)) if several else [results]
    if core_out is not None and len(core_out) != len(columns):
        raise TypeError(f"vectorize: the signature names {len(core_out)} outputs; the function returned "
                        f"{len(columns)}.")
    outs = []
    for column in columns:
        stacked = stack([convert_to_tensor(r) for r in column], axis=0)
        outs.append(reshape(stacked, loop + tuple(stacked.shape[1:])))
    return tuple(outs) if several else outs[0]

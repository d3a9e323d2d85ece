"""Size limits while a model from an untrusted file is built: a few bytes of config cannot make gigabytes.

A saved config is small JSON, but its numbers size what onnxforge builds: ``Input(shape=(10**9,))``,
``RepeatVector(10**9)``, ``UpSampling2D(size=10**5)``, ``CategoryEncoding(num_tokens=10**9)`` or an
``inv`` op on a ``(50000, 50000)`` input (whose identity matrix is built with numpy at its static size)
would allocate gigabytes while loading or at the first ``predict``, or hang while unrolling a graph of
millions of nodes. The weights are already bound to the file (``layers.allocation``); everything else a
loader builds is bound here. While :func:`size_limits` is open (the Keras loaders open it, and a model they
return reopens it whenever it is traced again):

- a tensor whose static size (its known dims; a ``None`` batch dim counts once) is over ``max_tensor_bytes``
  is refused when a layer's output or a graph value is declared with that shape, before anything runs;
- a graph constant over ``max_constant_bytes`` is refused before it is copied into the graph, and code
  that builds a constant from static sizes asks :func:`check_constant` *before* it allocates;
- one graph's constants together are bounded by ``max_graph_constant_bytes`` and its nodes by
  ``max_graph_nodes``;
- an op that grows a tensor by constant operands (``Tile``, ``Pad``, ``Resize``, ``Expand``,
  ``ConstantOfShape``, ``Range``) is refused when its output for the smallest non-empty input (unknown
  dims as 1, :mod:`.run_time_sizes`) is over ``max_tensor_bytes``: dynamic dims hide it from the static
  check, not from onnxruntime.

Each refusal is a :class:`SizeLimitError` naming what was being built, its size and the limit, after the
layer being called (:func:`building`, which layers enter around their ``call``). Outside the block (models
built in code) nothing is checked.

Example:
    >>> with size_limits("demo.keras"):
    ...     check_tensor((None, 3), 4, "layer 'dense' output")
    ...     try:
    ...         check_tensor((None, 10**9, 3), 4, "layer 'repeat_vector' output")
    ...     except SizeLimitError as e:
    ...         print(str(e).split(":")[0])
    layer 'repeat_vector' output has static shape (None, 1000000000, 3)
"""
from __future__ import annotations

__all__ = ["SizeLimitError", "SizeLimits", "size_limits", "current", "building", "check_tensor", "check_constant",
           "charge_graph", "itemsize", "check_value", "charge_nodes", "charge_node",
           "MAX_TENSOR_BYTES", "MAX_CONSTANT_BYTES", "MAX_GRAPH_CONSTANT_BYTES", "MAX_GRAPH_NODES"]

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from .run_time_sizes import GROWING_OPS, least_shape
from .value import np_dtype

#: Largest static tensor (bytes per example) a loaded model may declare: far above any real model's
#: activations, far below what a hostile config asks for.
MAX_TENSOR_BYTES = 2 * 2**30
#: Largest single graph constant (masks, identity matrices, lookup tables built from the config).
MAX_CONSTANT_BYTES = 256 * 2**20
#: All the constants of one graph together.
MAX_GRAPH_CONSTANT_BYTES = 2**30
#: Nodes in one graph (ops unrolled over a static size: cholesky, Jacobi sweeps, ...).
MAX_GRAPH_NODES = 2_000_000


class SizeLimitError(ValueError):
    """Something a loaded model's config sizes is over a :class:`SizeLimits` bound (nothing was allocated)."""


@dataclass(frozen=True)
class SizeLimits:
    """The bounds in force for a model read from ``source`` (the file, for messages)."""

    source: str
    max_tensor_bytes: int = MAX_TENSOR_BYTES
    max_constant_bytes: int = MAX_CONSTANT_BYTES
    max_graph_constant_bytes: int = MAX_GRAPH_CONSTANT_BYTES
    max_graph_nodes: int = MAX_GRAPH_NODES

    def refuse(self, what: str, size: str, limit: int, unit: str = "bytes") -> SizeLimitError:
        where = _WHERE.get()
        if where is not None and where.split(" (")[0] not in what:   # "layer 'x' (Class)" unless named already
            what = f"{where}: {what}"
        return SizeLimitError(f"{what} {size}, over the limit of {limit} {unit} for a model loaded from "
                              f"{self.source}; the file's config asks for more than any real model needs, so "
                              "nothing was allocated (raise onnxforge.graph.size_limits' limits to load it "
                              "anyway)")


_LIMITS: ContextVar[SizeLimits | None] = ContextVar("onnxforge_size_limits", default=None)
#: The layer being called, named in refusals: an op deep inside it knows only its own arguments.
_WHERE: ContextVar[str | None] = ContextVar("onnxforge_size_limits_where", default=None)


@contextmanager
def size_limits(limits: SizeLimits | str | None) -> Iterator[SizeLimits | None]:
    """Within the block, tensors, constants and graphs built are checked against ``limits`` (a
    :class:`SizeLimits`, or a source name for the module's default bounds; ``None`` changes nothing)."""
    if isinstance(limits, str):
        limits = SizeLimits(limits, MAX_TENSOR_BYTES, MAX_CONSTANT_BYTES, MAX_GRAPH_CONSTANT_BYTES, MAX_GRAPH_NODES)
    if limits is None:
        yield _LIMITS.get()
        return
    token = _LIMITS.set(limits)
    try:
        yield limits
    finally:
        _LIMITS.reset(token)


@contextmanager
def building(what: str) -> Iterator[None]:
    """Within the block, refusals name ``what`` (``"layer 'dense'"``) first; a no-op outside limits.

    Example:
        >>> with size_limits("demo.keras"), building("layer 'frames'"):
        ...     try:
        ...         check_constant((10**5, 10**5), 8, "a frame index")
        ...     except SizeLimitError as e:
        ...         print(str(e).split(" builds")[0])
        layer 'frames': a frame index
    """
    if _LIMITS.get() is None:
        yield
        return
    token = _WHERE.set(what)
    try:
        yield
    finally:
        _WHERE.reset(token)


def current() -> SizeLimits | None:
    """The limits in force in this context (``None`` outside :func:`size_limits`)."""
    return _LIMITS.get()


def _static_elements(shape: Sequence[Any]) -> int:
    return math.prod(int(d) for d in shape if isinstance(d, int) and not isinstance(d, bool) and d > 0)


def itemsize(onnx_type: int | None) -> int:
    """Bytes per element of an ONNX element type (4 where unknown: strings, sequences, untyped values)."""
    try:
        return int(np.dtype(np_dtype(onnx_type)).itemsize) if onnx_type else 4
    except (TypeError, ValueError, KeyError):
        return 4


def check_tensor(shape: Sequence[Any] | None, itemsize: int, what: str) -> None:
    """Refuse a tensor whose known dims take more than ``max_tensor_bytes`` (a no-op outside limits)."""
    limits = _LIMITS.get()
    if limits is None or shape is None:
        return
    size = _static_elements(shape) * max(int(itemsize), 1)
    if size > limits.max_tensor_bytes:
        shown = tuple(d if isinstance(d, int) else None for d in shape)
        raise limits.refuse(what, f"has static shape {shown}: {size} bytes per example", limits.max_tensor_bytes)


def check_value(shape: Sequence[Any] | None, onnx_type: int | None, name: str) -> None:
    """:func:`check_tensor` for a graph value being declared (the builder calls it for every value)."""
    if shape is not None and _LIMITS.get() is not None:
        check_tensor(shape, itemsize(onnx_type), f"graph value {name!r}")


def charge_nodes(nodes: int, constant_bytes: int, op_type: str) -> None:
    """:func:`charge_graph` every 1024 nodes (the builder calls it for every node)."""
    if nodes % 1024 == 0:
        charge_graph(constant_bytes, nodes, f"a {op_type} node")


def charge_node(node: Any, nodes: int, constant_bytes: int, values: Any, constant: Any) -> None:
    """:func:`charge_nodes`, and the least output of a growing op (the builder calls it for every node;
    ``values`` maps names to graph values, ``constant`` gives a name's constant value or ``None``)."""
    charge_nodes(nodes, constant_bytes, node.op_type)
    limits = _LIMITS.get()
    if limits is None or node.op_type not in GROWING_OPS:
        return

    def shape_of(name: str) -> Any:
        value = values.get(name)
        return None if value is None else value.shape

    shape = least_shape(node, shape_of, constant)
    if shape is None:
        return
    first = values.get(node.input[0]) if node.op_type != "ConstantOfShape" and node.input else None
    size = math.prod(shape) * itemsize(first.dtype if first is not None else None)
    if size > limits.max_tensor_bytes:
        raise limits.refuse(f"a {node.op_type} node", f"outputs shape {tuple(shape)} ({size} bytes) even for the "
                            "smallest input (every dim known only at run time taken as 1)", limits.max_tensor_bytes)


def check_constant(shape: Sequence[int], itemsize: int, what: str) -> None:
    """Refuse, before it is allocated, a constant of ``shape`` over ``max_constant_bytes``: call it with the
    size of the largest array (intermediates included) that code is about to build from static sizes."""
    limits = _LIMITS.get()
    if limits is None:
        return
    size = math.prod(max(int(d), 0) for d in shape) * max(int(itemsize), 1)   # numpy makes a negative size empty
    if size > limits.max_constant_bytes:
        raise limits.refuse(what, f"builds a constant of shape {tuple(int(d) for d in shape)} ({size} bytes)",
                            limits.max_constant_bytes)


def charge_graph(constant_bytes: int, nodes: int, what: str) -> int:
    """Refuse a graph whose constants or nodes (the totals so far) pass the per-graph bounds; returns
    ``constant_bytes``."""
    limits = _LIMITS.get()
    if limits is None:
        return constant_bytes
    if constant_bytes > limits.max_graph_constant_bytes:
        raise limits.refuse(what, f"brings the graph's constants to {constant_bytes} bytes",
                            limits.max_graph_constant_bytes)
    if nodes > limits.max_graph_nodes:
        raise limits.refuse(what, f"brings the graph to {nodes} nodes", limits.max_graph_nodes, "nodes")
    return constant_bytes

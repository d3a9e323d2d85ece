"""Graph passes over a finished gradient graph: rewrites that need to see across several rules.

Each gradient rule only sees its own node, so some savings are invisible to it. A pass runs after
``backward`` on the same builder, rewrites a pattern into an equivalent cheaper one, and leaves anything it
does not recognize alone (a pass that does not fire costs speed, never correctness).

``fuse_relu_mask_into_unpool``: for ``Y = MaxPool(Relu(Z))`` (indices from the pool's Indices output or
rebuilt by the max-pool rule from X and Y) the Relu rule multiplies the unpooled
gradient by the full-size mask ``Z > 0``. The unpooled gradient is nonzero only at each window's chosen
pixel, whose value is ``Y`` itself, so the mask there equals ``Y > 0``: apply it to the pooled gradient
(4x smaller for 2x2 pools) before MaxUnpool, and the full-size Greater, Cast and Mul disappear.

``sum_before_unpool``: a ReduceSum over the spatial axes of ``MaxUnpool(T, I)`` (a Conv bias gradient
behind a pool) equals the same ReduceSum of ``T`` when the pool's windows are disjoint: MaxUnpool only
places each value once within its own plane.
"""
from __future__ import annotations

__all__ = ["optimize", "fuse_relu_mask_into_unpool", "sum_before_unpool"]

import numpy as np
import onnx

from ..graph import GraphBuilder


def optimize(b: GraphBuilder) -> int:
    """Run every pass on ``b`` in place; return the number of rewrites.

    Example:
        >>> import onnx
        >>> from onnxforge.autodiff import backward
        >>> b = GraphBuilder()
        >>> z = b.input("z", onnx.TensorProto.FLOAT, ("N", 1, 4, 4))
        >>> y = b.op("MaxPool", [b.op("Relu", [z])], kernel_shape=[2, 2], strides=[2, 2])
        >>> grads = backward(b, b.op("ReduceSum", [y], keepdims=0), ["z"])
        >>> optimize(b)
        1
    """
    return fuse_relu_mask_into_unpool(b) + sum_before_unpool(b)


def _producers(b: GraphBuilder) -> dict[str, onnx.NodeProto]:
    return {out: node for node in b.nodes for out in node.output if out}


def _consumers(b: GraphBuilder) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in b.nodes:
        for name in node.input:
            counts[name] = counts.get(name, 0) + 1
    for out in b.outputs:
        counts[out.name] = counts.get(out.name, 0) + 1
    return counts


def _is_zero(b: GraphBuilder, name: str) -> bool:
    value = b.constant_value(name)
    return value is not None and value.size == 1 and float(np.asarray(value).reshape(-1)[0]) == 0.0


def _positive_mask_of(b: GraphBuilder, name: str, producers: dict) -> tuple[str, str, int] | None:
    """``(Z, zero, to)`` if ``name`` is ``Cast(Greater(Z, zero), to=to)`` with a constant zero (how the
    Relu rule masks its gradient), else ``None``."""
    cast = producers.get(name)
    if cast is None or cast.op_type != "Cast":
        return None
    greater = producers.get(cast.input[0])
    if greater is None or greater.op_type != "Greater" or not _is_zero(b, greater.input[1]):
        return None
    to = next(a.i for a in cast.attribute if a.name == "to")
    return greater.input[0], greater.input[1], to


def fuse_relu_mask_into_unpool(b: GraphBuilder) -> int:
    """Rewrite ``MaxUnpool(T, I) * Cast(Z > 0)`` into ``MaxUnpool(T * Cast(Y > 0), I)`` where
    ``Y, I = MaxPool(Relu(Z))``. Returns the number of rewrites."""
    producers = _producers(b)
    consumers = _consumers(b)
    rewrites = 0
    for mul in [n for n in b.nodes if n.op_type == "Mul"]:
        for unpooled, mask in (tuple(mul.input), tuple(reversed(mul.input))):
            unpool = producers.get(unpooled)
            relu_mask = _positive_mask_of(b, mask, producers)
            if unpool is None or unpool.op_type != "MaxUnpool" or relu_mask is None or consumers.get(unpooled) != 1:
                continue
            pool = _max_pool_of(unpool, producers)
            if pool is None:
                continue
            relu = producers.get(pool.input[0])
            if relu is None or relu.op_type != "Relu" or relu.input[0] != relu_mask[0]:
                continue
            _, zero, to = relu_mask
            _insert_before(b, unpool, lambda: b.op("Mul", [unpool.input[0], b.op(
                "Cast", [b.op("Greater", [pool.output[0], zero])], to=to)]))
            unpool.input[0] = b.nodes[b.nodes.index(unpool) - 1].output[0]
            before, after = b.values.get(unpool.output[0]), b.values.get(mul.output[0])
            if after is not None and before is not None and after.shape is None:
                after.shape = before.shape
            unpool.output[0] = mul.output[0]  # the unpool now produces what the Mul did
            b.nodes.remove(mul)
            rewrites += 1
            break
    return rewrites


def _insert_before(b: GraphBuilder, anchor: onnx.NodeProto, emit) -> None:
    """Run ``emit`` (which appends nodes) and move what it appended to just before ``anchor``, keeping the
    node list in topological order."""
    mark = len(b.nodes)
    emit()
    new_nodes = b.nodes[mark:]
    del b.nodes[mark:]
    at = b.nodes.index(anchor)
    b.nodes[at:at] = new_nodes


def _max_pool_of(unpool: onnx.NodeProto, producers: dict, reach: int = 64) -> onnx.NodeProto | None:
    """The MaxPool whose windows ``MaxUnpool(T, I, ...)`` scatters back into: the producer of ``I`` when ``I``
    is a MaxPool's Indices output, or, when the max-pool rule rebuilt the indices from X and Y, the MaxPool
    of X whose output Y the index computation reads (found within ``reach`` producers of ``I``)."""
    pool = producers.get(unpool.input[1])
    if pool is not None and pool.op_type == "MaxPool":
        return pool if list(pool.output).index(unpool.input[1]) == 1 else None
    shape = producers.get(unpool.input[2]) if len(unpool.input) > 2 else None
    if shape is None or shape.op_type != "Shape":
        return None
    x = shape.input[0]
    seen, todo, found = set(), [unpool.input[1]], {}
    while todo and len(seen) < reach:
        node = producers.get(todo.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        for name in node.input:
            src = producers.get(name)
            if src is not None and src.op_type == "MaxPool" and src.input[0] == x and src.output[0] == name:
                found[id(src)] = src
            todo.append(name)
    # The index computation also pools X over sub-boxes of each window; the pool itself tiles X (kernel ==
    # strides, the only case the rule rebuilds indices for).
    tiling = [p for p in found.values() if _attrs(p)["kernel_shape"] == (_attrs(p).get("strides") or [])]
    return tiling[0] if len(tiling) == 1 else None


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: list(onnx.helper.get_attribute_value(a)) if a.type == onnx.AttributeProto.INTS
            else onnx.helper.get_attribute_value(a) for a in node.attribute}


def _disjoint(pool: onnx.NodeProto) -> bool:
    """Whether a MaxPool's windows never share a pixel."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in pool.attribute}
    kernel = attrs["kernel_shape"]
    strides = attrs.get("strides") or [1] * len(kernel)
    dilations = attrs.get("dilations") or [1] * len(kernel)
    return all(s >= (k - 1) * d + 1 for k, s, d in zip(kernel, strides, dilations))


def sum_before_unpool(b: GraphBuilder) -> int:
    """Rewrite ``ReduceSum(MaxUnpool(T, I), axes)`` into ``ReduceSum(T, axes)`` when ``axes`` covers every
    spatial axis and ``I`` comes from a MaxPool with disjoint windows. Returns the number of rewrites."""
    producers = _producers(b)
    rewrites = 0
    for node in [n for n in b.nodes if n.op_type == "ReduceSum" and len(n.input) > 1]:
        unpool = producers.get(node.input[0])
        axes = b.constant_value(node.input[1])
        unpooled = b.values.get(node.input[0])
        if unpool is None or unpool.op_type != "MaxUnpool" or axes is None or unpooled is None:
            continue
        rank = unpooled.rank
        pool = _max_pool_of(unpool, producers) if rank is not None else None
        if pool is None or not _disjoint(pool):
            continue
        covered = {int(a) % rank for a in np.asarray(axes).reshape(-1)}
        if set(range(2, rank)) <= covered:
            node.input[0] = unpool.input[0]
            rewrites += 1
    return rewrites

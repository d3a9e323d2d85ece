"""``tf.gather(params, indices, axis=..., batch_dims=...)``: one gather per batch entry.

keras.io's masked autoencoder picks each image's own masked patches with ``tf.gather(patches, mask_indices,
axis=1, batch_dims=1)``: the first ``batch_dims`` axes of ``params`` and ``indices`` pair up, and within each
pair ``indices`` selects along ``axis``. The result has ``params``'s shape with ``axis`` replaced by
``indices``'s non-batch axes. It is ONNX's ``GatherND`` with the same ``batch_dims`` once ``axis`` is moved
next to the batch axes, and moved back after.

Example:
    >>> import numpy as np
    >>> params = np.arange(12, dtype="float32").reshape(2, 3, 2)
    >>> gather_batched(params, np.array([[2, 0], [1, 1]]), axis=1, batch_dims=1).numpy()[:, :, 0].tolist()
    [[4.0, 0.0], [8.0, 8.0]]
"""
from __future__ import annotations

__all__ = ["gather_batched"]

from typing import Any

import numpy as np
import onnx

from ..ops._util import as_value, builder_of, cast_value, int_const, symbolic
from .errors import InvalidArgumentError


def _rank(x: Any) -> int:
    return len(np.shape(x)) if not hasattr(x, "shape") else len(tuple(x.shape))


def gather_batched(params: Any, indices: Any, axis: int, batch_dims: int) -> Any:
    """``tf.gather`` with ``batch_dims`` (negative ``axis`` / ``batch_dims`` count from the end, as in TF)."""
    rank, index_rank = _rank(params), _rank(indices)
    if not -index_rank <= batch_dims <= index_rank:
        raise InvalidArgumentError(f"tf.gather: expected batch_dims in the range [{-index_rank}, {index_rank}], "
                                   f"but got {batch_dims}")
    batch_dims = batch_dims % index_rank if batch_dims < 0 else batch_dims
    axis = axis + rank if axis < 0 else axis
    if not batch_dims <= axis < rank:
        raise InvalidArgumentError(f"tf.gather: batch_dims ({batch_dims}) must be less than or equal to axis "
                                   f"({axis}), which must index params of rank {rank}")
    p_shape, i_shape = tuple(np.shape(params) if not hasattr(params, "shape") else params.shape), \
        tuple(np.shape(indices) if not hasattr(indices, "shape") else indices.shape)
    for k in range(batch_dims):
        if isinstance(p_shape[k], int) and isinstance(i_shape[k], int) and p_shape[k] != i_shape[k]:
            raise InvalidArgumentError(f"tf.gather: params.shape[{k}]: {p_shape[k]} should be equal to "
                                       f"indices.shape[{k}]: {i_shape[k]}")
    return _gather(params, indices, axis=axis, batch_dims=batch_dims)


@symbolic
def _gather(params: Any, indices: Any, axis: int, batch_dims: int) -> Any:
    b = builder_of(params, indices)
    x = as_value(params, b)
    idx = cast_value(as_value(indices, b), onnx.TensorProto.INT64)
    rank, index_rank = len(x.shape), len(idx.shape)
    # Shapes written out: ONNX's inference leaves GatherND's with batch_dims unknown, and the layers after
    # (a LayerNormalization over the last axis) need them.
    batch = tuple(p if isinstance(p, int) else i for p, i in zip(x.shape[:batch_dims], idx.shape[:batch_dims]))
    if axis != batch_dims:   # the gathered axis right after the batch axes
        perm = [*range(batch_dims), axis, *(k for k in range(batch_dims, rank) if k != axis)]
        x = b.op("Transpose", [x], perm=perm, shape=tuple(x.shape[k] for k in perm))
    shape = (*batch, *idx.shape[batch_dims:], *x.shape[batch_dims + 1:])
    out = b.op("GatherND", [x, b.op("Unsqueeze", [idx, int_const(b, [-1])], shape=(*idx.shape, 1))],
               batch_dims=batch_dims, shape=shape)
    between, picked = axis - batch_dims, index_rank - batch_dims
    if between and picked:   # TF keeps params's axes before `axis` ahead of the picked ones
        start = batch_dims + picked
        perm = [*range(batch_dims), *range(start, start + between), *range(batch_dims, start),
                *range(start + between, rank - 1 + picked)]
        out = b.op("Transpose", [out], perm=perm, shape=tuple(shape[k] for k in perm))
    return out

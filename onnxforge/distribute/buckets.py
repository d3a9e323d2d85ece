"""Grouping gradients into a few contiguous buckets, so that many small tensors make few MPI messages.

Each bucket is one flat buffer the gradient program writes with a single ``Concat`` and the update program
reads back with ``Slice``: an all-reduce per bucket moves the same bytes as one per tensor, but pays the
per-message latency once per bucket instead of once per tensor (a CNN's biases are a few hundred bytes
each). Buckets are filled in REVERSE variable order, last layer first, the order backward produces
gradients in: a runtime that overlaps the reduction of finished buckets with the rest of backward (what
PyTorch DDP and Horovod do) can use the same layout.

Example:
    >>> import numpy as np
    >>> from onnxforge.variables import Variable
    >>> vs = [Variable(np.zeros(s, np.float32), name=f"w{i}") for i, s in enumerate([(1000,), (10,), (10,)])]
    >>> plan_buckets(vs, bucket_bytes=100)
    [[2, 1], [0]]
"""
from __future__ import annotations

__all__ = ["plan_buckets", "DEFAULT_BUCKET_BYTES"]

from collections.abc import Sequence

import numpy as np

from ..variables import Variable

#: PyTorch DDP's default bucket cap (25 MiB): large enough that latency is amortized, small enough to overlap.
DEFAULT_BUCKET_BYTES = 25 * 2 ** 20


def plan_buckets(variables: Sequence[Variable], bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> list[list[int]]:
    """Indices of ``variables`` per bucket: reverse order, one dtype per bucket, each bucket at most
    ``bucket_bytes`` unless a single variable is larger (it then has a bucket of its own)."""
    if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, (int, np.integer)) or bucket_bytes < 1:
        raise ValueError(f"MPIStrategy: `bucket_bytes` must be a positive integer. Received: bucket_bytes={bucket_bytes!r}")
    open_buckets: dict[np.dtype, tuple[list[int], int]] = {}
    done: list[list[int]] = []
    for index in reversed(range(len(variables))):
        var = variables[index]
        dtype = np.dtype(var.dtype)
        nbytes = int(np.prod(var.shape, dtype=np.int64)) * dtype.itemsize
        members, used = open_buckets.get(dtype, ([], 0))
        if members and used + nbytes > bucket_bytes:
            done.append(members)
            members, used = [], 0
        open_buckets[dtype] = (members + [index], used + nbytes)
    done += [members for members, _ in open_buckets.values() if members]
    return done

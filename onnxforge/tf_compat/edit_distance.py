"""``tf.edit_distance``: the Levenshtein distance between the sequences of two ``tf.SparseTensor`` s, computed
on the host (sparse tensors hold concrete arrays here, see ``sparse.py``).

Each sparse tensor of rank R holds sequences along its last axis, one per index of its first R - 1 axes; the
result has the larger of the two tensors' leading shapes. keras.io's OCR programs score decoded predictions
this way (``tf.edit_distance(tf.sparse.from_dense(decoded), tf.sparse.from_dense(labels), normalize=False)``).

Example:
    >>> import numpy as np
    >>> from onnxforge.tf_compat.sparse import from_dense
    >>> hyp = from_dense(np.array([[1, 2, 3], [4, 0, 0]]))
    >>> truth = from_dense(np.array([[1, 3, 0], [4, 5, 6]]))
    >>> edit_distance(hyp, truth, normalize=False).numpy().tolist()
    [1.0, 2.0]
"""
from __future__ import annotations

__all__ = ["edit_distance"]

from typing import Any

import numpy as np

from ..eager_tensor import as_eager
from .errors import InvalidArgumentError
from .sparse import SparseTensor


def _sequences(sp: SparseTensor) -> dict[tuple[int, ...], list[Any]]:
    """Each leading index's values, in the order of the last index."""
    found: dict[tuple[int, ...], list[tuple[int, Any]]] = {}
    for index, value in zip(sp.indices.tolist(), sp.values.tolist()):
        found.setdefault(tuple(index[:-1]), []).append((index[-1], value))
    return {k: [v for _, v in sorted(items, key=lambda item: item[0])] for k, items in found.items()}


def _levenshtein(a: list[Any], b: list[Any]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def edit_distance(hypothesis: SparseTensor, truth: SparseTensor, normalize: bool = True,
                  name: str = "edit_distance") -> Any:
    """``tf.edit_distance``: a float32 tensor of the edit distances, divided by the truth's length when
    ``normalize`` (a sequence missing from ``truth`` then scores ``inf``, one missing from ``hypothesis`` 1)."""
    for arg, value in (("Hypothesis", hypothesis), ("Truth", truth)):
        if not isinstance(value, SparseTensor):
            raise TypeError(f"{arg} must be a SparseTensor.")
    if hypothesis.values.dtype != truth.values.dtype:
        raise InvalidArgumentError(f"tf.edit_distance: the hypothesis and truth values must have the same dtype. "
                                   f"Received: {hypothesis.values.dtype} and {truth.values.dtype}")
    if len(hypothesis.dense_shape) != len(truth.dense_shape) or len(truth.dense_shape) < 1:
        raise InvalidArgumentError(f"tf.edit_distance: the hypothesis and truth must have the same rank (at least "
                                   f"1). Received: dense shapes {hypothesis.shape} and {truth.shape}")
    shape = tuple(max(h, t) for h, t in zip(hypothesis.shape[:-1], truth.shape[:-1]))
    out = np.zeros(shape, np.float32)
    hyps, truths = _sequences(hypothesis), _sequences(truth)
    for key in set(hyps) | set(truths):
        hyp, tru = hyps.get(key), truths.get(key)
        if tru is None:   # TensorFlow's rule: nothing to divide by
            out[key] = np.inf if normalize else len(hyp)
        elif hyp is None:
            out[key] = 1.0 if normalize else len(tru)
        else:
            distance = _levenshtein(hyp, tru)
            out[key] = distance / len(tru) if normalize else distance
    return as_eager(out)

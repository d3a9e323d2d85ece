"""Array helpers of ``keras.utils``: one-hot encoding and normalization (NumPy in, NumPy out).

Example:
    >>> to_categorical([0, 2, 1], num_classes=3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
"""
from __future__ import annotations

__all__ = ["to_categorical", "normalize"]

from typing import Any

import numpy as np


def _host(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):   # a torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def to_categorical(x: Any, num_classes: int | None = None) -> np.ndarray:
    """One-hot rows from integer class ids (Keras ``to_categorical``).

    A trailing axis of size 1 is dropped first, so ``(n, 1)`` labels give ``(n, num_classes)``.

    Args:
        x: class ids in ``[0, num_classes)``, any shape.
        num_classes: the number of classes; default ``max(x) + 1``.

    Returns:
        A float array of shape ``x.shape + (num_classes,)`` (float64, as Keras's NumPy path returns).

    Example:
        >>> to_categorical([[1], [0]]).shape
        (2, 2)
    """
    ids = _host(x)
    if ids.dtype.kind == "f":
        if not np.all(np.isfinite(ids)) or not np.all(ids == np.round(ids)):
            raise ValueError(f"to_categorical expects integer class ids. Received non-integer values, e.g. "
                             f"{ids[np.where(ids != np.round(ids))][:3].tolist()}")
    elif ids.dtype.kind not in "iub":
        raise TypeError(f"to_categorical expects integer class ids. Received an array of dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    shape = ids.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = ids.reshape(-1)
    if num_classes is None:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    num_classes = int(num_classes)
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        bad = int(flat.min()) if flat.min() < 0 else int(flat.max())
        raise ValueError(f"to_categorical: class id {bad} is outside [0, {num_classes}). Received: "
                         f"num_classes={num_classes}")
    out = np.zeros((flat.size, num_classes), np.float64)
    out[np.arange(flat.size), flat] = 1.0
    return out.reshape(shape + (num_classes,))


def normalize(x: Any, axis: int = -1, order: int = 2) -> Any:
    """``x`` divided by its ``order``-norm along ``axis`` (rows of norm 0 are left as they are).

    As in Keras, a host array gives a NumPy array and a tensor a tensor: a symbolic tensor (inside a traced
    loss or ``call``, e.g. keras.io's supervised contrastive loss) or an eager one goes to ``ops.normalize``.

    Example:
        >>> normalize(np.array([[3.0, 4.0]])).tolist()
        [[0.6, 0.8]]
    """
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"Argument `order` must be an int >= 1. Received: order={order}")
    from ..eager_tensor import EagerTensor
    from ..graph.value import Value

    if isinstance(x, (Value, EagerTensor)) or hasattr(x, "__onnx_value__"):   # a tensor or a Variable
        from ..ops import normalize as tensor_normalize

        return tensor_normalize(x, axis=axis, order=order)
    arr = _host(x)
    arr = arr.astype(np.float32) if arr.dtype.kind in "iub" else arr
    norm = np.atleast_1d(np.linalg.norm(arr, order, axis))
    norm[norm == 0] = 1
    return arr / np.expand_dims(norm, axis if axis is not None else -1)

"""Initializers given as values: ``keras.initializers.get(array_or_tensor)`` (Keras 3 takes a tensor or NumPy
array as the initial value itself, for exactly its own shape)."""
from __future__ import annotations

__all__ = ["is_value", "value_initializer"]

from collections.abc import Callable
from typing import Any

import numpy as np


def is_value(identifier: Any) -> bool:
    """Whether ``identifier`` is an array or eager tensor (Keras: a backend tensor, a NumPy array or scalar);
    a Variable is not one, as in Keras."""
    from .eager_tensor import EagerTensor

    return isinstance(identifier, (np.ndarray, np.generic, EagerTensor))


def value_initializer(identifier: Any) -> Callable[..., np.ndarray]:
    """An initializer returning ``identifier`` cast to the dtype asked for, refusing any other shape.

    Example:
        >>> import numpy as np
        >>> init = value_initializer(np.eye(2))
        >>> init((2, 2), dtype="float32").tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    value = np.asarray(identifier)

    def initialize_fn(shape: Any, dtype: Any = None) -> np.ndarray:
        if tuple(int(d) for d in shape) != value.shape:
            raise ValueError(f"Expected `shape` to be {value.shape} for direct tensor as initializer. "
                             f"Received shape={shape}")
        from .backend_config import floatx

        return value.astype(floatx() if dtype is None else dtype)

    return initialize_fn

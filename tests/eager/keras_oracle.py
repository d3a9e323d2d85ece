"""Real Keras 3 on its torch backend, the oracle of the eager tests (skipped cleanly without it)."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
# The oracle computes in float32 on the CPU: on a GPU machine Keras's torch backend would otherwise use CUDA
# kernels (TF32 matmuls, cuDNN LSTMs) whose rounding is not the reference.
os.environ.setdefault("KERAS_TORCH_DEVICE", "cpu")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":   # pragma: no cover - another backend was chosen before us
    pytest.skip("these comparisons run Keras on its torch backend", allow_module_level=True)


def to_numpy(x) -> np.ndarray:
    """A Keras (torch) result or a structure of them as numpy."""
    if isinstance(x, (list, tuple)):
        return [to_numpy(t) for t in x]
    return np.asarray(keras.ops.convert_to_numpy(x))


def copy_weights(src, dst, seed: int = 0, scale: float = 0.5) -> None:
    """Give ``src`` random non-trivial weights (positive variances kept positive) and copy them into ``dst``."""
    rng = np.random.default_rng(seed)
    values = []
    for w in src.weights:
        shape = tuple(w.shape)
        name = w.name if hasattr(w, "name") else ""
        if "variance" in name:
            values.append(rng.uniform(0.5, 1.5, shape).astype("float32"))
        else:
            values.append(rng.normal(0, scale, shape).astype("float32"))
    src.set_weights(values)
    dst.set_weights(values)

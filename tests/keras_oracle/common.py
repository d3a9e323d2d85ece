"""Shared set-up of the tests that compare onnxforge with real Keras 3 (torch backend) on the same weights."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":   # pragma: no cover - another backend was chosen before us
    pytest.skip("these comparisons run Keras on its torch backend", allow_module_level=True)

import onnxforge  # noqa: E402
from onnxforge import keras as fkeras  # noqa: E402

LIBS = {"keras": keras, "onnxforge": fkeras}


def copy_weights(src, dst) -> None:
    """Keras weights into the same onnxforge model (same layer order and layouts)."""
    weights = src.get_weights()
    assert [w.shape for w in weights] == [tuple(w.shape) for w in dst.get_weights()]
    dst.set_weights(weights)


def random_weights(model, seed: int = 0, scale: float = 0.5) -> None:
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, scale, w.shape).astype(w.dtype) for w in model.get_weights()])


def max_diff(a, b) -> float:
    return max(float(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).max())
               for x, y in zip(a, b))


__all__ = ["keras", "fkeras", "onnxforge", "LIBS", "copy_weights", "random_weights", "max_diff"]

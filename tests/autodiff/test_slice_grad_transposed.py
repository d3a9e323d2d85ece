"""The Slice gradient (a Pad) next to the Transposes of a channels-last conv: onnxruntime's transpose optimizer
ignores a Pad's ``axes`` input, so the gradient pads every axis. The model is NASNet's factorized reduction
(ZeroPadding2D + Cropping2D shifting a conv's output by one pixel); one SGD step matches Keras's."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import onnxforge as of  # noqa: E402


def _model(lib):
    L = lib.layers
    x = L.Input((8, 8, 3))
    p = L.Conv2D(4, 1, name="c")(x)
    p1 = L.AveragePooling2D((1, 1), strides=(2, 2))(p)
    p2 = L.Cropping2D(((1, 0), (1, 0)))(L.ZeroPadding2D(((0, 1), (0, 1)))(p))
    p2 = L.AveragePooling2D((1, 1), strides=(2, 2))(p2)
    y = L.Conv2D(2, 3)(L.concatenate([p1, p2]))
    return (of.models.Model if lib is of else keras.Model)(x, L.GlobalAveragePooling2D()(y))


def test_one_sgd_step_matches_keras():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 8, 8, 3)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32)
    theirs, ours = _model(keras), _model(of)
    ours.set_weights(theirs.get_weights())
    theirs.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    ours.compile(optimizer=of.optimizers.SGD(0.1), loss="mse")
    theirs.train_on_batch(x, y)
    ours.train_on_batch(x, y)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

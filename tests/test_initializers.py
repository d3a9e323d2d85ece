"""Initializers: Keras 3's snake-case names (``keras.initializers.he_normal()``) are the classes, as in Keras."""
from __future__ import annotations

import numpy as np

from onnxforge import initializers
from tests.keras_oracle.common import fkeras, keras


def test_snake_case_names_are_the_classes_keras_exports():
    theirs = {k for k in dir(keras.initializers) if k[0].islower() and isinstance(getattr(keras.initializers, k), type)}
    theirs -= {"stft"}   # STFT kernels: not an onnxforge initializer
    for name in sorted(theirs):
        mine = getattr(fkeras.initializers, name)
        assert mine.__name__ == getattr(keras.initializers, name).__name__, name
        assert name in initializers.__all__ and initializers.get(name).__class__ is mine


def test_snake_case_calls_build_seeded_initializers():
    init = initializers.he_normal(seed=3)
    assert isinstance(init, initializers.HeNormal) and init.seed == 3
    assert np.array_equal(init((4, 2)), initializers.HeNormal(seed=3)((4, 2)))
    assert initializers.serialize(initializers.glorot_uniform())["class_name"] == "GlorotUniform"
    layer = fkeras.layers.Dense(3, kernel_initializer=initializers.zeros())
    layer.build((None, 2))
    assert not layer.kernel.numpy().any()

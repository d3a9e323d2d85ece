"""Learning-rate schedules called on an array of steps return the rate of each, as Keras 3's and TensorFlow's do
on a tensor: the overfit-and-underfit tutorial plots ``lr_schedule(np.linspace(0, 100000))``. Before, every
built-in schedule raised TypeError ("only 0-dimensional arrays can be converted to Python scalars")."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import fkeras, keras

STEPS = np.linspace(0, 100000)
SCHEDULES = {
    "InverseTimeDecay": dict(initial_learning_rate=0.001, decay_steps=20 * 1000, decay_rate=1, staircase=False),
    "ExponentialDecay": dict(initial_learning_rate=0.1, decay_steps=7000, decay_rate=0.5, staircase=True),
    "CosineDecay": dict(initial_learning_rate=0.1, decay_steps=50000, alpha=0.1, warmup_target=0.2,
                        warmup_steps=1000),
    "PiecewiseConstantDecay": dict(boundaries=[100, 40000], values=[1.0, 0.5, 0.1]),
    "PolynomialDecay": dict(initial_learning_rate=0.1, decay_steps=60000, end_learning_rate=0.01, power=2.0),
    "CosineDecayRestarts": dict(initial_learning_rate=0.1, first_decay_steps=9000),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_of_an_array_matches_keras(name):
    reference = getattr(keras.optimizers.schedules, name)(**SCHEDULES[name])
    try:
        want = keras.ops.convert_to_numpy(reference(STEPS))
    except RuntimeError:   # Keras's warmup CosineDecay and PiecewiseConstantDecay take one step at a time on torch
        want = np.array([float(keras.ops.convert_to_numpy(reference(s))) for s in STEPS], np.float32)
    schedule = getattr(fkeras.optimizers.schedules, name)(**SCHEDULES[name])
    got = schedule(STEPS)
    assert got.shape == want.shape == STEPS.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=2e-6)
    grid = schedule(STEPS.reshape(5, 10))
    assert grid.shape == (5, 10)
    assert isinstance(schedule(7), float) and schedule(np.int64(7)) == schedule(7)

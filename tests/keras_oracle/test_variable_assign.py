"""``Variable.assign`` / ``assign_add`` and Variable arithmetic inside a custom ``train_step``, against
Keras 3: the assignments happen every step, in order (a later one sees an earlier one), and the values
come back to the host."""
from __future__ import annotations

import numpy as np
import pytest

from .common import fkeras, keras

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def _counter(K):
    class Counter(K.Model):
        def __init__(self):
            super().__init__()
            self.dense = K.layers.Dense(1, kernel_initializer="ones")
            self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False, name="steps")
            self.total = self.add_weight(shape=(2,), initializer="zeros", trainable=False, name="total")

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            x, y = data[0], data[1]
            err = K.ops.stop_gradient(K.ops.mean(K.ops.square(K.ops.subtract(self(x), y))))
            self.steps.assign_add(1.0)
            self.total.assign(self.total + err)                 # Variable arithmetic
            self.total.assign(self.total * self.steps)          # sees both earlier assignments
            self.total.assign_sub(K.ops.ones((2,)) * 0.5)
            return {"steps": self.steps * 1.0, "first": self.total[0] + 0.0}

    model = Counter()
    model.compile(optimizer="sgd")
    return model


def test_assignments_in_a_custom_step_match_keras():
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    y = np.zeros((4, 1), "float32")
    k, f = _counter(keras), _counter(fkeras)
    for _ in range(3):
        logs_k = k.train_on_batch(x, y, return_dict=True)
        logs_f = f.train_on_batch(x, y, return_dict=True)
        assert logs_f == pytest.approx({key: float(v) for key, v in logs_k.items()}, rel=1e-5)
    assert float(f.steps.numpy()) == float(keras.ops.convert_to_numpy(k.steps)) == 3.0
    np.testing.assert_allclose(f.total.numpy(), keras.ops.convert_to_numpy(k.total), rtol=1e-5)


def test_host_assign_and_arithmetic_outside_a_trace():
    from onnxforge import Variable

    v = Variable(np.zeros(2, "float32"), name="v")
    v.assign_add(np.ones(2))
    v.assign_sub(0.5)
    np.testing.assert_allclose(v.numpy(), [0.5, 0.5])
    np.testing.assert_allclose(v * 2.0 + 1.0, [2.0, 2.0])
    np.testing.assert_allclose(np.ones(2) + v, [1.5, 1.5])

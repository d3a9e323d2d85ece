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


def _compute_sum(K):
    class ComputeSum(K.layers.Layer):   # "Making new layers and models via subclassing", verbatim
        def __init__(self, input_dim):
            super().__init__()
            self.total = self.add_weight(initializer="zeros", shape=(input_dim,), trainable=False)

        def call(self, inputs):
            self.total.assign_add(K.ops.sum(inputs, axis=0))
            return self.total

    return ComputeSum(2)


def test_assign_in_an_eager_layer_call_persists_like_keras():
    x = np.array([[1.0, 2.0], [3.0, 5.0]], "float32")
    k, f = _compute_sum(keras), _compute_sum(fkeras)
    for _ in range(2):   # each call adds and returns the updated total: [4, 7], then [8, 14]
        np.testing.assert_allclose(np.asarray(f(x)), keras.ops.convert_to_numpy(k(x)))
    np.testing.assert_allclose(f.total.numpy(), [8.0, 14.0])


def _counted_model(K):
    class Counter(K.layers.Layer):
        def build(self, shape):
            self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count")

        def call(self, x):
            self.count.assign(self.count + 1.0)    # no `training` guard: Keras assigns in every mode
            return x * 2.0

    inputs = K.Input((3,))
    model = K.Model(inputs, K.layers.Dense(2, kernel_initializer="ones")(Counter()(inputs)))
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_assign_in_call_persists_through_predict_evaluate_fit_and_calls():
    k, f = _counted_model(keras), _counted_model(fkeras)
    x, y = np.ones((10, 3), "float32"), np.ones((10, 2), "float32")
    steps = [lambda m: m.predict(x, batch_size=4, verbose=0),           # 3 batches
             lambda m: m.evaluate(x, y, batch_size=5, verbose=0),       # 2
             lambda m: m.fit(x, y, batch_size=5, verbose=0),            # 2
             lambda m: m(x[:1]),                                        # 1
             lambda m: m.predict(np.ones((256, 3), "float32"), batch_size=128, verbose=0)]  # 2, big batches
    for step in steps:
        step(k), step(f)
        assert float(f.layers[1].count.numpy()) == float(keras.ops.convert_to_numpy(k.layers[1].count))
    assert float(f.layers[1].count.numpy()) == 10.0

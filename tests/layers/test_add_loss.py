"""``Layer.add_loss`` and ``layer.losses`` with Keras 3 semantics: added losses join the training loss
(and ``val_loss``), ``compile()`` without a loss trains on them alone (Keras's endpoint-layer pattern),
and ``losses`` lists them, activity and weight regularization included, in custom training steps."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

import onnxforge  # noqa: E402
import onnxforge.keras as fkeras  # noqa: E402

R = np.random.default_rng(6)
X = R.normal(size=(8, 3)).astype("float32")
Y = R.normal(size=(8, 2)).astype("float32")


def _penalty_layer(lib):
    class Penalized(lib.layers.Layer):
        def __init__(self, rate, **kwargs):
            super().__init__(**kwargs)
            self.rate = rate

        def call(self, x):
            self.add_loss(lib.ops.mean(lib.ops.square(x)) * self.rate)
            self.add_loss(lib.ops.sum(lib.ops.abs(x)) * 0.01)
            return x
    return Penalized


def _model(lib, loss_layer=True):
    x = lib.Input((3,))
    h = lib.layers.Dense(4, activation="tanh")(x)
    if loss_layer:
        h = _penalty_layer(lib)(0.5)(h)
    return lib.Model(x, lib.layers.Dense(2, kernel_regularizer=lib.regularizers.L2(0.1))(h))


def _pair(loss_layer=True):
    keras.utils.set_random_seed(0)
    k, f = _model(keras, loss_layer), _model(fkeras, loss_layer)
    f.set_weights(k.get_weights())
    return k, f


def test_added_losses_join_the_training_loss_like_keras():
    k, f = _pair()
    k.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    f.compile(optimizer=onnxforge.optimizers.SGD(0.1), loss="mse")
    for _ in range(2):
        np.testing.assert_allclose(f.train_on_batch(X, Y), k.train_on_batch(X, Y), rtol=1e-5)
        for a, b in zip(f.get_weights(), k.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f.evaluate(X, Y, verbose=0), k.evaluate(X, Y, verbose=0), rtol=1e-5)


def _endpoint(lib):
    class LogisticEndpoint(lib.layers.Layer):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.loss_fn = lib.losses.BinaryCrossentropy(from_logits=True)

        def call(self, targets, logits):
            self.add_loss(self.loss_fn(targets, logits))
            return lib.ops.softmax(logits)

    inputs, targets = lib.Input((3,), name="inputs"), lib.Input((4,), name="targets")
    logits = lib.layers.Dense(4)(inputs)
    return lib.Model([inputs, targets], LogisticEndpoint(name="predictions")(targets, logits))


def test_compile_without_a_loss_trains_on_added_losses_like_keras():
    keras.utils.set_random_seed(1)
    k, f = _endpoint(keras), _endpoint(fkeras)
    f.set_weights(k.get_weights())
    k.compile(optimizer=keras.optimizers.Adam(0.05))
    f.compile(optimizer=onnxforge.optimizers.Adam(0.05))
    data = {"inputs": R.random((6, 3)).astype("float32"), "targets": (R.random((6, 4)) > 0.5).astype("float32")}
    expected = k.fit([data["inputs"], data["targets"]], epochs=3, batch_size=3, shuffle=False, verbose=0).history
    got = f.fit([data["inputs"], data["targets"]], epochs=3, batch_size=3, shuffle=False, verbose=0).history
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=1e-5)


def test_losses_in_a_custom_train_step_include_added_and_regularization_losses():
    class Step(fkeras.Model):
        def train_step(self, data):
            x, y = data
            with onnxforge.GradientTape() as tape:
                pred = self(x, training=True)
                extra = onnxforge.ops.sum(onnxforge.ops.stack(self.losses))
                loss = onnxforge.ops.mean(onnxforge.ops.square(pred - y)) + extra
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": loss, "n_losses": onnxforge.ops.cast(len(self.losses), "float32")}

    keras.utils.set_random_seed(2)
    k = _model(keras)
    x = fkeras.Input((3,))
    h = fkeras.layers.Dense(4, activation="tanh")(x)
    h = _penalty_layer(fkeras)(0.5)(h)
    f = Step(x, fkeras.layers.Dense(2, kernel_regularizer=fkeras.regularizers.L2(0.1))(h))
    f.set_weights(k.get_weights())
    k.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    f.compile(optimizer=onnxforge.optimizers.SGD(0.1))
    logs = f.train_on_batch(X, Y, return_dict=True)
    assert logs["n_losses"] == 3.0  # two add_loss values, one kernel regularizer
    np.testing.assert_allclose(logs["loss"], k.train_on_batch(X, Y), rtol=1e-5)
    for a, b in zip(f.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_losses_outside_a_trace_are_the_weight_penalties_like_keras():
    k, f = _pair(loss_layer=False)
    expected = [float(keras.ops.convert_to_numpy(v)) for v in k.losses]
    assert f.losses == pytest.approx(expected, rel=1e-6)


def test_add_loss_refuses_non_tensors():
    from onnxforge.graph import GraphBuilder
    from onnxforge.tracing import TraceContext

    layer = onnxforge.layers.Dense(2)
    with TraceContext(GraphBuilder(), training=True).active(), pytest.raises(ValueError, match="add_loss"):
        layer.add_loss(3.0)


def test_eager_calls_leave_this_calls_losses_like_keras():
    x = X[:4]
    for lib in (keras, fkeras):
        layer = _penalty_layer(lib)(0.5)
        layer(x)
        first = [float(keras.ops.convert_to_numpy(v)) for v in layer.losses]
        layer(x * 2.0)
        second = [float(keras.ops.convert_to_numpy(v)) for v in layer.losses]
        if lib is keras:
            expected = (first, second)
        else:
            got = (first, second)
    assert len(got[0]) == 2 and len(got[1]) == 2  # cleared at each call, as Keras does
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-5)

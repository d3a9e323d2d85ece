"""Variables assigned to a layer's attributes are its weights (``layers/variable_tracking.py``), as in Keras 3:
listed in Keras's order, trained by the optimizer, saved where Keras reads them."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

import onnxforge.keras as fkeras  # noqa: E402

X = np.linspace(-1.0, 1.0, 24, dtype=np.float32).reshape(8, 3)
Y = (X * 2.0 + 0.5).astype(np.float32)


def _affine_class(lib):
    class Affine(lib.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.alpha = lib.Variable(np.full((3,), 0.5, np.float32), name="alpha")
            self.shifts = [lib.Variable(np.zeros(3, np.float32), name="s0"),
                           lib.Variable(np.full(3, 0.1, np.float32), name="s1")]
            self.table = {"frozen": lib.Variable(np.full(3, 2.0, np.float32), name="frozen", trainable=False)}

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

        def call(self, x):
            return x * self.alpha * self.w + self.shifts[0] + self.shifts[1] * self.table["frozen"]

    return Affine


def _model(lib):
    model = lib.Sequential([lib.Input((3,)), _affine_class(lib)(name="affine")])
    model.compile(optimizer=lib.optimizers.SGD(0.1), loss="mse")
    return model


def _short(weights):
    return [w.name.split("/")[-1] for w in weights]


def test_attribute_variables_are_weights_in_tracking_order():
    layer = _model(fkeras).layers[0]
    assert _short(layer.weights) == ["alpha", "s0", "s1", "w", "frozen"]
    assert _short(layer.trainable_weights) == ["alpha", "s0", "s1", "w"]
    assert _short(layer.non_trainable_weights) == ["frozen"]


def test_containers_filled_later_and_frozen_layers():
    class Later(fkeras.layers.Layer):
        def __init__(self):
            super().__init__(trainable=False)
            self.parts = []

        def build(self, input_shape):
            self.parts.append(fkeras.Variable(np.ones(2, np.float32), name="part"))

    layer = Later()
    layer.build((None, 2))
    assert _short(layer.weights) == ["part"] and layer.trainable_weights == []
    layer.trainable = True
    assert _short(layer.trainable_weights) == ["part"]


def test_attribute_variables_train_like_keras():
    keras = pytest.importorskip("keras")
    results = {}
    for lib in (fkeras, keras):
        model = _model(lib)
        model.fit(X, Y, batch_size=4, epochs=3, shuffle=False, verbose=0)
        results[lib] = model.layers[0]
    ours, theirs = results[fkeras], results[keras]
    assert _short(ours.weights) == _short(theirs.weights)
    assert _short(ours.trainable_weights) == _short(theirs.trainable_weights)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(ours.alpha.numpy(), 0.5)   # it did train


def test_saved_weights_load_into_keras_and_back(tmp_path):
    keras = pytest.importorskip("keras")
    ours = _model(fkeras)
    ours.fit(X, Y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    path = str(tmp_path / "affine.weights.h5")
    ours.save_weights(path)
    theirs = _model(keras)
    theirs.load_weights(path)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)
    again = _model(fkeras)
    again.load_weights(path)
    for a, b in zip(ours.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.asarray(again.predict(X, verbose=0)), np.asarray(ours.predict(X, verbose=0)))


def test_two_instances_own_their_variables():
    model = fkeras.Sequential([fkeras.Input((3,)), _affine_class(fkeras)(name="a"), _affine_class(fkeras)(name="b")])
    assert [w.path for w in model.weights][:2] == ["a/alpha", "a/s0"] and "b/alpha" in [w.path for w in model.weights]
    model.compile(optimizer="sgd", loss="mse")
    model.fit(X, Y, epochs=1, verbose=0)
    assert not np.allclose(model.layers[1].alpha.numpy(), 0.5)

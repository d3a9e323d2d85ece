"""Keras 3 behaviours that keras.io programs (examples/generative, structured_data, timeseries, keras_recipes)
rely on, each compared with real Keras 3 on its torch backend: the ``training`` flag a layer sees when a
custom ``test_step`` / ``predict_step`` calls it without one (keras.io "Density estimation using Real NVP"
declares ``call(self, x, training=True)``), and the shape checks of ``keras.Input``."""
from __future__ import annotations

import numpy as np
import pytest

from .common import LIBS


def _step_model(lib, nested: bool):
    """A model whose steps call a layer (or itself) without ``training=``; the outputs tell which flag won."""
    ops = lib.ops

    class Probe(lib.layers.Layer):
        def call(self, x, training=False):
            return x * 2.0 if training else x

    class Flow(lib.Model):
        def __init__(self):
            super().__init__()
            self.inner = lib.Sequential([Probe()]) if nested else None
            self.tracker = lib.metrics.Mean(name="v")

        def call(self, x, training=True):   # the Real NVP signature: training unless told otherwise
            if self.inner is not None:
                return self.inner(x)         # inherits this call's training=True (its own default is False)
            return x * 3.0 if training else x

        @property
        def metrics(self):
            return [self.tracker]

        def test_step(self, data):
            self.tracker.update_state(ops.mean(self(data)))
            return {"v": self.tracker.result()}

        def predict_step(self, data):
            return self(data)

    model = Flow()
    model.build((None, 3))
    model.compile(optimizer="sgd")
    return model


@pytest.mark.parametrize("nested", [False, True])
def test_custom_steps_call_layers_at_their_own_training_default(nested):
    x = np.arange(12, dtype="float32").reshape(4, 3) + 1.0
    got = {}
    for name, lib in LIBS.items():
        model = _step_model(lib, nested)
        got[name] = (model.evaluate(x, batch_size=4, verbose=0, return_dict=True)["v"],
                     model.predict(x, batch_size=4, verbose=0))
    expect = (2.0 if nested else 3.0) * x   # Keras runs the steps' layers with training=True here
    np.testing.assert_allclose(got["keras"][1], expect)
    np.testing.assert_allclose(got["onnxforge"][1], got["keras"][1], rtol=1e-6)
    np.testing.assert_allclose(got["onnxforge"][0], got["keras"][0], rtol=1e-6)


@pytest.mark.parametrize("kwargs", [{"shape": 2}, {"batch_shape": 3}, {"shape": (2.0,)}, {"shape": ("a",)},
                                    {"shape": (4, -1)}])
def test_input_refuses_what_keras_cannot_convert_to_a_shape(kwargs):
    # keras.io's Real NVP writes Input(shape=2) (tf.keras 2 took an int); Keras 3 refuses it.
    messages = {}
    for name, lib in LIBS.items():
        with pytest.raises(ValueError, match="Cannot convert") as info:
            lib.Input(**kwargs)
        messages[name] = str(info.value)
    assert messages["onnxforge"] == messages["keras"]


def test_input_takes_lists_and_numpy_dims_as_keras_does():
    shapes = {name: lib.Input(shape=[np.int64(3), None]).shape for name, lib in LIBS.items()}
    assert shapes["onnxforge"] == shapes["keras"] == (None, 3, None)


@pytest.mark.parametrize("flag", [True, 1, 2.0, "yes"])
def test_a_python_scalar_passed_positionally_is_refused_as_keras_does(flag):
    # keras.io GAN-ADA (a tf.keras 2 page) calls self.augmenter(images, training): Keras 3 refuses it.
    x = np.ones((2, 3), "float32")
    messages = {}
    for name, lib in LIBS.items():
        class Probe(lib.layers.Layer):
            def call(self, inputs, training=None):
                return inputs

        with pytest.raises(ValueError, match="Only input tensors may be passed as positional") as info:
            Probe()(x, flag)
        messages[name] = str(info.value)
        assert np.asarray(Probe()(x, training=bool(flag))).shape == (2, 3)   # as a keyword it is fine
    assert messages["onnxforge"] == messages["keras"]


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_resizing_between_convolutions_loads_and_trains_as_in_keras(interpolation):
    # keras.io GAN-ADA's KID encoder (and any CNN with Resizing inside): Conv2D -> Rescaling -> Resizing ->
    # Conv2D made a program onnxruntime's layout optimizer refused to load.
    x = np.random.default_rng(0).random((4, 8, 8, 2)).astype("float32")
    y = np.random.default_rng(1).random((4, 10, 10, 2)).astype("float32")
    out = {}
    for name, lib in LIBS.items():
        layers = lib.layers
        inp = lib.Input((8, 8, 2))
        h = layers.Rescaling(2.0)(layers.Conv2D(3, 3, padding="same")(inp))
        h = layers.Conv2D(2, 3)(layers.Resizing(12, 12, interpolation=interpolation)(h))
        model = lib.Model(inp, h)
        model.set_weights([np.random.default_rng(i).normal(0, 0.3, w.shape).astype("float32")
                           for i, w in enumerate(model.get_weights())])
        model.compile(optimizer=lib.optimizers.SGD(0.1), loss="mse")
        before = np.asarray(model.predict(x, verbose=0))
        loss = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
        out[name] = (before, loss, np.asarray(model.predict(x, verbose=0)))
    for got, want in zip(out["onnxforge"], out["keras"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

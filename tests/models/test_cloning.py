"""``keras.models.clone_model`` against real Keras 3 (torch backend): the same architecture and configs, fresh
weights, shared layers kept shared, ``clone_function`` / ``call_function`` / ``input_tensors`` / ``recursive``,
subclassed models from their config, and the errors Keras raises."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS, keras


def _layer_summary(model) -> list:
    out = []
    for layer in model.layers:
        config = {k: v for k, v in layer.get_config().items() if k in ("name", "units", "rate", "activation")}
        out.append((type(layer).__name__.replace("Functional", "Model"), config))
    return out


def _mlp(k):
    return k.Sequential([k.Input((3,), name="inp"), k.layers.Dense(4, activation="relu", name="d1"),
                         k.layers.Dense(2, name="d2")], name="seq")


def _shared(k):
    a, b = k.Input((3,), name="a"), k.Input((3,), name="b")
    shared = k.layers.Dense(2, name="shared")
    return k.Model({"a": a, "b": b}, k.layers.Add(name="add")([shared(a), shared(b)]), name="siamese")


@pytest.mark.parametrize("build", [_mlp, _shared])
def test_same_architecture_fresh_weights(build):
    rng = np.random.default_rng(0)
    summaries = {}
    for lib, k in LIBS.items():
        model = build(k)
        clone = k.models.clone_model(model)
        summaries[lib] = (type(clone).__name__.replace("Functional", "Model"), clone.name, _layer_summary(clone),
                          clone.count_params(), len(clone.weights), [tuple(w.shape) for w in clone.get_weights()])
        assert all(c is not m for c, m in zip(clone.layers, model.layers) if type(c).__name__ != "InputLayer")
        kernels = [w for w in clone.get_weights() if w.ndim == 2]
        assert all(not np.array_equal(c, s) for c, s in zip(kernels, [w for w in model.get_weights() if w.ndim == 2]))
        # With the source's weights the copy computes the same function.
        clone.set_weights(model.get_weights())
        x = rng.normal(size=(5, 3)).astype("float32")
        feed = {"a": x, "b": x[::-1].copy()} if build is _shared else x
        np.testing.assert_allclose(clone.predict(feed, verbose=0), model.predict(feed, verbose=0), atol=1e-6)
    assert summaries["onnxforge"] == summaries["keras"]


def test_clone_trains_and_leaves_source_alone():
    from onnxforge import keras as fk

    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = x @ rng.normal(size=(3, 2)).astype("float32")
    model = _mlp(fk)
    model.compile(fk.optimizers.Adam(learning_rate=0.05), "mse")
    before = [w.copy() for w in model.get_weights()]
    clone = fk.models.clone_model(model)
    # Keras compiles the copy of a compiled model the same way, with a new optimizer.
    assert clone.compiled and clone.optimizer is not model.optimizer
    assert float(clone.optimizer.learning_rate) == pytest.approx(0.05)
    history = clone.fit(x, y, epochs=15, batch_size=16, verbose=0).history["loss"]
    assert history[-1] < 0.7 * history[0]
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_shared_layer_stays_shared():
    from onnxforge import keras as fk

    clone = fk.models.clone_model(_shared(fk))
    shared = clone.get_layer("shared")
    assert len(shared._inbound_nodes) == 2 and len(clone.weights) == 2
    x = np.ones((2, 3), "float32")
    out = clone.predict({"a": x, "b": x}, verbose=0)
    np.testing.assert_allclose(out, 2 * shared(x), atol=1e-6)


def _wider(k):
    def clone_function(layer):
        config = layer.get_config()
        if isinstance(layer, k.layers.Dense):
            config["units"] = 5 if config["name"] == "d1" else config["units"]
        return layer.__class__.from_config(config)
    return clone_function


def test_clone_function_changes_a_config():
    shapes = {}
    for lib, k in LIBS.items():
        clone = k.models.clone_model(_mlp(k), clone_function=_wider(k))
        x = k.Input((3,))
        fn = k.Model(x, k.layers.Dense(1)(x))
        fclone = k.models.clone_model(fn, clone_function=lambda layer, k=k: k.layers.Dense(7)
                                      if isinstance(layer, k.layers.Dense) else layer)
        shapes[lib] = ([tuple(w.shape) for w in clone.get_weights()], tuple(fclone.output.shape))
    assert shapes["onnxforge"] == shapes["keras"]
    assert shapes["keras"][0][0] == (3, 5)


def test_call_function_inserts_layers_and_reuse_keeps_weights():
    names = {}
    for lib, k in LIBS.items():
        model = _shared(k)

        def call_function(layer, *args, k=k, **kwargs):
            out = layer(*args, **kwargs)
            return k.layers.Dropout(0.5)(out) if isinstance(layer, k.layers.Dense) else out

        clone = k.models.clone_model(model, clone_function=lambda layer: layer, call_function=call_function)
        assert clone.get_layer("shared") is model.get_layer("shared")
        x = np.ones((2, 3), "float32")
        np.testing.assert_allclose(clone.predict({"a": x, "b": x}, verbose=0),
                                   model.predict({"a": x, "b": x}, verbose=0), atol=1e-6)
        names[lib] = [type(layer).__name__ for layer in clone.layers]
    assert names["onnxforge"] == names["keras"]


def test_input_tensors():
    for lib, k in LIBS.items():
        x = k.Input((3,), name="new_in")
        seq = k.models.clone_model(_mlp(k), input_tensors=x)
        assert type(seq).__name__ == "Sequential" and seq.inputs[0] is x, lib
        a, b = k.Input((3,), name="a2"), k.Input((3,), name="b2")
        fn = k.models.clone_model(_shared(k), input_tensors={"a": a, "b": b})
        assert [t is u for t, u in zip(fn.inputs, (a, b))] == [True, True], lib
        with pytest.raises(ValueError, match="same structure"):
            k.models.clone_model(_shared(k), input_tensors=[a])
        with pytest.raises(ValueError, match="single tensor"):
            k.models.clone_model(_mlp(k), input_tensors=[a, b])


def test_recursive():
    shapes = {}
    for lib, k in LIBS.items():
        inner = k.Sequential([k.Input((3,)), k.layers.Dense(2, name="d1")], name="inner")
        z = k.Input((3,))
        outer = k.Model(z, inner(z), name="outer")
        shapes[lib] = [tuple(k.models.clone_model(outer, clone_function=_wider(k), recursive=r).output.shape)
                       for r in (False, True)]
        assert k.models.clone_model(outer, recursive=True).layers[1] is not inner
    assert shapes["onnxforge"] == shapes["keras"] == [(None, 2), (None, 5)]


def _custom_layer_classes(k):
    class Scale(k.layers.Layer):
        def __init__(self, factor=1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="random_normal")

        def call(self, x):
            return x * self.w * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    class Shift(k.layers.Layer):   # no get_config: Keras's automatic config records `offset`
        def __init__(self, offset=0.0, **kwargs):
            super().__init__(**kwargs)
            self.offset = offset

        def call(self, x):
            return x + self.offset

    return Scale, Shift


def test_custom_layers_with_and_without_get_config():
    seen = {}
    for lib, k in LIBS.items():
        scale_cls, shift_cls = _custom_layer_classes(k)
        x = k.Input((3,))
        model = k.Model(x, shift_cls(offset=2.5, name="shift")(scale_cls(factor=3.0, name="scale")(x)))
        clone = k.models.clone_model(model)
        scale, shift = clone.get_layer("scale"), clone.get_layer("shift")
        assert isinstance(scale, scale_cls) and isinstance(shift, shift_cls)
        assert not np.array_equal(scale.get_weights()[0], model.get_layer("scale").get_weights()[0])
        clone.set_weights(model.get_weights())
        data = np.arange(6, dtype="float32").reshape(2, 3)
        np.testing.assert_allclose(clone.predict(data, verbose=0), model.predict(data, verbose=0), atol=1e-6)
        seen[lib] = (scale.factor, shift.offset, shift.get_config()["offset"])
    assert seen["onnxforge"] == seen["keras"] == (3.0, 2.5, 2.5)


def test_subclassed_models():
    results = {}
    for lib, k in LIBS.items():
        class Net(k.Model):
            def __init__(self, units=3, **kwargs):
                super().__init__(**kwargs)
                self.units = units
                self.dense = k.layers.Dense(units)

            def call(self, x):
                return self.dense(x)

            def get_config(self):
                return {**super().get_config(), "units": self.units}

        class Plain(k.Model):   # no get_config: plain constructor arguments are recorded
            def __init__(self, width=2, **kwargs):
                super().__init__(**kwargs)
                self.width = width
                self.dense = k.layers.Dense(width)

            def call(self, x):
                return self.dense(x)

        net, plain = Net(4, name="net"), Plain(width=6)
        net(np.zeros((1, 2), "float32"))
        clone, plain_clone = k.models.clone_model(net), k.models.clone_model(plain)
        results[lib] = (type(clone).__name__, clone.name, clone.units, clone.built,
                        [tuple(w.shape) for w in clone.get_weights()], type(plain_clone).__name__)
        # Keras 3.15 records a subclassed *model*'s defaults (width=2) where it records a layer's given
        # arguments; onnxforge records the given arguments for both, which is what the user asked for.
        if lib == "onnxforge":
            assert plain_clone.width == 6
        with pytest.raises(ValueError, match="only supported for Sequential models or Functional"):
            k.models.clone_model(net, clone_function=lambda layer: layer)
        with pytest.raises(ValueError, match="only supported for Functional models"):
            k.models.clone_model(net, call_function=lambda layer, *a, **kw: layer(*a, **kw))
    assert results["onnxforge"] == results["keras"]


def test_errors_match_keras():
    for lib, k in LIBS.items():
        with pytest.raises(ValueError, match="not supported with Sequential models"):
            k.models.clone_model(_mlp(k), call_function=lambda layer, *a, **kw: layer(*a, **kw))
        with pytest.raises(ValueError, match="Unexpected keyword argument"):
            k.models.clone_model(_mlp(k), bogus=1)
        x = k.Input((3,))
        with pytest.raises(ValueError, match="input_tensor"):
            k.Input(shape=(4,), tensor=x)


def test_unbuilt_sequential_stays_unbuilt():
    built = {}
    for lib, k in LIBS.items():
        clone = k.models.clone_model(k.Sequential([k.layers.Dense(4), k.layers.Dense(2)]))
        clone.build((None, 3))
        built[lib] = [tuple(w.shape) for w in clone.get_weights()]
    assert built["onnxforge"] == built["keras"]


def test_keras_namespace():
    import onnxforge.keras as fk
    from onnxforge.keras.models import clone_model

    assert clone_model is fk.models.clone_model and keras.models.clone_model.__name__ == clone_model.__name__

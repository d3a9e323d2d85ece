"""The dtype-policy API and Keras's autocast rules, against Keras 3: policy names and properties, layer
dtype attributes, the ``dtype`` entry of layer configs, input dtypes, and which inputs a layer casts."""
from __future__ import annotations

import numpy as np
import pytest

from .common import fkeras, keras, onnxforge
from .test_dtype_policies import policy

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

NAMES = ["float32", "float64", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16", "int32"]


@pytest.mark.parametrize("name", NAMES)
def test_policy_properties_match_keras(name):
    k, f = keras.DTypePolicy(name), fkeras.DTypePolicy(name)
    assert (f.name, f.compute_dtype, f.variable_dtype, repr(f), f.get_config()) == \
        (k.name, k.compute_dtype, k.variable_dtype, repr(k), k.get_config())
    assert fkeras.mixed_precision.Policy(name) == f and fkeras.dtype_policies.get(name) == f
    assert fkeras.dtype_policies.serialize(f) == keras.dtype_policies.serialize(k)


def test_policy_errors_match_keras():
    for bad, error in (("foo", ValueError), (3, TypeError)):
        with pytest.raises(error) as expected:
            keras.DTypePolicy(bad)
        with pytest.raises(error) as got:
            fkeras.DTypePolicy(bad)
        assert str(got.value) == str(expected.value)
    with pytest.raises(ValueError, match="Invalid `policy` argument"):
        fkeras.mixed_precision.set_global_policy(3.0)
    with pytest.raises(ValueError, match="dense_bad.*Received: dtype='foo'"):
        onnxforge.layers.Dense(2, dtype="foo", name="dense_bad")


def test_global_policy_and_layer_attributes_match_keras():
    with policy("mixed_float16"):
        assert fkeras.mixed_precision.global_policy() == fkeras.DTypePolicy("mixed_float16")
        layers = {lib: [K.layers.Dense(2), K.layers.Dense(2, dtype="float64"),
                        K.layers.Dense(2, dtype=K.DTypePolicy("mixed_bfloat16")), K.layers.Dense(2, dtype=np.float64),
                        K.layers.BatchNormalization(), K.layers.LayerNormalization()]
                  for lib, K in (("k", keras), ("f", fkeras))}
    assert fkeras.config.dtype_policy().name == "float32"
    for k, f in zip(layers["k"], layers["f"]):
        assert (f.dtype, f.compute_dtype, f.variable_dtype, f.dtype_policy.name, f.autocast) == \
            (k.dtype, k.compute_dtype, k.variable_dtype, k.dtype_policy.name, k.autocast)


@pytest.mark.parametrize("dtype", [None, "float64", "mixed_float16"])
def test_layer_config_dtype_entry_round_trips_with_keras(dtype):
    k = keras.layers.Dense(3, dtype=dtype)
    f = onnxforge.layers.Dense(3, dtype=dtype)
    assert f.get_config()["dtype"] == k.get_config()["dtype"]
    again = onnxforge.layers.Dense.from_config(f.get_config())
    assert again.dtype_policy == f.dtype_policy
    from_keras = onnxforge.layers.Dense(3, dtype=k.get_config()["dtype"])   # Keras's serialized policy dict
    assert from_keras.dtype_policy.name == k.dtype_policy.name
    legacy = onnxforge.layers.Dense.from_config({**f.get_config(), "dtype": dtype or "float32"})   # older files
    assert legacy.dtype_policy == f.dtype_policy
    ki, fi = keras.layers.InputLayer(shape=(2,), dtype=dtype if dtype != "mixed_float16" else None), \
        onnxforge.layers.InputLayer(shape=(2,), dtype=dtype if dtype != "mixed_float16" else None)
    assert fi.get_config()["dtype"] == ki.get_config()["dtype"]


def test_model_config_with_policies_round_trips():
    with policy("mixed_float16"):
        inp = fkeras.Input((3,))
        h = fkeras.layers.Dense(4)(inp)
        out = fkeras.layers.Activation("softmax", dtype="float32")(h)
        model = fkeras.Model(inp, out)
    again = fkeras.Model.from_config(model.get_config())
    assert [l.dtype_policy.name for l in again.layers] == ["float32", "mixed_float16", "float32"]
    assert [t.dtype for t in again.outputs] == ["float32"]
    assert again.layers[1].output.dtype == "float16"


def test_sequential_input_takes_the_first_layers_compute_dtype_like_keras():
    for dtype in ("float64", "mixed_float16"):
        k = keras.Sequential([keras.layers.Dense(2, dtype=dtype)])
        f = fkeras.Sequential([fkeras.layers.Dense(2, dtype=dtype)])
        k.build((None, 3))
        f.build((None, 3))
        assert f.inputs[0].dtype == k.inputs[0].dtype
        x = np.ones((2, 3), "float32")
        assert f.predict(x, verbose=0).dtype == keras.ops.convert_to_numpy(k(x)).dtype


def _probe_layers(K):
    """Layers returning what they received, to see which inputs Keras casts."""
    class Echo(K.layers.Layer):
        def call(self, x, other=None):
            return x if other is None else [x, other]

        def compute_output_spec(self, x, other=None):
            spec = lambda t: K.KerasTensor(t.shape, t.dtype)   # noqa: E731
            return spec(x) if other is None else [spec(x), spec(other)]

    class Pair(Echo):
        def compute_output_spec(self, x, other=None):
            return [K.KerasTensor(t.shape, t.dtype) for t in x]

    return Echo, Pair


def _keras_tensor(K):
    return keras.KerasTensor if K is keras else onnxforge.layers.KerasTensor


@pytest.mark.parametrize("case", ["float64_in", "int_in", "kwarg", "nested", "autocast_off", "mixed"])
def test_autocast_rules_match_keras(case):
    """Keras casts floating tensors anywhere in the arguments to the compute dtype, never integers, and
    not at all for a layer built with autocast=False."""
    def run(K):
        K.KerasTensor = _keras_tensor(K)
        Echo, Pair = _probe_layers(K)
        a = K.Input((2,), dtype="float64")
        b = K.Input((2,), dtype="int64")
        c = K.Input((2,), dtype="float32")
        if case == "float64_in":
            outs = [Echo()(a)]
        elif case == "int_in":
            outs = [Echo()(b)]
        elif case == "kwarg":
            outs = Echo()(c, other=a)
        elif case == "nested":
            outs = Pair()([a, b])
        elif case == "autocast_off":
            outs = [Echo(autocast=False)(a)]
        else:
            outs = Echo(dtype="mixed_float16")(a, other=c)
        model = K.Model([a, b, c], outs)
        feeds = [np.ones((2, 2), "float64"), np.ones((2, 2), "int64"), np.ones((2, 2), "float32")]
        values = model.predict(feeds, verbose=0)
        values = values if isinstance(values, list) else [values]
        return [t.dtype for t in model.outputs], [str(np.asarray(v).dtype) for v in values]

    assert run(fkeras) == run(keras)


def test_weights_are_read_in_the_compute_dtype_unless_autocast_is_off():
    """A custom layer under mixed_float16: weights created float32; read in call() as float16, except a
    weight made with autocast=False (Keras's rule), so the product is float32 there. (Keras's symbolic
    spec of the first output says float32, but its call returns float16: onnxforge follows the call.)"""
    def make(K):
        class Scale(K.layers.Layer):
            def build(self, input_shape):
                self.w = self.add_weight(shape=(2,), initializer="ones", name="w")
                self.v = self.add_weight(shape=(2,), initializer="ones", name="v", autocast=False)

            def call(self, x):
                return [x * self.w, K.ops.cast(x, "float32") * self.v]

        inp = K.Input((2,))
        layer = Scale(dtype="mixed_float16")
        return K.Model(inp, layer(inp)), layer

    (k, kl), (f, fl) = make(keras), make(fkeras)
    assert [str(keras.ops.convert_to_numpy(w).dtype) for w in kl.weights] == [str(w.dtype) for w in fl.weights]
    x = np.full((1, 2), 1.5, "float32")
    expected = [v.dtype for v in k.predict(x, verbose=0)]
    assert expected == [np.float16, np.float32]
    assert [v.dtype for v in f.predict(x, verbose=0)] == expected
    assert [t.dtype for t in f.outputs] == ["float16", "float32"]


def test_floatx_sets_input_and_loss_dtypes_like_keras():
    try:
        keras.config.set_floatx("float64")
        fkeras.config.set_floatx("float64")
        assert fkeras.Input((2,)).dtype == keras.Input((2,)).dtype == "float64"
        assert fkeras.losses.MeanSquaredError().dtype == keras.losses.MeanSquaredError().dtype == "float64"
    finally:
        keras.config.set_floatx("float32")
        fkeras.config.set_floatx("float32")
    with pytest.raises(ValueError, match="Unknown `floatx` value"):
        fkeras.config.set_floatx("int32")
    assert fkeras.losses.MeanSquaredError(dtype="mixed_float16").dtype == "float16"

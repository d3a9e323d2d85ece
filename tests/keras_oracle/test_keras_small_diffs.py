"""Small differences from Keras 3 that programs observe, each checked against Keras 3 itself (torch backend):
the dtype of an eager ``StringLookup`` / ``IntegerLookup`` encoding, ``add_weight`` with positional arguments
(a name first is refused with Keras's hint), the refusal of ``tf.ragged`` and the mean over an empty axis."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.keras_oracle.common import LIBS, fkeras, keras, onnxforge

_LOOKUPS = {"StringLookup": (["a", "b", "c"], [["a", "b"], ["c", "z"]], "string"),
            "IntegerLookup": ([1, 2, 3], [[1, 2], [3, 9]], "int64")}


@pytest.mark.parametrize("cls", sorted(_LOOKUPS))
@pytest.mark.parametrize("mode", ["int", "multi_hot", "count", "one_hot", "tf_idf"])
def test_lookup_dtypes_eager_and_symbolic_as_keras(cls, mode):
    # Keras encodes an eager call in the table's int64 (tf_idf: float32 weights); its symbolic spec says float32.
    vocabulary, data, in_dtype = _LOOKUPS[cls]
    kwargs = {"idf_weights": [1.0, 2.0, 3.0]} if mode == "tf_idf" else {}
    data = np.array([row[0] for row in data] if mode == "one_hot" else data)
    got = {}
    for lib, k in LIBS.items():
        layer = getattr(k.layers, cls)(vocabulary=vocabulary, output_mode=mode, **kwargs)
        eager = layer(data)
        symbolic = layer(k.Input(shape=data.shape[1:], dtype=in_dtype))
        got[lib] = (keras.backend.standardize_dtype(eager.dtype), str(symbolic.dtype), np.asarray(eager).tolist())
    assert got["onnxforge"] == got["keras"]


def test_add_weight_with_a_positional_name_is_refused_as_keras():
    messages = {}
    for lib, k in LIBS.items():
        class Legacy(k.layers.Layer):
            def build(self, input_shape):
                self.kernel = self.add_weight("kernel", shape=(2, 2))

            def call(self, x):
                return x
        with pytest.raises(ValueError) as info:
            Legacy()(np.ones((1, 2), "float32"))
        messages[lib] = str(info.value)
    assert messages["onnxforge"] == messages["keras"]
    assert "add_weight(shape=..., name='kernel')" in messages["onnxforge"]


def test_add_weight_positional_shape_initializer_dtype_as_keras():
    got = {}
    for lib, k in LIBS.items():
        class Positional(k.layers.Layer):
            def build(self, input_shape):
                self.w = self.add_weight((2, 3), "ones", "float64", name="w")

            def call(self, x):
                return x
        layer = Positional()
        layer(np.ones((1, 2), "float32"))
        got[lib] = (tuple(layer.w.shape), keras.backend.standardize_dtype(layer.w.dtype),
                    np.asarray(layer.w.numpy()).tolist(), layer.w.name)
        with pytest.raises(ValueError, match="`shape` was passed both positionally and as a keyword"):
            k.layers.Layer().add_weight((2,), shape=(2,))
    assert got["onnxforge"] == got["keras"]


@pytest.mark.parametrize("name", ["ragged", "RaggedTensor", "lookup", "saved_model"])
def test_refused_tf_names_end_in_one_period(name):
    with pytest.raises(AttributeError) as info:
        getattr(onnxforge, name)
    text = str(info.value)
    assert text.startswith(f"onnxforge has no tf.{name}: ") and text.endswith(".") and not text.endswith("..")


def _mean_model(k, axis):
    x = k.Input((None,))   # the reduced width is unknown while tracing
    return k.Model(x, k.layers.Lambda(lambda t: k.ops.mean(t, axis=axis))(x))


@pytest.mark.parametrize("shape,axis", [((2, 0), 1), ((2, 0), None), ((2, 3), 1), ((0, 3), 0)])
def test_mean_over_an_empty_axis_is_nan_as_keras(shape, axis):
    # onnxruntime's ReduceMean of an empty set is 0; Keras (and TensorFlow's reduce_mean) give NaN.
    data = np.arange(np.prod(shape), dtype="float32").reshape(shape)
    want = np.asarray(keras.ops.mean(data, axis=axis))
    np.testing.assert_allclose(np.asarray(fkeras.ops.mean(data, axis=axis)), want)
    np.testing.assert_allclose(np.asarray(onnxforge.reduce_mean(data, axis=axis)), want)
    np.testing.assert_allclose(np.asarray(onnxforge.math.reduce_mean(data, axis=axis)), want)
    if shape[0]:   # through a model whose reduced width is unknown at trace time: sum / count at run time
        np.testing.assert_allclose(np.asarray(_mean_model(fkeras, axis)(data)),
                                   np.asarray(_mean_model(keras, axis)(data)), rtol=1e-6)


def _op_types(fn, shape, directory) -> list[str]:
    x = fkeras.Input(shape)
    model = fkeras.Model(x, fkeras.layers.Lambda(fn)(x))
    path = str(directory / f"m{len(list(directory.iterdir()))}.onnx")
    model.export(path)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    return [n.op_type for n in proto.graph.node]


def test_mean_of_a_known_positive_size_stays_one_reducemean(tmp_path):
    # The sum / count form is only for sizes that can be 0: a known width keeps the single ReduceMean node.
    assert _op_types(lambda t: fkeras.ops.mean(t, axis=-1), (4,), tmp_path).count("ReduceMean") == 1
    assert not {"ReduceSum", "Div", "Size"} & set(_op_types(lambda t: fkeras.ops.mean(t, axis=-1), (4,), tmp_path))
    unknown = _op_types(lambda t: fkeras.ops.mean(t, axis=-1), (None,), tmp_path)
    assert "ReduceMean" not in unknown and {"ReduceSum", "Div"} <= set(unknown)


def test_gradient_of_a_mean_over_an_unknown_size_float64():
    @onnxforge.function(input_signature=[onnxforge.TensorSpec((None, 3), "float64")])
    def grad(x):
        with onnxforge.GradientTape() as tape:
            tape.watch(x)
            loss = onnxforge.reduce_sum(onnxforge.reduce_mean(x * x, axis=0) * np.array([1.0, 2.0, 3.0]))
        return tape.gradient(loss, x)

    x = np.random.default_rng(0).normal(size=(4, 3))
    got = np.asarray(grad(x), np.float64)
    eps, numeric = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        f = [float(np.sum(np.mean(v * v, axis=0) * [1.0, 2.0, 3.0])) for v in (x + step, x - step)]
        numeric[i] = (f[0] - f[1]) / (2 * eps)
    np.testing.assert_allclose(got, numeric, atol=1e-6)

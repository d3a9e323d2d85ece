"""Inside a traced ``call()`` or ``tf.function`` a tensor's dtype reads as Keras's dtype name, as Keras 3 code
compares it (``x.dtype == "float32"``, ``"int" in x.dtype``, ``x.dtype.name``, ``ops.cast(y, x.dtype)``), while
staying the ONNX number the graph code uses; its shape has ``tf.TensorShape``'s ``as_list()`` / ``rank``."""
from __future__ import annotations

import numpy as np
import onnx

import onnxforge as keras
import onnxforge as tf
from onnxforge import layers, ops
from onnxforge.graph.element_type import ElementType, element_type


class DtypeBranches(layers.Layer):
    """Keras 3 code that branches on its input's dtype: integer ids are embedded, floats scaled; the record
    is what the comparisons gave while tracing."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen: list[tuple] = []

    def call(self, x):
        dtype = x.dtype
        self.seen.append((dtype == "float32", dtype != "float32", "int" in dtype, dtype.name, str(dtype),
                          dtype == np.float32, dtype == np.dtype("int64"), dtype.is_floating))
        if "int" in dtype:
            return ops.cast(x, "float32") * 10.0
        return x * ops.cast(2, x.dtype)


def test_float_and_int_inputs_branch_like_keras_in_predict_and_fit():
    floats, ints = layers.Input((3,)), layers.Input((3,), dtype="int64")
    branch_f, branch_i = DtypeBranches(), DtypeBranches()
    model = keras.Model([floats, ints], layers.Add()([branch_f(floats), branch_i(ints)]))
    xf = np.arange(6, dtype=np.float32).reshape(2, 3)
    xi = np.arange(6, dtype=np.int64).reshape(2, 3)
    np.testing.assert_allclose(model.predict([xf, xi], verbose=0), 2 * xf + 10 * xi)
    assert (True, False, False, "float32", "float32", True, False, True) in branch_f.seen
    assert (False, True, True, "int64", "int64", False, True, False) in branch_i.seen
    model.compile(optimizer="sgd", loss="mse")
    assert np.isfinite(model.fit([xf, xi], 2 * xf + 10 * xi, epochs=1, verbose=0).history["loss"][0])


def test_tf_function_compares_dtypes_with_tf_names():
    seen = []

    @tf.function
    def double_if_float(x):
        seen.append((x.dtype == tf.float32, x.dtype == tf.int32, x.dtype.name))
        return x * 2 if x.dtype.is_floating else x

    np.testing.assert_allclose(double_if_float(np.ones(2, np.float32)), [2.0, 2.0])
    np.testing.assert_array_equal(double_if_float(np.ones(2, np.int32)), [1, 1])
    assert seen == [(True, False, "float32"), (False, True, "int32")]


def test_element_type_stays_the_onnx_number():
    t = element_type(onnx.TensorProto.FLOAT)
    assert isinstance(t, ElementType) and t == onnx.TensorProto.FLOAT and hash(t) == hash(onnx.TensorProto.FLOAT)
    assert {onnx.TensorProto.FLOAT: "x"}[t] == "x" and t in {onnx.TensorProto.FLOAT}
    info = onnx.helper.make_tensor_value_info("x", t, [2])
    assert info.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert f"{t:d}" == "1" and f"{t}" == "float32" and repr(t) == "'float32'"
    assert element_type(onnx.TensorProto.BFLOAT16) == "bfloat16"
    assert element_type(onnx.TensorProto.STRING) == "string" and element_type(onnx.TensorProto.STRING) == str
    assert (t == object()) is False and t != "no-such-dtype"


class FlattenByShapeList(layers.Layer):
    """tf.keras-style code: the static dims through ``x.shape.as_list()`` (``None`` for the batch)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen: list = []

    def call(self, x):
        dims = x.shape.as_list()
        self.seen.append((dims, x.shape.rank, x.shape.is_fully_defined()))
        return ops.reshape(x, [-1, int(np.prod(dims[1:]))])


def test_shape_as_list_in_call_and_tf_function():
    layer = FlattenByShapeList()
    inp = layers.Input((4, 3))
    model = keras.Model(inp, layer(inp))
    x = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x.reshape(2, 12))
    assert ([None, 4, 3], 3, False) in layer.seen

    @tf.function
    def static_dims(t):
        return tf.reshape(t, [t.shape.as_list()[0] * t.shape[1], -1])

    np.testing.assert_array_equal(static_dims(x), x.reshape(8, 3))

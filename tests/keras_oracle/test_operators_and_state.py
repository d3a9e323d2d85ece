"""Operators on symbolic tensors, and state updates within one step, against real Keras 3."""
from __future__ import annotations

import numpy as np
import pytest

from .common import copy_weights, fkeras, keras, max_diff, random_weights

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

X = np.random.default_rng(0).normal(size=(6, 5, 4)).astype("float32")
Y = np.random.default_rng(1).normal(size=(6, 5, 4)).astype("float32")


def _residual_block(K):
    """The transformer residual pattern, written with Python operators inside call()."""
    class Residual(K.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.attn = K.layers.Dense(4)
            self.norm = K.layers.LayerNormalization()

        def build(self, input_shape):
            self.attn.build(input_shape)
            self.norm.build(input_shape)

        def call(self, inputs):
            attn = self.attn(inputs)
            x = self.norm(inputs + attn)              # `inputs + attn` must keep the static shape
            return x * 0.5 - x[:, :1] / 2.0 + (-x) ** 2 - abs(x) @ K.ops.ones((4, 4)) * 0.1

    inp = K.Input((5, 4))
    return K.Model(inp, Residual()(inp))


def test_operators_inside_call_keep_shapes_and_match_keras():
    k, f = _residual_block(keras), _residual_block(fkeras)
    random_weights(k)
    copy_weights(k, f)
    np.testing.assert_allclose(f.predict(X, verbose=0), k.predict(X, verbose=0), rtol=1e-5, atol=1e-5)
    for m in (k, f):
        m.compile(optimizer=m is k and keras.optimizers.SGD(0.1) or fkeras.optimizers.SGD(0.1), loss="mse")
    for _ in range(2):
        assert f.train_on_batch(X, Y) == pytest.approx(k.train_on_batch(X, Y), rel=1e-5)
    assert max_diff(k.get_weights(), f.get_weights()) < 1e-5


def _functional_operators(K):
    inp = K.Input((5, 4))
    other = K.Input((4,))
    h = K.layers.Dense(4)(inp)
    x = inp + h                                    # KerasTensor + KerasTensor
    x = 2.0 * x - 1.0                              # constants on both sides
    x = x / (1.0 + abs(x))
    y = x[:, 0] * other                            # indexing
    z = (x[..., 1:3] ** 2)[:, :, None]              # slices, power, newaxis
    w = -(x @ np.ones((4, 2), "float32"))           # matmul with a constant, negation
    gate = x > 0.0                                  # comparisons give bool tensors; bool * float is float
    out = K.layers.Concatenate()([K.layers.Flatten()(z), K.layers.Flatten()(w), y, K.layers.Flatten()(gate * x)])
    return K.Model([inp, other], out)


def test_functional_api_operators_match_keras():
    k, f = _functional_operators(keras), _functional_operators(fkeras)
    assert [t.shape for t in k.outputs] == [t.shape for t in f.outputs]
    random_weights(k, seed=3)
    copy_weights(k, f)
    other = np.random.default_rng(2).normal(size=(6, 4)).astype("float32")
    np.testing.assert_allclose(f.predict([X, other], verbose=0), k.predict([X, other], verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_functional_operators_round_trip_through_config():
    f = _functional_operators(fkeras)
    random_weights(f, seed=4)
    g = fkeras.Model.from_config(f.get_config())
    g.set_weights(f.get_weights())
    other = np.ones((2, 4), "float32")
    np.testing.assert_allclose(g.predict([X[:2], other], verbose=0), f.predict([X[:2], other], verbose=0), rtol=1e-6)


def _shared_bn(K):
    inp = K.Input((3,))
    bn = K.layers.BatchNormalization(momentum=0.5)
    shared = K.Sequential([K.Input((3,)), K.layers.Dense(3), bn])
    out = shared(shared(inp))
    return K.Model(inp, out), bn


def test_a_batchnorm_called_twice_per_step_applies_both_updates_like_keras():
    (k, kbn), (f, fbn) = _shared_bn(keras), _shared_bn(fkeras)
    random_weights(k, seed=5)
    copy_weights(k, f)
    x = np.random.default_rng(6).normal(size=(8, 3)).astype("float32") + 1.0
    y = np.random.default_rng(7).normal(size=(8, 3)).astype("float32")
    k.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    f.compile(optimizer=fkeras.optimizers.SGD(0.05), loss="mse")
    for _ in range(2):
        assert f.train_on_batch(x, y) == pytest.approx(k.train_on_batch(x, y), rel=1e-5)
    np.testing.assert_allclose(fbn.moving_mean.numpy(), keras.ops.convert_to_numpy(kbn.moving_mean), atol=1e-5)
    np.testing.assert_allclose(fbn.moving_variance.numpy(), keras.ops.convert_to_numpy(kbn.moving_variance),
                               atol=1e-5)
    np.testing.assert_allclose(f.predict(x, verbose=0), k.predict(x, verbose=0), atol=1e-5)


def test_operator_nodes_move_through_keras_files_both_ways(tmp_path):
    """Keras writes `inputs + h`, `2.0 * x`, `x[:, 0]` as op nodes (keras.src.ops.numpy.Add, ...): onnxforge
    reads them as TensorOperator nodes and writes its own back in Keras's form."""
    import onnxforge

    x = np.random.default_rng(3).normal(size=(2, 5, 4)).astype("float32")
    inp = keras.Input((5, 4))
    h = keras.layers.Dense(4)(inp)
    k = keras.Model(inp, -(2.0 * (inp + h))[:, 0] ** 2)
    k.save(tmp_path / "k.keras")
    f = onnxforge.load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(f.predict(x, verbose=0), k.predict(x, verbose=0), rtol=1e-5, atol=1e-6)

    f2 = _functional_operators(fkeras)
    random_weights(f2, seed=7)
    f2.save(tmp_path / "f.keras")
    k2 = keras.saving.load_model(tmp_path / "f.keras")
    other = np.ones((2, 4), "float32")
    np.testing.assert_allclose(k2.predict([x, other], verbose=0), f2.predict([x, other], verbose=0),
                               rtol=1e-5, atol=1e-5)
    again = onnxforge.load_model(tmp_path / "f.keras")
    np.testing.assert_array_equal(again.predict([x, other], verbose=0), f2.predict([x, other], verbose=0))

    k3 = keras.Model(inp, keras.ops.sum(inp, axis=1))   # a keras.ops function node: read as an OpCall
    k3.save(tmp_path / "sum.keras")
    np.testing.assert_allclose(onnxforge.load_model(tmp_path / "sum.keras").predict(x, verbose=0),
                               np.asarray(k3.predict(x, verbose=0)), rtol=1e-6)


def _masked(K):
    """A masked loss written with ``!=`` and a metric with ``==``, as the Keras tutorials write them."""
    def masked_mse(y_true, y_pred):
        mask = K.ops.cast(y_true != 0, "float32")
        return K.ops.sum(K.ops.square(y_true - y_pred) * mask) / K.ops.sum(mask)

    class Hits(K.metrics.Metric):
        def __init__(self, **kwargs):
            super().__init__(name="hits", **kwargs)
            self.hits = self.add_variable(shape=(), name="hits", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            same = K.ops.round(y_pred) == y_true
            self.hits.assign_add(K.ops.sum(K.ops.cast(same, "float32")))

        def result(self):
            return self.hits

    model = K.Sequential([K.Input((5,)), K.layers.Dense(5)])
    model.compile(optimizer="sgd", loss=masked_mse, metrics=[Hits()])
    return model


def test_equality_operators_in_losses_and_metrics_compare_elementwise_like_keras():
    rng = np.random.default_rng(8)
    x = rng.random((16, 5)).astype("float32")
    y = rng.integers(0, 3, (16, 5)).astype("float32")
    k, f = _masked(keras), _masked(fkeras)
    random_weights(k, seed=9)
    copy_weights(k, f)
    got, want = f.evaluate(x, y, verbose=0, return_dict=True), k.evaluate(x, y, verbose=0, return_dict=True)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    assert got["hits"] == pytest.approx(want["hits"])


def _comparisons(K):
    inp, other = K.Input((4,)), K.Input((4,))
    return K.Model([inp, other], K.layers.Concatenate()([inp != other, inp != 0.0, 2.0 != inp]))


def test_functional_comparisons_match_keras_and_move_through_keras_files(tmp_path):
    import onnxforge

    a = np.array([[0, 1, 2, 3]], "float32")
    b = np.array([[0, 2, 2, 1]], "float32")
    k, f = _comparisons(keras), _comparisons(fkeras)
    np.testing.assert_array_equal(f.predict([a, b], verbose=0), k.predict([a, b], verbose=0))
    inp = fkeras.Input((4,))
    assert (inp == inp) is True and (inp == fkeras.Input((4,))) is False   # identity between tensors, as Keras
    eq = fkeras.Model(inp, [inp == 1.0, inp.T])
    np.testing.assert_array_equal(eq.predict(a, verbose=0)[0], a == 1.0)
    f.save(tmp_path / "f.keras")
    np.testing.assert_array_equal(keras.saving.load_model(tmp_path / "f.keras").predict([a, b], verbose=0),
                                  k.predict([a, b], verbose=0))
    k.save(tmp_path / "k.keras")
    np.testing.assert_array_equal(onnxforge.load_model(tmp_path / "k.keras").predict([a, b], verbose=0),
                                  k.predict([a, b], verbose=0))

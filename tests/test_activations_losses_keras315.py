"""Keras 3.15's newer activations (celu, glu, the shrink family, sparsemax, ...), the losses Dice, Tversky and
CategoricalGeneralizedCrossEntropy, and the small top-level names, against Keras: values, names in layers and
compile(), and float64 gradients by central differences."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import onnxforge as tf
from onnxforge.autodiff import check_gradients
from onnxforge.graph import GraphBuilder

keras = pytest.importorskip("keras")
ok = tf.keras

ACTIVATIONS = ["celu", "glu", "hard_shrink", "hard_tanh", "log_sigmoid", "soft_shrink", "sparse_plus", "sparse_sigmoid",
               "squareplus", "tanh_shrink"]


def _x():
    x = np.random.default_rng(0).normal(0, 2, (4, 6))
    # Away from the kinks (|x| = 0.5, 1), where a central difference straddles two pieces.
    return np.where(np.abs(np.abs(x) - 0.5) < 0.05, x + 0.2, np.where(np.abs(np.abs(x) - 1) < 0.05, x + 0.2, x))


def _sparsemax_reference(x):
    """Martins & Astudillo's projection onto the simplex (Keras 3.15's backends divide the sum of all the
    support's partial sums by k instead, and their rows do not sum to 1: onnxforge keeps the paper's)."""
    z = -np.sort(-x, axis=-1)
    k = np.arange(1, x.shape[-1] + 1)
    cums = np.cumsum(z, -1)
    support = 1 + k * z > cums
    k_z = support.sum(-1, keepdims=True)
    tau = (np.take_along_axis(cums, k_z - 1, -1) - 1) / k_z
    return np.maximum(x - tau, 0)


def _gradcheck(fn, *arrays):
    b = GraphBuilder()
    values = [b.input(f"x{i}", onnx.TensorProto.DOUBLE, a.shape) for i, a in enumerate(arrays)]
    b.output(fn(*values), "y")
    check_gradients(b.to_model(), {f"x{i}": a for i, a in enumerate(arrays)}, ["x0"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ACTIVATIONS + ["sparsemax", "threshold"])
def test_activation_values_names_and_gradients(name):
    x = _x()
    args = (0.3, -1.0) if name == "threshold" else ()
    ours = getattr(ok.activations, name)
    expected = (_sparsemax_reference(x) if name == "sparsemax" else
                keras.ops.convert_to_numpy(getattr(keras.activations, name)(x.astype(np.float32), *args)))
    np.testing.assert_allclose(np.asarray(ours(x.astype(np.float32), *args)), expected, rtol=1e-5, atol=1e-6)
    _gradcheck(lambda v: ours(v, *args), x)
    if name in keras.ops.__dict__:
        assert name in dir(ok.ops)
    if name != "threshold":
        layer = ok.layers.Dense(6, activation=name)
        assert layer.get_config()["activation"] == keras.layers.Dense(6, activation=name).get_config()["activation"]
        assert ok.activations.get(name) is ours and ok.activations.serialize(ours) == name


def _segmentation():
    rng = np.random.default_rng(1)
    return (rng.random((4, 3, 5)) > 0.5).astype(np.float64), rng.uniform(0.05, 0.95, (4, 3, 5))


@pytest.mark.parametrize("name,kwargs", [("Dice", {}), ("Dice", {"axis": (1, 2)}), ("Tversky", {}),
                                         ("Tversky", {"alpha": 0.2, "beta": 0.8, "axis": -1})])
def test_overlap_losses_equal_keras(name, kwargs):
    y_true, y_pred = _segmentation()
    ours, theirs = getattr(ok.losses, name)(**kwargs), getattr(keras.losses, name)(**kwargs)
    np.testing.assert_allclose(float(ours(y_true, y_pred.astype(np.float32))),
                               float(theirs(y_true, y_pred.astype(np.float32))), rtol=1e-5)
    assert ours.get_config() == theirs.get_config()
    fn = getattr(ok.losses, name.lower())
    _gradcheck(lambda p, t: fn(t, p, **kwargs), y_pred, y_true)


def test_generalized_crossentropy_equals_keras():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 6)
    probs = rng.uniform(0.1, 1.0, (6, 4))
    probs /= probs.sum(-1, keepdims=True)
    ours = ok.losses.CategoricalGeneralizedCrossEntropy(0.7)
    theirs = keras.losses.CategoricalGeneralizedCrossEntropy(0.7)
    np.testing.assert_allclose(float(ours(labels, probs.astype(np.float32))),
                               float(theirs(labels, probs.astype(np.float32))), rtol=1e-5)
    assert ours.get_config() == theirs.get_config()
    b = GraphBuilder()
    p = b.input("x0", onnx.TensorProto.DOUBLE, probs.shape)
    b.output(ok.losses.categorical_generalized_cross_entropy(b.const(labels), p, 0.7), "y")
    check_gradients(b.to_model(), {"x0": probs}, ["x0"], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="q=1.5"):
        ok.losses.CategoricalGeneralizedCrossEntropy(1.5)


@pytest.mark.parametrize("loss", ["dice", "tversky", ok.losses.Dice(axis=-1), "categorical_generalized_cross_entropy"])
def test_losses_train_by_name(loss):
    """compile(loss=...) by name or object: fit runs, the loss falls and equals the eager loss of the result."""
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (32, 5)).astype(np.float32)
    sparse = loss == "categorical_generalized_cross_entropy"
    y = rng.integers(0, 3, 32) if sparse else (rng.random((32, 3)) > 0.5).astype(np.float32)
    model = ok.Sequential([ok.Input((5,)), ok.layers.Dense(3, activation="softmax" if sparse else "sigmoid")])
    model.compile(optimizer=ok.optimizers.SGD(0.5), loss=loss)
    history = model.fit(x, y, batch_size=32, epochs=5, verbose=0).history["loss"]
    assert history[-1] < history[0]


def test_keras_top_level_names():
    assert ok.version() == ok.__version__ == keras.__version__ == keras.version()
    assert ok.Loss is ok.losses.Loss and ok.Metric is ok.metrics.Metric and ok.Optimizer is ok.optimizers.Optimizer
    assert ok.Initializer is ok.initializers.Initializer and ok.Regularizer is ok.regularizers.Regularizer
    assert ok.InputSpec is ok.layers.InputSpec and ok.constraints is tf.constraints
    assert ok.initializers.OrthogonalInitializer is ok.initializers.Orthogonal
    assert ok.initializers.IdentityInitializer is ok.initializers.Identity
    assert ok.utils.standardize_dtype("float32") == "float32"
    entry = keras.utils.serialize_keras_object(keras.losses.Tversky(0.2, 0.8))
    assert ok.utils.deserialize_keras_object(entry).beta == 0.8
    assert ok.utils.serialize_keras_object(ok.losses.Huber(2.0))["class_name"] == "Huber"
    assert type(ok.losses.deserialize(keras.losses.serialize(keras.losses.Tversky(0.1, 0.9)))).__name__ == "Tversky"
    import onnxforge.keras.constraints as via_import   # the submodule import resolves
    assert via_import.MaxNorm is tf.constraints.MaxNorm

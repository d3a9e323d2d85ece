"""``keras.ops.custom_gradient`` / ``tf.custom_gradient``: the same programs (``custom_gradient_cases.py``) as
TensorFlow gives the same gradients eagerly, in ``tf.function``, in a model under a tape and in ``fit``; plain
autodiff where the custom gradient is the derivative; the sharded step; the errors of TensorFlow's contract."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import onnxforge as tf
from onnxforge import keras, layers, ops
from onnxforge.graph import GraphBuilder
from onnxforge.tracing import TraceContext

from . import custom_gradient_cases as cases
from tests import tf_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tf_reference(tmp_path_factory):
    pytest.importorskip("tensorflow")
    path = tmp_path_factory.mktemp("custom_gradient") / "ref.npz"
    tf_server.run(["-m", "tests.autodiff.custom_gradient_cases", str(path)], cwd=ROOT, env={"PYTHONPATH": str(ROOT)},
                  check=True, timeout=300)
    return dict(np.load(path))


@pytest.fixture(scope="module")
def ours():
    return {**cases.eager_results(tf), **cases.model_results(tf, keras)}


def test_matches_tensorflow(tf_reference, ours):
    assert set(tf_reference) <= set(ours)
    for key, ref in tf_reference.items():
        np.testing.assert_allclose(ours[key], ref, rtol=2e-5, atol=1e-6, err_msg=key)


def _plain_grad(fn, x, c):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(fn(x) * c)
    return np.asarray(tape.gradient(loss, x))


def test_agrees_with_plain_autodiff_where_equivalent(ours):
    x = tf.Variable(cases.X)
    c = cases.C
    sigmoid = 1.0 / (1.0 + np.exp(-cases.X.astype(np.float64)))
    np.testing.assert_allclose(ours["eager_log1pexp"], c * sigmoid, rtol=1e-5, atol=1e-7)   # finite at x = 100
    plain = _plain_grad(lambda v: tf.math.log(1.0 + tf.exp(v)), x, c)
    assert np.isnan(plain[0, 1]) and np.allclose(np.delete(plain.ravel(), 1), np.delete(ours["eager_log1pexp"].ravel(), 1),
                                                    rtol=1e-5)
    identity = _plain_grad(lambda v: v * 1.0, x, c)
    np.testing.assert_allclose(ours["eager_straight_through"], identity)
    np.testing.assert_allclose(ours["eager_reverse"], -0.7 * identity, rtol=1e-6)
    norm = np.linalg.norm(c)
    np.testing.assert_allclose(ours["eager_clip_gradient"], c * 0.5 / norm, rtol=1e-5)
    assert np.all(_plain_grad(tf.round, x, c) == 0)   # what the straight-through estimator replaces


def test_traced_graph_passes_the_full_checker():
    b = GraphBuilder()
    fns, pair = cases.functions(tf)
    with TraceContext(b, training=True).active():
        x = b.input("x", onnx.TensorProto.FLOAT, ("batch", 3))
        with tf.GradientTape() as tape:
            loss = ops.sum(fns["straight_through"](x) * 2.0) + ops.sum(fns["log1pexp"](x))
            first, _ = pair(x, x * 2.0)   # the second output unused: its upstream is zeros
            loss = loss + ops.sum(first)
        g = tape.gradient(loss, x)
    b.output(g, "g")
    model = b.to_model()
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
    import onnxruntime as ort

    xv = cases.X[:, :].copy()
    xv[0, 1] = 1.0
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": xv})[0]
    # pair(x, y=2x) with d1 = 1, d2 = 0: dx = y = 2x, dy = 3x reaching x twice: 8x (the derivative is 4x)
    want = 2.0 + 1.0 / (1.0 + np.exp(-xv)) + 8.0 * xv
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_torch_style_grad_and_custom_train_step():
    @ops.custom_gradient
    def double_grad(x):
        def grad(*args, upstream):   # Keras's torch form: the inputs, then upstream by keyword
            assert len(args) == 1
            return upstream * 2.0
        return ops.multiply(x, 1.0), grad

    class Step(keras.Model):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                loss = ops.mean(ops.square(double_grad(self(x)) - y))
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": loss}

    def build(cls):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((5,))
        return cls(inputs, layers.Dense(1, kernel_initializer="ones")(inputs))

    custom, plain = build(Step), build(keras.Model)
    custom.compile(optimizer=keras.optimizers.SGD(0.05))
    plain.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")   # twice the gradient = twice the step
    custom.fit(cases.DATA_X, cases.DATA_Y, batch_size=16, epochs=1, verbose=0)
    plain.fit(cases.DATA_X, cases.DATA_Y, batch_size=16, epochs=1, verbose=0)
    for a, b in zip(custom.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_sharded_step_matches_one_session(monkeypatch):
    from onnxforge.trainer.core_parallel import MIN_SHARD

    reversal = cases.keras_reversal(keras)

    def build():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3, padding="same", activation="relu"),
                                  reversal(0.5), layers.Conv2D(4, 3, padding="same"),
                                  layers.GlobalAveragePooling2D(), layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        return model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2 * MIN_SHARD, 8, 8, 1)).astype(np.float32)
    y = rng.normal(size=(2 * MIN_SHARD, 1)).astype(np.float32)
    results = []
    for shards in ("1", "2"):
        monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", shards)
        model = build()
        model.train_on_batch(x, y)
        results.append((model, model.get_weights()))
    assert results[1][0]._shard_steps[1].get(2) is not None   # the sharded step did run
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_errors_follow_tensorflow():
    w = tf.Variable(np.ones((3, 2), np.float32))

    @tf.custom_gradient
    def reads_w(x):
        return tf.matmul(x, w), lambda dy: dy   # no ``variables``: TensorFlow refuses
    x = tf.Variable(cases.X)
    with tf.GradientTape() as tape:
        with pytest.raises(TypeError, match="variables"):
            reads_w(x)

    @tf.custom_gradient
    def wrong_count(x, y):
        return x + y, lambda dy: dy
    with tf.GradientTape() as tape:
        z = tf.reduce_sum(wrong_count(x, x))
    with pytest.raises(ValueError, match="one gradient per"):
        tape.gradient(z, x)

    @tf.custom_gradient
    def no_pair(x):
        return x
    with pytest.raises(TypeError, match="pair"):
        no_pair(cases.X)
    with pytest.raises(TypeError, match="Layer"):
        no_pair(keras.Input((3,)))

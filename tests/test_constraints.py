"""Weight constraints (``onnxforge.constraints``) against Keras 3: their values, and training with them (fit,
train_on_batch, a custom train_step, tf.function, eager apply_gradients, core shards) applying the projection
after each update inside the ONNX step, as Keras's optimizer does."""
from __future__ import annotations

import numpy as np
import pytest

import onnxforge as tf
from onnxforge import constraints

from .conftest import check_full

keras = pytest.importorskip("keras")
ok = tf.keras


class OurClip(ok.constraints.Constraint):
    """WGAN's weight clipping, written with keras.ops as users write it."""

    def __init__(self, clip_value):
        self.clip_value = clip_value

    def __call__(self, w):
        return ok.ops.clip(w, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


class KerasClip(keras.constraints.Constraint):
    def __init__(self, clip_value):
        self.clip_value = clip_value

    def __call__(self, w):
        return keras.ops.clip(w, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


CASES = [("MaxNorm", {"max_value": 1.5, "axis": 0}), ("MaxNorm", {"max_value": 0.5, "axis": [0, 1, 2]}),
         ("MinMaxNorm", {"min_value": 0.5, "max_value": 1.0, "rate": 0.7, "axis": 1}), ("NonNeg", {}),
         ("UnitNorm", {"axis": -1}), ("UnitNorm", {"axis": [0, 2]})]


@pytest.mark.parametrize("name,config", CASES)
def test_values_equal_keras_on_arrays_and_in_graphs(name, config):
    w = np.random.default_rng(0).normal(0, 1.5, (3, 3, 4, 5)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(getattr(keras.constraints, name)(**config)(w))
    ours = getattr(constraints, name)(**config)
    np.testing.assert_allclose(ours(w), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tf.function(lambda x: ours(x))(w), expected, rtol=1e-5, atol=1e-6)
    assert ours.get_config() == getattr(keras.constraints, name)(**config).get_config()


def test_get_serialize_and_errors():
    for alias in ("max_norm", "min_max_norm", "non_neg", "unit_norm", "MaxNorm"):
        assert type(constraints.get(alias)).__name__ == type(keras.constraints.get(alias)).__name__
    assert constraints.serialize(constraints.MaxNorm(3)) == keras.constraints.serialize(keras.constraints.MaxNorm(3))
    back = constraints.deserialize(keras.constraints.serialize(keras.constraints.MinMaxNorm(0.2, 2.0, 0.5, 1)))
    assert back.get_config() == {"min_value": 0.2, "max_value": 2.0, "rate": 0.5, "axis": 1}
    entry = keras.utils.serialize_keras_object(keras.constraints.UnitNorm(axis=1))
    assert tf.keras.utils.deserialize_keras_object(entry).get_config() == {"axis": 1}
    with pytest.raises(ValueError, match=r"`kernel_constraint`.*kernel_constraint='max_nrom'"):
        ok.layers.Dense(2, kernel_constraint="max_nrom")
    with pytest.raises(ValueError, match=r"`embeddings_constraint`.*embeddings_constraint=1.5"):
        ok.layers.Embedding(4, 2, embeddings_constraint=1.5)
    with pytest.raises(ValueError, match="constraint=3"):
        tf.Variable(1.0).constraint = 3


def _pair(build, seed=0):
    """The same model in onnxforge and in Keras, with equal initial weights."""
    ours, theirs = build(ok), build(keras)
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 0.8, w.shape).astype(np.float32) for w in theirs.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    ours.compile(optimizer=ok.optimizers.SGD(0.3), loss="mse")
    theirs.compile(optimizer=keras.optimizers.SGD(0.3), loss="mse")
    return ours, theirs


def _dense(k):
    clip = OurClip(0.4) if k is ok else KerasClip(0.4)
    return k.Sequential([k.Input((5,)), k.layers.Dense(6, activation="tanh", bias_constraint="non_neg",
                                                        kernel_constraint=k.constraints.MaxNorm(1.2)),
                         k.layers.Dense(2, kernel_constraint=clip)])


def _conv(k):
    return k.Sequential([k.Input((6, 6, 2)),
                         k.layers.Conv2D(3, 3, kernel_constraint=k.constraints.MaxNorm(0.7, axis=[0, 1, 2]),
                                         bias_constraint=k.constraints.NonNeg()),
                         k.layers.Flatten(), k.layers.Dense(2, kernel_constraint=k.constraints.UnitNorm())])


def _embedding(k):
    return k.Sequential([k.Input((4,), dtype="int32"),
                         k.layers.Embedding(7, 3, embeddings_constraint=k.constraints.MinMaxNorm(0.5, 1.0, axis=1)),
                         k.layers.GlobalAveragePooling1D(), k.layers.Dense(2)])


@pytest.mark.parametrize("build,x_shape", [(_dense, (5,)), (_conv, (6, 6, 2)), (_embedding, None)])
def test_fit_and_train_on_batch_equal_keras(build, x_shape):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 7, (12, 4)).astype(np.int32) if x_shape is None else \
        rng.normal(0, 1, (12, *x_shape)).astype(np.float32)
    y = rng.normal(0, 1, (12, 2)).astype(np.float32)
    ours, theirs = _pair(build)
    ours.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    theirs.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for m in (ours, theirs):
        m.train_on_batch(x[:4], y[:4])
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    check_full(ours._programs["train_step"].model)


def test_frozen_weight_keeps_its_value():
    model = ok.Sequential([ok.Input((3,)), ok.layers.Dense(2, kernel_constraint="non_neg", trainable=False),
                           ok.layers.Dense(1)])
    kernel = -np.ones((3, 2), np.float32)
    model.layers[0].set_weights([kernel, np.zeros(2, np.float32)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3), np.float32), np.ones((4, 1), np.float32), verbose=0)
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), kernel)


def _custom_steps():
    """The dense model trained 3 steps by a custom train_step, a tf.function and eager apply_gradients."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, (12, 5)).astype(np.float32), rng.normal(0, 1, (12, 2)).astype(np.float32)
    start = [rng.normal(0, 0.8, w.shape).astype(np.float32) for w in _dense(ok).get_weights()]
    mse = ok.losses.MeanSquaredError()

    class Stepped(ok.Model):
        def train_step(self, data):
            xb, yb = data
            with tf.GradientTape() as tape:
                loss = mse(yb, self(xb, training=True))
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": loss}

    base = _dense(ok)
    custom = Stepped(base.inputs[0], base.outputs[0])
    custom.set_weights(start)
    custom.compile(optimizer=ok.optimizers.SGD(0.3))
    custom.fit(x, y, batch_size=4, shuffle=False, verbose=0)

    results = [custom.get_weights()]
    for mode in ("function", "eager"):
        model, opt = _dense(ok), ok.optimizers.SGD(0.3)
        model.set_weights(start)

        def step(xb, yb, model=model, opt=opt):
            with tf.GradientTape() as tape:
                loss = mse(yb, model(xb, training=True))
            opt.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))

        run = tf.function(step) if mode == "function" else step
        for i in range(0, 12, 4):
            run(x[i:i + 4], y[i:i + 4])
        results.append(model.get_weights())
    reference = _dense(keras)
    reference.set_weights(start)
    reference.compile(optimizer=keras.optimizers.SGD(0.3), loss="mse")
    reference.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    return results, reference.get_weights()


def test_custom_step_function_and_eager_apply_gradients_apply_constraints():
    results, expected = _custom_steps()
    for weights in results:
        for a, b in zip(weights, expected):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert np.all(results[0][1] >= 0) and np.abs(results[0][2]).max() <= 0.4 + 1e-7


def test_eager_apply_gradients_on_a_variable():
    w = tf.Variable(np.array([[3.0], [4.0]], np.float32), constraint=constraints.MaxNorm(1.0))
    ok.optimizers.SGD(0.0).apply_gradients([(np.zeros((2, 1), np.float32), w)])
    np.testing.assert_allclose(w.numpy().ravel(), [0.6, 0.8], rtol=1e-6)


def test_core_shards_apply_whole_tensor_constraints(monkeypatch):
    """MaxNorm reads whole kernels: the sharded step's update applies it in its one program, not in ranges."""
    from onnxforge.trainer import segment_update
    from tests.trainer.test_core_parallel import _data, _sharded

    monkeypatch.setattr(segment_update, "MIN_SEGMENT", 16)   # ranges would be used without the constraints

    def model_fn():
        tf.utils.set_random_seed(0)
        max_norm = constraints.MaxNorm(0.3, [0, 1, 2])
        m = ok.Sequential([ok.Input((8, 8, 1)),
                           ok.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_constraint=max_norm),
                           ok.layers.Conv2D(8, 3, padding="same", kernel_constraint="unit_norm"),
                           ok.layers.GlobalAveragePooling2D(), ok.layers.Dense(10, kernel_constraint="non_neg")])
        m.compile(optimizer="adam", loss=ok.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m

    batches = [_data(64, seed)[:2] for seed in range(2)]
    trained = []
    for shards in ("1", "2"):
        monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", shards)
        model = model_fn()
        for xb, yb in batches:
            model.train_on_batch(xb, yb)
        trained.append(model)
    assert _sharded(trained[1]) and trained[1]._shard_steps[1][2]._ranged is None
    for a, b in zip(trained[0].get_weights(), trained[1].get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    kernel = trained[1].layers[0].kernel.numpy()
    assert np.sqrt((kernel ** 2).sum(axis=(0, 1, 2))).max() <= 0.3 + 1e-6


def test_keras_files_round_trip_both_ways(tmp_path):
    register = keras.saving.register_keras_serializable(package="cons_test")
    KerasClipReg = register(type("ClipReg", (KerasClip,), {}))
    OurClipReg = tf.keras.saving.register_keras_serializable(package="cons_test")(type("ClipReg", (OurClip,), {}))

    def build(k, clip):
        return k.Sequential([k.Input((4,)), k.layers.Dense(3, kernel_constraint=k.constraints.MaxNorm(2.5, axis=0),
                                                             bias_constraint=clip(0.1)),
                             k.layers.LayerNormalization(gamma_constraint="non_neg",
                                                         beta_constraint=k.constraints.MinMaxNorm(0.1, 0.9)),
                             k.layers.Dense(2, kernel_constraint="unit_norm")])

    def configs(model):
        return [{k: v for k, v in layer.get_config().items() if k.endswith("_constraint")} for layer in model.layers]

    theirs = build(keras, KerasClipReg)
    theirs.save(tmp_path / "k.keras")
    ours = tf.keras.models.load_model(tmp_path / "k.keras")
    assert configs(ours) == configs(theirs)
    assert isinstance(ours.layers[0].bias.constraint, OurClipReg) and ours.layers[0].bias.constraint.clip_value == 0.1

    mine = build(ok, OurClipReg)
    mine.save(tmp_path / "o.keras")
    back = keras.models.load_model(tmp_path / "o.keras")
    assert configs(back) == configs(mine)
    assert isinstance(back.layers[0].kernel.constraint, keras.constraints.MaxNorm)

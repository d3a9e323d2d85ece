"""LossScaleOptimizer against Keras 3: the scaled step, growth every ``dynamic_growth_steps`` finite steps,
halving and skipping on non-finite gradients, its variables and its config."""
from __future__ import annotations

import numpy as np
import pytest

from .common import copy_weights, fkeras, keras, max_diff, onnxforge, random_weights

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::RuntimeWarning")

X = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
Y = np.random.default_rng(1).normal(size=(8, 2)).astype("float32")


def _model(K):
    inp = K.Input((4,))
    return K.Model(inp, K.layers.Dense(2)(K.layers.Dense(3, activation="tanh")(inp)))


def _scale_state(opt, lib):
    to_np = keras.ops.convert_to_numpy if lib is keras else (lambda v: v.numpy())
    return (int(to_np(opt.step_counter)), float(to_np(opt.dynamic_scale)), int(to_np(opt.iterations)))


def _pair(inner: str, **kwargs):
    k, f = _model(keras), _model(fkeras)
    random_weights(k, seed=4)
    copy_weights(k, f)
    k.compile(optimizer=keras.optimizers.LossScaleOptimizer(getattr(keras.optimizers, inner)(0.05), **kwargs),
              loss="mse")
    f.compile(optimizer=fkeras.optimizers.LossScaleOptimizer(getattr(fkeras.optimizers, inner)(0.05), **kwargs),
              loss="mse")
    return k, f


@pytest.mark.parametrize("inner", ["SGD", "Adam"])
def test_finite_steps_grow_the_scale_like_keras(inner):
    k, f = _pair(inner, initial_scale=8.0, dynamic_growth_steps=2)
    for step in range(5):
        assert f.train_on_batch(X, Y) == pytest.approx(k.train_on_batch(X, Y), rel=1e-5), step
        assert _scale_state(f.optimizer, onnxforge) == _scale_state(k.optimizer, keras), step
    assert max_diff(k.get_weights(), f.get_weights()) < 1e-5
    assert _scale_state(f.optimizer, onnxforge) == (1, 32.0, 5)


def test_non_finite_gradients_skip_the_step_and_halve_the_scale_like_keras():
    k, f = _pair("Adam", dynamic_growth_steps=3)
    k.train_on_batch(X, Y)
    f.train_on_batch(X, Y)
    before = f.get_weights()
    bad = X.copy()
    bad[0, 0] = np.inf
    for _ in range(2):
        k.train_on_batch(bad, Y)
        f.train_on_batch(bad, Y)
        assert _scale_state(f.optimizer, onnxforge) == _scale_state(k.optimizer, keras)
    assert _scale_state(f.optimizer, onnxforge) == (0, 2.0 ** 13, 1)   # skipped steps do not count
    assert max_diff(before, f.get_weights()) == 0.0                     # weights and slots untouched
    assert max_diff(k.get_weights(), f.get_weights()) < 1e-6
    for _ in range(2):   # training resumes from the kept state
        assert f.train_on_batch(X, Y) == pytest.approx(k.train_on_batch(X, Y), rel=1e-5)
    assert max_diff(k.get_weights(), f.get_weights()) < 1e-5
    assert _scale_state(f.optimizer, onnxforge) == _scale_state(k.optimizer, keras) == (2, 2.0 ** 13, 3)


def test_variables_config_and_properties_match_keras():
    k_opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=64.0)
    f_opt = onnxforge.optimizers.LossScaleOptimizer.from_config(k_opt.get_config())
    assert (f_opt.initial_scale, f_opt.dynamic_growth_steps, f_opt.name) == (64.0, 2000, k_opt.name)
    assert type(f_opt.inner_optimizer).__name__ == "SGD" and f_opt.learning_rate == pytest.approx(0.1)
    config = f_opt.get_config()
    assert set(config) == set(k_opt.get_config())
    assert onnxforge.optimizers.deserialize(onnxforge.optimizers.serialize(f_opt)).get_config() == config
    f_opt.learning_rate = 0.5   # the inner optimizer's, as in Keras
    assert f_opt.inner_optimizer.learning_rate == 0.5
    names = [v.path for v in f_opt.variables]
    assert names[:3] == [f"{k_opt.name}/iteration", f"{k_opt.name}/step_counter", f"{k_opt.name}/dynamic_scale"]
    for bad, message in ((dict(dynamic=False), "dynamic=False"), (dict(clipnorm=1.0), "clipnorm"),
                         (dict(foo=1), "foo")):
        with pytest.raises(ValueError, match=message):
            onnxforge.optimizers.LossScaleOptimizer(onnxforge.optimizers.SGD(), **bad)
        with pytest.raises(ValueError, match=message):
            keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(), **bad)


def test_compile_wraps_the_optimizer_under_mixed_float16_only():
    for name, wrapped in (("mixed_float16", True), ("float32", False), ("mixed_bfloat16", False)):
        onnxforge.keras.config.set_dtype_policy(name)
        try:
            f = _model(fkeras)
        finally:
            onnxforge.keras.config.set_dtype_policy("float32")
        f.compile(optimizer="adam", loss="mse")
        assert isinstance(f.optimizer, onnxforge.optimizers.LossScaleOptimizer) == wrapped, name
        if wrapped:
            assert f.optimizer.name == "loss_scale_optimizer"
            assert type(f.optimizer.inner_optimizer).__name__ == "Adam"
    onnxforge.keras.config.set_dtype_policy("mixed_float16")
    try:
        f = _model(fkeras)
    finally:
        onnxforge.keras.config.set_dtype_policy("float32")
    f.compile(optimizer="adam", loss="mse", auto_scale_loss=False)
    assert type(f.optimizer).__name__ == "Adam"


def test_save_and_load_keep_the_loss_scale_state(tmp_path):
    f = _model(fkeras)
    random_weights(f, seed=5)
    f.compile(optimizer=fkeras.optimizers.LossScaleOptimizer(fkeras.optimizers.Adam(0.01), initial_scale=16.0,
                                                             dynamic_growth_steps=2), loss="mse")
    for _ in range(3):
        f.train_on_batch(X, Y)
    path = tmp_path / "m.onnx"
    f.save(path)
    g = onnxforge.load_model(path)
    assert isinstance(g.optimizer, onnxforge.optimizers.LossScaleOptimizer)
    assert _scale_state(g.optimizer, onnxforge) == _scale_state(f.optimizer, onnxforge) == (1, 32.0, 3)
    for _ in range(2):
        assert g.train_on_batch(X, Y) == pytest.approx(f.train_on_batch(X, Y), rel=1e-6)
    assert max_diff(f.get_weights(), g.get_weights()) == 0.0


def test_a_custom_train_step_with_scale_loss_matches_the_compiled_step():
    """The tf.keras recipe: scale_loss before the tape's gradient, apply_gradients unscales and checks."""
    class Custom(onnxforge.Model):
        def train_step(self, data):
            x, y = data
            with onnxforge.GradientTape() as tape:
                loss = onnxforge.ops.mean(onnxforge.ops.square(self(x, training=True) - y))
                scaled = self.optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": loss}

    def make(cls):
        inp = fkeras.Input((4,))
        model = cls(inp, fkeras.layers.Dense(2)(fkeras.layers.Dense(3, activation="tanh")(inp)))
        random_weights(model, seed=6)
        model.compile(optimizer=fkeras.optimizers.LossScaleOptimizer(fkeras.optimizers.Adam(0.01),
                                                                     initial_scale=4.0, dynamic_growth_steps=2),
                      loss="mse")
        return model

    custom, compiled = make(Custom), make(fkeras.Model)
    bad = X.copy()
    bad[1, 2] = np.nan
    for batch in (X, X, bad, X, X):
        got = custom.train_on_batch(batch, Y, return_dict=True)["loss"]
        want = compiled.train_on_batch(batch, Y)
        assert got == pytest.approx(want, rel=1e-6, nan_ok=True)
        assert _scale_state(custom.optimizer, onnxforge) == _scale_state(compiled.optimizer, onnxforge)
    assert max_diff(custom.get_weights(), compiled.get_weights()) < 1e-6
    assert _scale_state(custom.optimizer, onnxforge) == (0, 8.0, 4)

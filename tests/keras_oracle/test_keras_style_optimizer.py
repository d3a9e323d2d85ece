"""Optimizers written the Keras 3 way (``build`` with ``add_variable_from_reference`` / ``add_variable``,
``update_step(gradient, variable, learning_rate)`` with ``keras.ops`` and ``self.assign*``): the same class body
runs on real Keras 3 (torch backend) and on onnxforge, and ``fit``, ``apply_gradients`` in a custom loop and the
core-sharded CPU step give Keras's weights step by step."""
from __future__ import annotations

import numpy as np
import pytest

from tests.keras_oracle.common import LIBS, copy_weights, fkeras, keras


def momentum_sgd_class(k):
    """Keras's documented custom SGD with momentum, against the library ``k``."""
    ops = k.ops

    class MomentumSGD(k.optimizers.Optimizer):
        def __init__(self, learning_rate=0.01, momentum=0.9, name="momentum_sgd", **kwargs):
            super().__init__(learning_rate=learning_rate, name=name, **kwargs)
            self.momentum = momentum

        def build(self, variables):
            if self.built:
                return
            super().build(variables)
            self.momentums = []
            for variable in variables:
                self.momentums.append(self.add_variable_from_reference(reference_variable=variable,
                                                                       name="momentum"))

        def update_step(self, gradient, variable, learning_rate):
            learning_rate = ops.cast(learning_rate, variable.dtype)
            gradient = ops.cast(gradient, variable.dtype)
            m = self.momentums[self._get_variable_index(variable)]
            self.assign(m, ops.subtract(ops.multiply(m, ops.cast(self.momentum, variable.dtype)),
                                        ops.multiply(gradient, learning_rate)))
            self.assign_add(variable, m)

        def get_config(self):
            config = super().get_config()
            config.update({"momentum": self.momentum})
            return config

    return MomentumSGD


def bias_corrected_class(k):
    """An Adam-like update that reads ``self.iterations``, a scalar made by ``add_variable`` and assigns with
    ``assign_sub``: a read after an assign must see the new value, as in Keras."""
    ops = k.ops

    class Corrected(k.optimizers.Optimizer):
        def __init__(self, learning_rate=0.05, beta=0.8, **kwargs):
            super().__init__(learning_rate=learning_rate, **kwargs)
            self.beta = beta

        def build(self, variables):
            if self.built:
                return
            super().build(variables)
            self.moments = self.add_optimizer_variables(variables, "moment")
            self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="count")

        def update_step(self, gradient, variable, learning_rate):
            m = self.moments[self._get_variable_index(variable)]
            step = ops.cast(self.iterations + 1, variable.dtype)
            self.assign(m, m * self.beta + gradient * (1.0 - self.beta))
            corrected = m / (1.0 - ops.power(self.beta, step))
            self.assign_sub(variable, corrected * learning_rate)
            self.assign_add(self.count, 1.0)

    return Corrected


def _model(k, seed=0):
    model = k.Sequential([k.Input((3,)), k.layers.Dense(4, activation="tanh"), k.layers.Dense(2)])
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def _cnn(k, seed=0):
    """Convolutions use each weight at every position: enough reuse for the trainer to shard the step."""
    model = k.Sequential([k.Input((6, 6, 1)), k.layers.Conv2D(3, 3, padding="same", activation="tanh"),
                          k.layers.GlobalAveragePooling2D(), k.layers.Dense(2)])
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def _batches(n_batches=4, batch=6, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(batch, 3)).astype("float32"), rng.normal(size=(batch, 2)).astype("float32"))
            for _ in range(n_batches)]


@pytest.mark.parametrize("make,kwargs", [(momentum_sgd_class, dict(learning_rate=0.1, momentum=0.9)),
                                         (momentum_sgd_class, dict(learning_rate=0.05, weight_decay=0.1,
                                                                   clipvalue=0.3)),
                                         (bias_corrected_class, dict())])
def test_fit_matches_keras_step_by_step(make, kwargs, checked):
    models = {}
    for name, k in LIBS.items():
        models[name] = _model(k)
        models[name].compile(optimizer=make(k)(**kwargs), loss="mse")
    for x, y in _batches():
        for model in models.values():
            model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
        for a, b in zip(models["keras"].get_weights(), models["onnxforge"].get_weights()):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    mine = models["onnxforge"]
    assert int(mine.optimizer.iterations) == 4
    if make is bias_corrected_class:   # one count per weight per step, a read-after-write in the same step
        assert float(mine.optimizer.count.numpy()) == float(keras.ops.convert_to_numpy(
            models["keras"].optimizer.count)) == 16.0
    checked(mine._programs["train_step"].model)


def test_slots_are_optimizer_variables_and_config_round_trips():
    opt = momentum_sgd_class(fkeras)(learning_rate=0.2, momentum=0.5)
    model = _model(fkeras)
    model.compile(optimizer=opt, loss="mse")
    model.fit(*_batches(1)[0], verbose=0)
    # iterations, then one momentum per weight in build's order (Keras leaves out its learning-rate Variable)
    assert [v.path for v in opt.variables] == ["momentum_sgd/iteration"] + [
        f"momentum_sgd/{w.path.replace('/', '_')}_momentum" for w in model.trainable_weights]
    assert np.abs(opt.momentums[0].numpy()).sum() > 0
    config = opt.get_config()
    assert config["momentum"] == 0.5 and config["learning_rate"] == pytest.approx(0.2)
    again = type(opt).from_config(config)
    assert again.momentum == 0.5 and float(again.learning_rate) == pytest.approx(0.2)


def test_apply_gradients_in_a_custom_loop_matches_keras():
    rng = np.random.default_rng(3)
    start = [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(2,)).astype("float32")]
    grads = [[rng.normal(size=w.shape).astype("float32") for w in start] for _ in range(3)]
    got, want = [], []
    for name, k in LIBS.items():
        opt = momentum_sgd_class(k)(learning_rate=0.1, momentum=0.7)
        variables = [k.Variable(w.copy()) for w in start]
        out = got if name == "onnxforge" else want
        for g in grads:
            opt.apply_gradients(zip([k.ops.convert_to_tensor(x) for x in g], variables))
            out.append([np.asarray(k.ops.convert_to_numpy(v)) for v in variables])
    for a, b in zip(want, got):
        for x, y in zip(a, b):
            np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-7)


def test_unknown_variable_is_refused_as_in_keras():
    opt = momentum_sgd_class(fkeras)(learning_rate=0.1)
    a, b = fkeras.Variable(np.ones(2, np.float32)), fkeras.Variable(np.ones(2, np.float32))
    opt.apply_gradients([(np.ones(2, np.float32), a)])
    with pytest.raises(ValueError, match="Unknown variable"):
        opt.apply_gradients([(np.ones(2, np.float32), b)])


def test_core_sharded_step_equals_the_one_session_step(monkeypatch):
    """A batch of 2 * 32 rows cut over two cores: the summed gradients go through the traced update_step."""
    from onnxforge.trainer.core_parallel import MIN_SHARD

    rng = np.random.default_rng(5)
    batches = [(rng.normal(size=(2 * MIN_SHARD, 6, 6, 1)).astype("float32"),
                rng.normal(size=(2 * MIN_SHARD, 2)).astype("float32")) for _ in range(3)]
    results = {}
    for shards in ("1", "2"):
        monkeypatch.setenv("ONNXFORGE_CORE_SHARDS", shards)
        model = _cnn(fkeras)
        model.compile(optimizer=momentum_sgd_class(fkeras)(learning_rate=0.1), loss="mse")
        for x, y in batches:
            model.train_on_batch(x, y)
        cache = getattr(model, "_shard_steps", None)
        assert (cache is not None and cache[1].get(2) is not None) == (shards == "2")
        results[shards] = model.get_weights()
    reference = _cnn(keras)
    reference.compile(optimizer=momentum_sgd_class(keras)(learning_rate=0.1), loss="mse")
    for x, y in batches:
        reference.train_on_batch(x, y)
    for a, b, c in zip(results["1"], results["2"], reference.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


def test_copy_weights_helper_still_applies():
    """The models above start from the same weights in both libraries (the comparison's premise)."""
    a, b = _model(keras), _model(fkeras)
    copy_weights(a, b)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)


def test_keras_file_keeps_the_slots_for_onnxforge_and_for_keras(tmp_path):
    x, y = _batches(1)[0]
    model = _model(fkeras)
    model.compile(optimizer=momentum_sgd_class(fkeras)(learning_rate=0.1), loss="mse")
    model.fit(x, y, verbose=0)
    path = tmp_path / "custom_opt.keras"
    model.save(path)
    again = fkeras.models.load_model(path, custom_objects={"MomentumSGD": momentum_sgd_class(fkeras)})
    for a, b in zip(model.optimizer.variables, again.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    theirs = keras.models.load_model(path, custom_objects={"MomentumSGD": momentum_sgd_class(keras)})
    assert int(keras.ops.convert_to_numpy(theirs.optimizer.iterations)) == 1
    for a, b in zip(model.optimizer.momentums, theirs.optimizer.momentums):
        np.testing.assert_array_equal(a.numpy(), keras.ops.convert_to_numpy(b))
    again.fit(x, y, verbose=0)
    model.fit(x, y, verbose=0)
    for a, b in zip(model.get_weights(), again.get_weights()):   # the reloaded slots carry the momentum on
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

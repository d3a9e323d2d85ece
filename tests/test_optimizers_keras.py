"""Nadam, Adamax, Adadelta, Lion and the PolynomialDecay, InverseTimeDecay and CosineDecayRestarts schedules
against real Keras 3 (torch backend): the graph update equals Keras's on the same weights and gradients step after
step, schedules give Keras's rates step by step, and defaults, configs and lookup names are Keras's."""
from __future__ import annotations

import numpy as np
import pytest

from onnxforge import optimizers
from tests.keras_oracle.common import keras

from .test_optimizers import graph_steps

NEW = [("nadam", optimizers.Nadam), ("adamax", optimizers.Adamax), ("adadelta", optimizers.Adadelta),
       ("lion", optimizers.Lion), ("lamb", optimizers.Lamb), ("adafactor", optimizers.Adafactor),
       ("ftrl", optimizers.Ftrl)]
CASES = [
    ("Nadam", dict(learning_rate=0.01)),
    ("Nadam", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, weight_decay=0.1)),
    ("Adamax", dict(learning_rate=0.01)),
    ("Adamax", dict(learning_rate=0.02, beta_2=0.9, clipvalue=0.5)),
    ("Adadelta", dict(learning_rate=1.0)),
    ("Adadelta", dict(learning_rate=0.5, rho=0.8, epsilon=1e-4, global_clipnorm=1.0)),
    ("Lion", dict(learning_rate=0.01)),
    ("Lion", dict(learning_rate=0.01, beta_1=0.5, beta_2=0.9, weight_decay=0.2)),
]


def keras_steps(opt, params, grads_seq, paths=None):
    """Keras's own optimizer applied to Keras variables; the parameters after every step. ``paths`` gives the
    variables onnxforge's paths (Keras matches an optimizer's exclusions against ``variable.path``)."""
    variables = [keras.Variable(p, name=f"w{i}") for i, p in enumerate(params)]
    for v, path in zip(variables, paths or ()):
        v._path = path
    history = []
    for grads in grads_seq:
        opt.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
        history.append([keras.ops.convert_to_numpy(v) for v in variables])
    return history


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_graph_update_matches_real_keras(checked, rng, name, kwargs):
    params = [rng.normal(size=s).astype(np.float32) for s in [(3, 2), (4,)]]
    grads = [[rng.normal(size=p.shape).astype(np.float32) for p in params] for _ in range(5)]
    got = graph_steps(getattr(optimizers, name)(**kwargs), params, grads, checked)
    want = keras_steps(getattr(keras.optimizers, name)(**kwargs), params, grads)
    for step_got, step_want in zip(got, want):
        for g, w in zip(step_got, step_want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_nadam_momentum_schedule_holds_after_many_steps(rng):
    """The schedule product is recomputed from the step counter: at step 700 it must equal Keras's running
    product (which by then is beta_1^700 times factors that have reached 1)."""
    params = [rng.normal(size=(5,)).astype(np.float32)]
    grads = [[rng.normal(size=(5,)).astype(np.float32)] for _ in range(702)]
    want = keras_steps(keras.optimizers.Nadam(learning_rate=0.01), params, grads)
    opt = optimizers.Nadam(learning_rate=0.01)
    got = graph_steps(opt, params, grads)
    np.testing.assert_allclose(got[-1][0], want[-1][0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,cls", NEW)
def test_defaults_configs_and_names_are_keras(name, cls):
    # Keras 3.15's `get` does not list Lamb (onnxforge's does, as it lists every optimizer it has).
    mine, theirs = cls(), (keras.optimizers.Lamb() if name == "lamb" else keras.optimizers.get(name))
    assert type(optimizers.get(name.capitalize())) is cls and type(theirs).__name__ == cls.__name__
    ours, ref = mine.get_config(), theirs.get_config()
    assert set(ours) == set(ref)
    # Keras numbers the names of later instances ("nadam_1"); the rest must agree.
    assert all(ours[k] == pytest.approx(ref[k]) for k in ref if k != "name") and ours["name"] == name
    again = optimizers.deserialize(optimizers.serialize(cls(learning_rate=0.25, weight_decay=0.01)))
    assert type(again) is cls and again.learning_rate == 0.25 and again.weight_decay == 0.01


def test_lion_rejects_a_signsgd_beta_1():
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Lion(beta_1=0.0)


@pytest.mark.parametrize("name", [n for n, _ in NEW])
def test_compile_by_name_trains_as_keras(name):
    """``compile(optimizer="nadam")`` etc.: three fit steps from the same weights land on Keras's weights."""
    from tests.keras_oracle.common import copy_weights, fkeras

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(24, 3)).astype(np.float32), rng.normal(size=(24, 2)).astype(np.float32)
    models = []
    for lib in (keras, fkeras):
        model = lib.Sequential([lib.Input((3,)), lib.layers.Dense(4, activation="tanh"), lib.layers.Dense(2)])
        model.compile(optimizer=keras.optimizers.Lamb() if lib is keras and name == "lamb" else name, loss="mse")
        models.append(model)
    copy_weights(models[0], models[1])
    for model in models:
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for want, got in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


SCHEDULES = [
    ("PolynomialDecay", (0.1, 10), {}),
    ("PolynomialDecay", (0.1, 10), dict(end_learning_rate=0.01, power=0.5, cycle=True)),
    ("PolynomialDecay", (1.0, 7), dict(power=2.0)),
    ("InverseTimeDecay", (0.1, 5, 0.5), {}),
    ("InverseTimeDecay", (0.1, 5, 0.5), dict(staircase=True)),
    ("CosineDecayRestarts", (0.1, 10), {}),
    ("CosineDecayRestarts", (0.1, 10), dict(t_mul=1.0, m_mul=0.5, alpha=0.1)),
    ("CosineDecayRestarts", (1.0, 3), dict(t_mul=3.0, m_mul=0.7, alpha=0.05)),
    ("CosineDecayRestarts", (1.0, 5), dict(t_mul=1.5)),
]


@pytest.mark.parametrize("name,args,kwargs", SCHEDULES, ids=[f"{c[0]}-{i}" for i, c in enumerate(SCHEDULES)])
def test_schedules_match_real_keras_step_by_step(name, args, kwargs):
    """Every step of the first 200, restarts' period boundaries included (float32 as in Keras)."""
    from onnxforge.optimizers import schedules

    theirs, mine = getattr(keras.optimizers.schedules, name)(*args, **kwargs), getattr(schedules, name)(*args, **kwargs)
    want = [float(keras.ops.convert_to_numpy(theirs(step))) for step in range(200)]
    np.testing.assert_allclose([mine(step) for step in range(200)], want, rtol=1e-6, atol=1e-7)
    assert mine.get_config() == theirs.get_config()
    again = schedules.deserialize(schedules.serialize(mine))
    assert type(again) is type(mine) and again.get_config() == mine.get_config()

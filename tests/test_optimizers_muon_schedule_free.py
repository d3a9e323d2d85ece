"""Muon and ScheduleFreeAdamW against real Keras 3 (torch backend): the graph update step by step on the same
weights and gradients, a few ``fit`` steps side by side from the same initial weights, the optimizer variables
Keras reads from the ``.keras`` file onnxforge writes, configs and argument errors."""
from __future__ import annotations

import numpy as np
import pytest

from onnxforge import optimizers
from onnxforge.variables import Variable
from tests.keras_oracle.common import copy_weights, fkeras, keras

from .test_optimizers import graph_steps
from .test_optimizers_keras import keras_steps

SHAPES = [(3, 2), (4,), (5, 3), (2, 6), (2, 2, 2)]
NAMES = ["dense/kernel", "dense/bias", "head/kernel", "token_embedding/embeddings", "conv/kernel"]
CASES = [
    ("Muon", {}),
    ("Muon", dict(learning_rate=0.01, nesterov=False, rms_rate=None, adam_lr_ratio=0.1, weight_decay=0.1,
                  adam_weight_decay=None, exclude_layers=["head"], momentum=0.8, ns_steps=3)),
    ("Muon", dict(learning_rate=0.02, exclude_embeddings=False, clipnorm=0.5, adam_beta_1=0.8, epsilon=1e-5)),
    ("ScheduleFreeAdamW", {}),
    ("ScheduleFreeAdamW", dict(learning_rate=0.01, warmup_steps=3, weight_decay=0.05, beta_1=0.8)),
    ("ScheduleFreeAdamW", dict(learning_rate=0.05, beta_2=0.9, epsilon=1e-6, global_clipnorm=1.0)),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_graph_update_matches_real_keras(checked, rng, name, kwargs):
    params = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    grads = [[rng.normal(size=p.shape).astype(np.float32) for p in params] for _ in range(4)]
    got = graph_steps(getattr(optimizers, name)(**kwargs), params, grads, checked, NAMES)
    want = keras_steps(getattr(keras.optimizers, name)(**kwargs), params, grads, NAMES)
    for step_got, step_want in zip(got, want):
        for g, w, p in zip(step_got, step_want, params):
            assert not np.array_equal(g, p)
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_muon_routes_weights_as_keras_does():
    opt = optimizers.Muon(exclude_layers=["^head/"])
    variables = [Variable(np.zeros(s, np.float32), n) for s, n in zip(SHAPES, NAMES)]
    assert [opt.uses_adam(v) for v in variables] == [False, True, True, True, True]
    opt.build(variables)
    assert [sorted(opt.slots(v)) for v in variables][:2] == [["momentum"], ["momentum", "velocity"]]
    assert opt.weight_decay_for(variables[0]) == opt.weight_decay_for(variables[1]) == 0.004


def _model(lib, embedding=False):
    layers = [lib.Input((4,), dtype="int32" if embedding else "float32")]
    if embedding:
        layers += [lib.layers.Embedding(6, 3), lib.layers.Flatten()]
    # Named, so that exclude_layers matches the same layer whatever models earlier tests named.
    layers += [lib.layers.Dense(5, activation="tanh", name="hidden"), lib.layers.Dense(2, name="head")]
    return lib.Sequential(layers)


@pytest.mark.parametrize("name,kwargs,embedding", [
    ("Muon", dict(learning_rate=0.02), True),
    ("Muon", dict(learning_rate=0.02, exclude_layers=["head"], weight_decay=0.1), False),
    ("ScheduleFreeAdamW", dict(learning_rate=0.02, warmup_steps=2), False),
])
def test_fit_matches_real_keras_and_keras_reads_the_file(tmp_path, rng, name, kwargs, embedding):
    x = rng.integers(0, 6, (12, 4)).astype(np.int32) if embedding else rng.normal(size=(12, 4)).astype(np.float32)
    y = rng.normal(size=(12, 2)).astype(np.float32)
    km, fm = _model(keras, embedding), _model(fkeras, embedding)
    copy_weights(km, fm)
    km.compile(optimizer=getattr(keras.optimizers, name)(**kwargs), loss="mse")
    fm.compile(optimizer=getattr(fkeras.optimizers, name)(**kwargs), loss="mse")
    start = [w.copy() for w in fm.get_weights()]
    km.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    fm.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for got, want, before in zip(fm.get_weights(), km.get_weights(), start):
        assert not np.allclose(got, before)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    fm.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    want = [keras.ops.convert_to_numpy(v) for v in km.optimizer.variables]
    got = [keras.ops.convert_to_numpy(v) for v in loaded.optimizer.variables]
    assert [w.shape for w in got] == [w.shape for w in want]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["Muon", "ScheduleFreeAdamW"])
def test_config_round_trip_and_lookup(name):
    kwargs = dict(learning_rate=0.05, weight_decay=0.01)
    mine, theirs = getattr(optimizers, name)(**kwargs), getattr(keras.optimizers, name)(**kwargs)
    config = mine.get_config()
    want = theirs.get_config()
    assert set(config) == set(want)
    # Keras stores the learning rate in a float32 Variable: 0.05000000074505806.
    assert config.pop("learning_rate") == pytest.approx(want.pop("learning_rate"))
    assert {k: v for k, v in config.items() if k != "name"} == {k: v for k, v in want.items() if k != "name"}
    config["learning_rate"] = 0.05
    assert type(optimizers.get(name.lower())) is type(mine)
    again = optimizers.deserialize(optimizers.serialize(mine))
    assert again.get_config() == config
    assert type(optimizers.deserialize(keras.optimizers.serialize(theirs))) is type(mine)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="ns_steps=-1"):
        optimizers.Muon(ns_steps=-1)
    with pytest.raises(ValueError, match="exclude_layers='head'"):
        optimizers.Muon(exclude_layers="head")
    with pytest.raises(ValueError, match="beta_1=0"):
        optimizers.ScheduleFreeAdamW(beta_1=0)
    with pytest.raises(ValueError, match="warmup_steps=1.5"):
        optimizers.ScheduleFreeAdamW(warmup_steps=1.5)
